"""Keras callbacks that report pruning state into `logs`.

Figures written into `logs` show up in the progress bar's history, in
`CSVLogger` files and in TensorBoard without extra code.
"""

import keras


class HolisticBudget(keras.callbacks.Callback):
    """Ramps a `GatedModel`'s budget and writes its size into the logs.

    The budget asked of the model moves linearly from the full size to the
    target over the first `ramp_epochs` epochs (0: the whole target from
    the first step). Adds `macs`, `params`, `macs_ratio`, `params_ratio`
    (against the model before gating) and `budget_loss` to `logs` at the
    end of every epoch. Place it before `CSVLogger` / `TensorBoard` in the
    callbacks list.

    Args:
        ramp_epochs: epochs over which the target is reached.

    Example:

    ```python
    gated.fit(train, epochs=5, callbacks=[tfprune.callbacks.HolisticBudget(),
                                           keras.callbacks.CSVLogger("hfp.csv")])
    ```
    """

    def __init__(self, ramp_epochs=1):
        super().__init__()
        self.ramp_epochs = float(ramp_epochs)
        self._base = None
        self._steps = None
        self._step = 0

    def on_train_begin(self, logs=None):
        from tfprune.cost import cost
        from tfprune.hfp import fold_gates

        if not hasattr(self.model, "budget"):
            raise TypeError(
                "HolisticBudget needs a model made by tfprune.hfp.attach(...).")
        self._base = cost(fold_gates(self.model))
        self._steps = self.params.get("steps") if self.params else None
        self._set_progress()

    def _set_progress(self):
        if self.ramp_epochs <= 0 or not self._steps:
            progress = 1.0
        else:
            progress = min(1.0, self._step / (self.ramp_epochs * self._steps))
        self.model.budget_progress.assign(progress)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._set_progress()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        params, macs = self.model.budget_cost()
        logs["macs"] = macs
        logs["params"] = params
        logs["macs_ratio"] = macs / self._base.macs
        logs["params_ratio"] = params / self._base.params
        logs["budget_loss"] = float(keras.ops.convert_to_numpy(self.model.budget.loss()))
