"""Keras callbacks that report pruning state into `logs`.

Figures written into `logs` show up in the progress bar's history, in
`CSVLogger` files and in TensorBoard without extra code.
"""

import keras


class HolisticBudget(keras.callbacks.Callback):
    """Writes a `GatedModel`'s current size into the epoch logs.

    Adds `macs`, `params`, `macs_ratio`, `params_ratio` (against the model
    before gating) and `budget_loss` to `logs` at the end of every epoch.
    Place it before `CSVLogger` / `TensorBoard` in the callbacks list.

    Example:

    ```python
    gated.fit(train, epochs=5, callbacks=[tfprune.callbacks.HolisticBudget(),
                                           keras.callbacks.CSVLogger("hfp.csv")])
    ```
    """

    def __init__(self):
        super().__init__()
        self._base = None

    def on_train_begin(self, logs=None):
        from tfprune.cost import cost
        from tfprune.hfp import fold_gates

        if not hasattr(self.model, "budget"):
            raise TypeError(
                "HolisticBudget needs a model made by tfprune.hfp.attach(...).")
        self._base = cost(fold_gates(self.model))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        params, macs = self.model.budget_cost()
        logs["macs"] = macs
        logs["params"] = params
        logs["macs_ratio"] = macs / self._base.macs
        logs["params_ratio"] = params / self._base.params
        logs["budget_loss"] = float(keras.ops.convert_to_numpy(self.model.budget.loss()))
