"""`Reconfigure`: the callback that shrinks a PruneTrain model inside `fit`."""

import keras

from tfprune.core.cost import cost

FLOPS_PER_MAC = 2
PASSES_PER_SAMPLE = 3  # forward, backward to activations, backward to weights


class Reconfigure(keras.callbacks.Callback):
    """Removes dead channels every few epochs and logs the model's size.

    For a model made by `tfprune.methods.prunetrain.wrap`. Before every epoch
    that is a multiple of `every` (not the first), dead channels and dead
    residual branches are removed from the network being trained, the
    optimizer's slots sliced with them and its step counter kept; training
    goes on in the same `fit` call. At the end of training (`final`), the
    network is reconfigured once more, keeping dead branches at one channel
    so that it computes what it computed.

    After every epoch it writes into `logs`: `macs` and `params` of the
    network trained that epoch and `train_flops`, the training FLOPs spent
    so far (2 FLOPs per MAC, 3 passes per sample). Place it before
    `CSVLogger` / `TensorBoard` in the callbacks list, so they see them,
    and after `EarlyStopping(restore_best_weights=True)`: weights restored
    from before a reconfiguration bring back their width
    (`PruneTrainModel.set_weights`), and the final reconfiguration then
    slims the restored network.

    Args:
        every: epochs between reconfigurations; None only reconfigures at
            the end (with `final`).
        threshold: a weight below this in absolute value counts as zero.
        final: reconfigure once more when training ends.
        custom_objects: custom layers the network needs to be re-created.

    Example:

    ```python
    pt = tfprune.methods.prunetrain.wrap(model, penalty_ratio=0.2)
    pt.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss, metrics=["accuracy"])
    pt.fit(train, epochs=2, verbose=0,
           callbacks=[tfprune.methods.prunetrain.Reconfigure(every=1)])
    slim = pt.network
    ```
    """

    def __init__(self, every=5, threshold=1e-4, final=True, custom_objects=None):
        super().__init__()
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(
                f"every must be a positive number of epochs or None, got {every!r}.")
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}.")
        self.every = every
        self.threshold = float(threshold)
        self.final = final
        self.custom_objects = custom_objects
        self._cost = None
        self._start = 0

    def _seen(self):
        return int(keras.ops.convert_to_numpy(self.model.samples_seen))

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "network") or not hasattr(self.model, "run"):
            raise TypeError(
                "Reconfigure needs a PruneTrainModel: tfprune.methods.prunetrain.wrap(...) or attach(...).model.")

    def on_epoch_begin(self, epoch, logs=None):
        run = self.model.run
        if (self.every and self.model.penalty_ratio > 0 and epoch > 0
                and epoch % self.every == 0 and run.reconfigured_at != epoch):
            self.model.reconfigure(self.threshold, custom_objects=self.custom_objects,
                                   epoch=epoch)
        self._cost = cost(self.model.network)
        self._start = self._seen()

    def on_epoch_end(self, epoch, logs=None):
        run = self.model.run
        samples = self._seen() - self._start
        run.samples += samples
        run.train_flops += FLOPS_PER_MAC * PASSES_PER_SAMPLE * self._cost.macs * samples
        run.epoch = epoch + 1
        if logs is not None:
            logs["macs"] = self._cost.macs
            logs["params"] = self._cost.params
            logs["train_flops"] = run.train_flops

    def on_train_end(self, logs=None):
        run = self.model.run
        if self.final and self.model.penalty_ratio > 0 and run.reconfigured_at != run.epoch:
            self.model.reconfigure(self.threshold, drop_branches=False,
                                   custom_objects=self.custom_objects, epoch=run.epoch)
