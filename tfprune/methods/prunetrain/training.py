"""`prunetrain.fit`: one call from a fresh model to a slim trained one.

A thin layer over `wrap` + `PruneTrainModel.fit` + `Reconfigure`, adding
checkpoints that resume a run and the dynamic mini-batch (which Keras's
`fit` cannot do inside one call: its epoch iterator is made once, with one
batch size, so a batch change starts a new `fit` call, seen by the user's
callbacks as one run).
"""

import dataclasses
import functools
import os

import keras
import numpy as np

from tfprune.core.cost import cost
from tfprune.core.graph import analyze
from tfprune.errors import TfpruneError
from tfprune.methods.prunetrain.callback import (
    FLOPS_PER_MAC,
    PASSES_PER_SAMPLE,
    Reconfigure,
)
from tfprune.methods.prunetrain.checkpoint import (
    RunState,
    load_checkpoint,
    save_checkpoint,
    state_path,
)
from tfprune.methods.prunetrain.model import PruneTrainModel
from tfprune.methods.regularizers import GroupLasso
from tfprune.training.optimizer_state import (
    learning_rate_schedule,
    load_optimizer_state,
    new_optimizer,
    optimizer_state,
)
from tfprune.training.replicas import strategy_scope


@keras.saving.register_keras_serializable(package="tfprune")
class BatchScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate for batches `scale` times larger than the base ones.

    lr(step) = scale × base(offset + (step − start) × scale): the rate grows
    with the batch (linear scaling rule), and the base schedule advances by
    the number of base-sized batches seen, so it still ends when the samples
    run out.

    Args:
        base: a float or a `LearningRateSchedule` written for base batches.
        scale: batch size over the base batch size.
        offset: base-schedule step reached at optimizer step `start`.
        start: optimizer step from which `scale` applies.
    """

    def __init__(self, base, scale=1, offset=0.0, start=0):
        if isinstance(base, dict):
            base = keras.saving.deserialize_keras_object(base)
        self.base = base
        self.scale = int(scale)
        self.offset = float(offset)
        self.start = int(start)

    def base_step(self, step):
        return self.offset + (step - self.start) * self.scale

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        if callable(self.base):
            rate = self.base(self.base_step(step))
        else:
            rate = self.base
        return self.scale * rate

    def get_config(self):
        base = self.base
        if callable(base):
            base = keras.saving.serialize_keras_object(base)
        return {"base": base, "scale": self.scale, "offset": self.offset,
                "start": self.start}


@dataclasses.dataclass
class PruneTrainResult:
    """What `fit` returns.

    Attributes:
        model: the trained, reconfigured model (plain functional, compiled
            with the loss, metrics and final optimizer).
        history: dict metric -> one value per epoch: the compiled metrics,
            `macs` and `params` of the model trained that epoch, and
            `train_flops`, the training FLOPs spent so far.
        reconfigurations: one dict per reconfiguration (epoch, MACs and
            params after, removed channels and branches).
        penalty_weight: λ as set at the first step.
        train_flops: training FLOPs spent.
        dense_train_flops: what the same samples cost at the initial width.
        optimizer: the optimizer in its final state.
    """

    model: object
    history: dict
    reconfigurations: list
    penalty_weight: float
    train_flops: float
    dense_train_flops: float
    optimizer: object = None

    @property
    def train_flops_ratio(self):
        return self.train_flops / self.dense_train_flops if self.dense_train_flops else 1.0


class _Continuous(keras.callbacks.CallbackList):
    """The user's callbacks, seeing one training run across all segments.

    `on_train_begin` reaches them once, at the first segment; `on_train_end`
    once, from `finish`; every other hook passes through, with `set_model`
    pointing them at each segment's model.
    """

    def __init__(self, callbacks):
        super().__init__(callbacks)
        # The outer list calls us in order; dispatching again would race.
        self._async_train = self._async_test = self._async_predict = False
        self._begun = False

    def on_epoch_end(self, epoch, logs=None):
        # The same dict, not a copy: what the user's callbacks write into
        # the logs reaches History and the checkpoint.
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_begin(self, logs=None):
        if not self._begun:
            self._begun = True
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        pass

    def finish(self, logs=None):
        if self._begun:
            super().on_train_end(logs)


class _Recorder(keras.callbacks.Callback):
    """Keeps the run's history; saves a checkpoint after every epoch and
    every reconfiguration."""

    def __init__(self, run, save, dynamic):
        super().__init__()
        self.run, self.save, self.dynamic = run, save, dynamic
        self._saved_reconfiguration = len(run.reconfigurations)

    def on_epoch_begin(self, epoch, logs=None):
        if len(self.run.reconfigurations) != self._saved_reconfiguration:
            self._saved_reconfiguration = len(self.run.reconfigurations)
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.dynamic:
            logs["batch_size"] = self.run.base_batch * self.run.batch_scale
        for k, v in (logs or {}).items():
            self.run.history.setdefault(k, []).append(float(v))
        self.run.epoch = epoch + 1
        self.run.penalty_weight = float(
            keras.ops.convert_to_numpy(self.model.penalty_weight))
        self.save()


def _check_args(epochs, penalty_ratio, reconfigure_every, threshold, max_batch_scale):
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    if not 0.0 <= penalty_ratio < 1.0:
        raise ValueError(
            f"penalty_ratio must be in [0, 1), got {penalty_ratio}; 0.2 is the "
            "paper's default.")
    if reconfigure_every is not None and (
            not isinstance(reconfigure_every, int) or reconfigure_every < 1):
        raise ValueError(
            f"reconfigure_every must be a positive number of epochs or None, "
            f"got {reconfigure_every!r}.")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}.")
    if not isinstance(max_batch_scale, int) or max_batch_scale < 1:
        raise ValueError(
            f"max_batch_scale must be a positive int, got {max_batch_scale!r}.")


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _first_batch_size(train, y, batch_size):
    if y is not None or isinstance(train, np.ndarray):
        return int(batch_size or 32)
    if not hasattr(train, "rebatch"):
        raise ValueError(
            f"dynamic_batch needs numpy arrays or a tf.data.Dataset, got "
            f"{type(train).__name__}; pass one of those or dynamic_batch=False.")
    first = next(iter(train))
    return int(keras.tree.flatten(first)[0].shape[0])


def _rescale_learning_rate(optimizer, model, scale):
    """The optimizer, its `BatchScaledSchedule` switched to `scale` from now."""
    old = learning_rate_schedule(optimizer)
    now = int(keras.ops.convert_to_numpy(optimizer.iterations))
    schedule = BatchScaledSchedule(old.base, scale, old.base_step(now), now)
    return load_optimizer_state(new_optimizer(optimizer, schedule), model,
                                optimizer_state(optimizer, model))


def _batched(train, y, batch_size, run):
    """The training data at the run's current batch size."""
    if run.batch_scale == 1 or not run.base_batch:
        return train, batch_size
    size = run.base_batch * run.batch_scale
    if y is not None or isinstance(train, np.ndarray):
        return train, size
    return train.rebatch(size), None


def _in_strategy_scope(function):
    """Runs `function(model, ...)` in the scope of `model`'s strategy.

    Under `tf.distribute` every model, trainer and optimizer that PruneTrain
    creates (copies, rebuilds at each reconfiguration) must belong to the
    strategy, so that its variables are mirrored and synchronised.
    """
    @functools.wraps(function)
    def wrapped(model, *args, **kwargs):
        with strategy_scope(model):
            return function(model, *args, **kwargs)
    return wrapped


@_in_strategy_scope
def fit(model, train, y=None, *, epochs=1, batch_size=None, validation_data=None,
        optimizer=None, loss=None, metrics=("accuracy",), penalty_ratio=0.2,
        reconfigure_every=10, threshold=1e-4, callbacks=None, checkpoint_dir=None,
        dynamic_batch=False, max_batch_scale=4, verbose="auto",
        custom_objects=None, mode="proximal"):
    """Trains `model` from scratch with PruneTrain; it shrinks as it trains.

    One `PruneTrainModel.fit` call with a `Reconfigure(reconfigure_every)`
    callback: every `reconfigure_every` epochs dead channels and dead
    residual branches are removed and training continues on the smaller
    network with the optimizer's state and step carried over. The user's
    callbacks see one run, whose `self.model` is the `PruneTrainModel`
    (its `network` is the model being trained at the time). With
    `dynamic_batch`, a new `fit` call starts at each batch change; the
    callbacks still see one run (`on_train_begin`/`on_train_end` once).

    Dynamic mini-batch (off by default): after each reconfiguration the
    batch grows by the integer factor k = ⌊initial MACs / current MACs⌋
    (at most `max_batch_scale`), so a step costs about what it cost at the
    start, and the learning rate is multiplied by k, its schedule advancing
    k steps per step (`BatchScaledSchedule`). It needs numpy arrays or a
    `tf.data.Dataset` (re-batched with `rebatch`), and fights learning-rate
    callbacks that set the rate themselves.

    Args:
        model: a functional or Sequential `keras.Model`, freshly built. It
            is not modified: training happens on a copy.
        train: training data as for `keras.Model.fit`: a `tf.data.Dataset`
            of (x, y) batches, a `keras.utils.PyDataset`, or input arrays
            (then give `y` and `batch_size`).
        y: targets when `train` holds the inputs only.
        epochs: total epochs.
        batch_size: batch size for array inputs.
        validation_data: as for `keras.Model.fit`.
        optimizer: a Keras optimizer; its config (and learning-rate
            schedule) is used, the instance itself is not. Default:
            SGD(0.1, momentum=0.9).
        loss: default: sparse categorical cross-entropy on logits.
        metrics: as for `compile`.
        penalty_ratio: r in [0, 1): the penalty's share of the first step's
            loss. 0 trains the dense model (no penalty, no reconfiguration).
        reconfigure_every: epochs between reconfigurations; None removes
            channels only once, after the last epoch.
        threshold: a weight below this in absolute value counts as zero.
        callbacks: Keras callbacks (kept across reconfigurations; restoring
            weights taken before a reconfiguration, like EarlyStopping's
            best ones, brings back the width they were taken at).
        checkpoint_dir: if set, the run is saved there after every epoch
            and every reconfiguration, and a run started with a directory
            that holds a checkpoint resumes from it (same architecture,
            weights, optimizer state, history; user callbacks start fresh).
        dynamic_batch: grow the batch as the model shrinks (see above).
        max_batch_scale: largest batch growth factor.
        verbose: as for `keras.Model.fit`.
        custom_objects: custom layers the model needs to be re-created.
        mode: "proximal" (default) or "subgradient" group lasso (see
            `tfprune.methods.regularizers`).

    Returns:
        A `PruneTrainResult`.

    Example:

    ```python
    result = tfprune.methods.prunetrain.fit(
        model, train, epochs=2, validation_data=(x, y),
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        penalty_ratio=0.2, reconfigure_every=1, checkpoint_dir="runs/pt", verbose=0)
    print(result.history["macs"][-1], result.train_flops_ratio)
    result.model.save("slim.keras")
    ```
    """
    _check_args(epochs, float(penalty_ratio), reconfigure_every, float(threshold),
                max_batch_scale)
    penalty_ratio = float(penalty_ratio)
    analyze(model)  # a clear error now for a model tfprune cannot walk
    if loss is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = list(metrics or [])
    resuming = checkpoint_dir and os.path.exists(state_path(checkpoint_dir))
    if resuming:
        plain, optimizer, run = load_checkpoint(checkpoint_dir, custom_objects)
        if run.model_name != model.name:
            raise TfpruneError(
                f"{checkpoint_dir} holds a run of model '{run.model_name}', not "
                f"'{model.name}'; choose another checkpoint_dir or delete it.")
    else:
        plain = _copy(model)
        optimizer = new_optimizer(
            optimizer or keras.optimizers.SGD(0.1, momentum=0.9))
        run = RunState(model_name=model.name, dense_macs=float(cost(plain).macs))
        if dynamic_batch:
            run.base_batch = _first_batch_size(train, y, batch_size)
            schedule = learning_rate_schedule(optimizer)
            if schedule is None:
                schedule = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            optimizer = new_optimizer(optimizer, BatchScaledSchedule(schedule))
        if penalty_ratio > 0 and GroupLasso(plain).num_groups == 0:
            raise TfpruneError(
                f"model '{model.name}' has no prunable channel (see "
                "tfprune.analyze(model).summary()); PruneTrain has nothing to "
                "remove. Use model.fit instead.")
    pt = PruneTrainModel(plain, penalty_ratio=penalty_ratio, mode=mode)
    pt.run = run
    pt.penalty_weight.assign(run.penalty_weight)
    pt.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    def save():
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, run, pt.network, pt.optimizer)

    def boundary(epoch):
        return bool(reconfigure_every) and epoch > 0 and epoch % reconfigure_every == 0

    segmented = dynamic_batch and bool(reconfigure_every) and penalty_ratio > 0
    user = _Continuous(callbacks) if callbacks else None
    last_logs = None
    stopped = False
    while run.epoch < epochs and not stopped:
        end = epochs
        if segmented:
            # The batch size changes with the width: reconfigure before the
            # segment, so its data are batched for the new width.
            if boundary(run.epoch) and run.reconfigured_at != run.epoch:
                pt.reconfigure(threshold, custom_objects=custom_objects)
                _rescale(pt, run, max_batch_scale)
                save()
            end = min(epochs, (run.epoch // reconfigure_every + 1) * reconfigure_every)
        data, size = _batched(train, y, batch_size, run)
        every = reconfigure_every if penalty_ratio > 0 else None
        history = pt.fit(
            data, y, batch_size=size, epochs=end, initial_epoch=run.epoch,
            validation_data=validation_data, verbose=verbose,
            callbacks=[c for c in (
                Reconfigure(every, threshold, final=False, custom_objects=custom_objects),
                user, _Recorder(run, save, dynamic_batch)) if c is not None])
        last_logs = {k: v[-1] for k, v in history.history.items() if v}
        stopped = bool(pt.stop_training) or run.epoch < end
    if penalty_ratio > 0 and run.reconfigured_at != run.epoch:
        # After the last epoch nothing absorbs a removed branch's constant.
        pt.reconfigure(threshold, drop_branches=False, custom_objects=custom_objects)
        save()
    if user is not None:
        user.finish(last_logs)
    plain, optimizer = pt.network, pt.optimizer
    plain.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    dense = FLOPS_PER_MAC * PASSES_PER_SAMPLE * run.dense_macs * run.samples
    return PruneTrainResult(plain, run.history, run.reconfigurations,
                            run.penalty_weight, run.train_flops, dense, optimizer)


def _rescale(pt, run, max_batch_scale):
    """After a reconfiguration: the batch grows as the MACs fall."""
    macs = cost(pt.network).macs
    scale = int(min(max_batch_scale, max(1, run.dense_macs // max(macs, 1))))
    if scale != run.batch_scale:
        with pt.strategy_scope():
            optimizer = _rescale_learning_rate(pt.optimizer, pt.network, scale)
        pt.swap(pt.network, optimizer)
        run.batch_scale = scale
    run.reconfigurations[-1]["batch_size"] = run.base_batch * scale
