"""PruneTrain: train from scratch while group lasso removes channels.

After Lym et al., "PruneTrain: Fast Neural Network Training by Dynamic
Sparse Model Reconfiguration" (SC'19, arXiv 1901.09290). The model trains
with a group-lasso penalty (`tfprune.regularizers.GroupLasso`); channels the
penalty drives to zero rarely come back, so every few epochs the network is
*reconfigured*: dead channels are physically removed with `tfprune.rebuild`
and training goes on with the smaller model, so later epochs cost less.

The method's public facts, and tfprune's choices where they leave room:

- Penalty: one lasso group per input and per output channel of every
  Conv/Dense, except channels that can never be removed (the first layer's
  input, the classifier's output). λ is set once, at the first training
  step, from the penalty ratio r: λ = r·CE₀ / ((1−r)·R₀), so the penalty is
  a fraction r of the first step's loss (CE₀: the compiled loss on that
  batch, R₀: the unweighted penalty).
- Dead channels: a channel is dead when every Conv/Dense weight tied to it,
  the filters (and biases) that write it *and* the kernel slices that read
  it, is below `threshold` in absolute value. Both sides, because with
  BatchNorm after a conv a near-zero filter is re-amplified by BN; only when
  every reader ignores the channel is its content (BN shift included)
  irrelevant. BN and depthwise weights are therefore not consulted.
- Residual streams: a stream is one channel group spanning every branch of
  its `Add`s, so a stream channel is kept when it is alive in any producer
  or consumer (the paper's channel union), with no extra code.
- Branches: when every channel of a group inside a residual branch is dead,
  the branch is removed and its `Add` keeps the shortcut alone
  (`tfprune.branches`); the block becomes an identity. The branch then
  added a constant (its last BN's shift), which goes with it; the epochs
  that follow absorb that. The reconfiguration after the last epoch has no
  epochs after it, so there a dead branch keeps one channel instead and the
  returned model computes what the trained one computed. Any other group
  that dies entirely keeps its strongest channel, since a tensor cannot
  have no channel.
- Optimizer state: every slot (SGD momentum, Adam moments, ...) is sliced
  with the same masks as the weight it belongs to; the step counter is
  copied, so learning-rate schedules continue where they were.
- Training FLOPs: 2 FLOPs per multiply-accumulate, 3 passes per sample
  (forward, backward to activations, backward to weights): an epoch costs
  6 × MACs × samples, with the MACs of the width trained in that epoch
  (`tfprune.cost`'s convention: convs and dense layers).
- Reconfiguration every `reconfigure_every` epochs (the paper uses 10 on
  CIFAR), and once more after the last epoch, so the returned model carries
  no dead channel.
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from tfprune.branches import find_dead_branches, remove_branches
from tfprune.cost import cost
from tfprune.errors import TfpruneError
from tfprune.graph import ChannelGraph, analyze
from tfprune.layouts import LAYOUTS, slice_weight
from tfprune.rebuild import rebuild
from tfprune.regularizers import GroupLasso, channel_slices

FLOPS_PER_MAC = 2
PASSES_PER_SAMPLE = 3  # forward, backward to activations, backward to weights
CHECKPOINT_FORMAT = "tfprune.prunetrain/1"


# -- dead channels --------------------------------------------------------
def channel_magnitudes(model):
    """Largest |w| among the Conv/Dense weights tied to each channel.

    Args:
        model: a `keras.Model` or its `ChannelGraph`.

    Returns:
        A float array over the graph's channel numbering: for each channel,
        the largest absolute value among the filters (and biases) that
        write it and the kernel slices that read it.
    """
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    peak = np.zeros(graph.num_channels)
    for s in channel_slices(graph):
        value = np.abs(keras.ops.convert_to_numpy(s.variable))
        others = tuple(a for a in range(value.ndim) if a != s.axis)
        np.maximum.at(peak, s.channels, value.max(axis=others) if others else value)
    return peak


def dead_channels(model, threshold=1e-4):
    """Channels whose every tied Conv/Dense weight is below `threshold`.

    Args:
        model: a `keras.Model` or its `ChannelGraph`.
        threshold: the magnitude under which a weight counts as zero.

    Returns:
        A bool array over the graph's channel numbering (True: dead).
    """
    return channel_magnitudes(model) < threshold


def _keep_alive(graph, peak, dead):
    """Plan indices: the live channels of each prunable group."""
    keep = {}
    for group in graph.prunable_groups:
        span = slice(group.offset, group.offset + group.size)
        if not dead[span].any():
            continue
        strength = peak[span]
        alive = set(np.flatnonzero(~dead[span]).tolist())
        for part in group.segments:  # every tensor of the group keeps one
            if not alive.intersection(part.tolist()):
                alive.add(int(part[np.argmax(strength[part])]))
        if not alive:  # a whole group died where no branch can go
            alive = {int(np.argmax(strength))}
        keep[group.id] = sorted(alive)
    return keep


# -- optimizer state ------------------------------------------------------
def _weights_by_key(model):
    """(layer path, weight name) -> variable, nested models included."""
    out = {}
    stack = [((), model)]
    while stack:
        prefix, parent = stack.pop()
        for layer in parent.layers:
            path = prefix + (layer.name,)
            if isinstance(layer, keras.Model):
                stack.append((path, layer))
                continue
            for w in layer.weights:
                key = (path, w.name)
                while key in out:  # two weights of one layer share a name
                    key = key + ("'",)
                out[key] = w
    return out


def optimizer_state(optimizer, model):
    """The optimizer's variables, keyed by the model weight they belong to.

    Slot variables (momentum, Adam moments, ...) are keyed by
    `((layer path, weight name), slot)`; the others (step counter, learning
    rate, ...) by `(None, name)`. Keras names each slot
    `{weight path with '/' as '_'}_{slot}`; that is how slots are matched to
    weights.

    Args:
        optimizer: a Keras optimizer, built or not.
        model: the model whose trainable weights it updates.

    Returns:
        A dict key -> numpy array.
    """
    return {k: keras.ops.convert_to_numpy(v)
            for k, v in _optimizer_variables(optimizer, model).items()}


def _optimizer_variables(optimizer, model):
    refs = [(w.path.replace("/", "_"), key, tuple(w.shape))
            for key, w in _weights_by_key(model).items() if w.trainable]
    out = {}
    for v in optimizer.variables:
        best = None
        for prefix, key, shape in refs:
            if (v.name.startswith(prefix + "_") and tuple(v.shape) == shape
                    and (best is None or len(prefix) > len(best[0]))):
                best = (prefix, key)
        if best is None:
            out[(None, v.name)] = v
        else:
            out[(best[1], v.name[len(best[0]) + 1:])] = v
    return out


def _new_optimizer(optimizer, learning_rate=None):
    """An unbuilt optimizer with `optimizer`'s config (and schedule object)."""
    config = optimizer.get_config()
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        config["learning_rate"] = schedule  # the object: no registration needed
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return type(optimizer).from_config(config)


def load_optimizer_state(optimizer, model, state, slicers=None, skip=()):
    """Builds `optimizer` for `model` and assigns `state` to its variables.

    Args:
        optimizer: an unbuilt optimizer.
        model: the model it will train.
        state: a dict from `optimizer_state` (of this or a larger model).
        slicers: dict weight key -> function slicing an array shaped like
            that weight to its new shape (for slots of pruned weights).
        skip: keys of `state` not to assign.

    Returns:
        `optimizer`.
    """
    optimizer.build(model.trainable_variables)
    for key, var in _optimizer_variables(optimizer, model).items():
        if key not in state or key in skip:
            continue
        value = state[key]
        if key[0] is not None and slicers and key[0] in slicers:
            value = slicers[key[0]](value)
        if tuple(value.shape) != tuple(var.shape):
            raise TfpruneError(
                f"optimizer variable '{var.name}' has shape {tuple(var.shape)} "
                f"but the saved state has {tuple(value.shape)}; the state was "
                "saved for another model.")
        var.assign(value)
    return optimizer


def _slicers(graph, masks):
    """Weight key -> the slicing `rebuild` applies to that weight."""
    out = {}
    for node in graph.nodes:
        layout = LAYOUTS.get(node.class_name)
        if (layout is None or not node.first_call or node.kind == "barrier"
                or isinstance(node.layer, keras.Model)):
            continue
        in_mask, out_mask = masks[node.inputs[0]], masks[node.outputs[0]]
        repeat = int(node.config.get("depth_multiplier", 1) or 1)
        for w in node.layer.weights:
            axes = layout[w.name]
            out[(node.path, w.name)] = (
                lambda v, a=axes, i=in_mask, o=out_mask, r=repeat: slice_weight(v, a, i, o, r))
    return out


# -- reconfiguration ------------------------------------------------------
@dataclasses.dataclass
class Reconfiguration:
    """What `reconfigure` did.

    Attributes:
        model: the reconfigured model (the input model when nothing died).
        optimizer: the optimizer for it, with every slot carried over (None
            when none was given).
        removed_branches: names of the `Add` layers that lost a branch.
        removed_channels: number of channels removed from the groups that
            remain (those of removed branches not counted).
        changed: whether the model changed.
    """

    model: object
    optimizer: object
    removed_branches: list
    removed_channels: int
    changed: bool


def reconfigure(model, optimizer=None, threshold=1e-4, custom_objects=None,
                drop_branches=True):
    """Removes dead channels and dead residual branches from `model`.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        optimizer: optional optimizer training `model`; a new one of the
            same config is returned, built for the new model, with every
            slot sliced like its weight and the step counter copied.
        threshold: a weight below this in absolute value counts as zero.
        custom_objects: as for `tfprune.rebuild`.
        drop_branches: remove dead residual branches. A dead branch still
            adds a constant (its last BatchNorm's shift), lost with it; with
            `False` such a branch keeps one channel and the model computes
            what it computed (use it when no training follows).

    Returns:
        A `Reconfiguration`.

    Example:

    ```python
    step = tfprune.prunetrain.reconfigure(model, model.optimizer)
    model = step.model
    model.compile(step.optimizer, loss, metrics=["accuracy"])
    ```
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}.")
    graph = analyze(model)
    dead = dead_channels(graph, threshold)
    branches = find_dead_branches(graph, dead) if drop_branches else []
    source = model
    if branches:
        source = remove_branches(model, branches)
        graph = analyze(source)
    peak = channel_magnitudes(graph)
    plan = graph.plan(_keep_alive(graph, peak, peak < threshold))
    if not branches and plan.is_identity:
        return Reconfiguration(model, optimizer, [], 0, False)
    new = source if plan.is_identity else rebuild(source, plan, custom_objects)
    new_optimizer = None
    if optimizer is not None:
        new_optimizer = load_optimizer_state(
            _new_optimizer(optimizer), new, optimizer_state(optimizer, model),
            _slicers(graph, plan.masks()))
    removed = graph.num_channels - int(plan.kept_channels.sum())
    return Reconfiguration(new, new_optimizer, sorted({b.add for b in branches}),
                           removed, True)


# -- training -------------------------------------------------------------
@keras.saving.register_keras_serializable(package="tfprune")
class PruneTrainModel(keras.Model):
    """A functional model whose training loss adds the group lasso.

    `fit` trains one of these per segment between reconfigurations; user
    callbacks see it as `self.model`. Its loss is the compiled loss plus
    λ·R, with λ fixed at the first training step (see the module notes).

    Args:
        inputs, outputs: as for a functional `keras.Model`.
        penalty_ratio: r in [0, 1); 0 trains without penalty.

    Attributes:
        penalty_weight: λ, a variable (negative until the first step).
        samples_seen: training samples processed since it was made.
    """

    def __init__(self, *args, **kwargs):
        self.penalty_ratio = float(kwargs.pop("penalty_ratio", 0.2))
        super().__init__(*args, **kwargs)
        # Replicas under a distribution strategy keep the first one's λ, and
        # add up their sample counts.
        self.penalty_weight = keras.Variable(
            -1.0, trainable=False, name="penalty_weight", dtype="float32",
            aggregation="only_first_replica")
        self.samples_seen = keras.Variable(
            0, trainable=False, name="samples_seen", dtype="int32",
            aggregation="sum")
        self._lasso = None

    @property
    def lasso(self):
        """The `GroupLasso` over this model's layers (None when r is 0)."""
        if self._lasso is None and self.penalty_ratio > 0:
            self._lasso = GroupLasso(self)
        return self._lasso

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)
        loss = keras.ops.cast(loss, "float32")
        if training:
            batch = keras.ops.shape(keras.tree.flatten(x)[0])[0]
            self.samples_seen.assign_add(keras.ops.cast(batch, "int32"))
        if self.lasso is None:
            return loss
        penalty = self.lasso.penalty()
        if not training:
            return loss + keras.ops.maximum(self.penalty_weight, 0.0) * penalty
        r = self.penalty_ratio
        first = keras.ops.stop_gradient(r * loss / ((1.0 - r) * penalty))
        weight = keras.ops.where(self.penalty_weight < 0, first, self.penalty_weight)
        self.penalty_weight.assign(weight)
        return loss + weight * penalty

    def get_config(self):
        return {**super().get_config(), "penalty_ratio": self.penalty_ratio}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        ratio = config.pop("penalty_ratio", 0.2)
        model = keras.Model.from_config(config, custom_objects=custom_objects)
        return cls(model.inputs, model.outputs, name=model.name, penalty_ratio=ratio)


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


@dataclasses.dataclass
class _Run:
    """The state of a run that a checkpoint must restore."""

    model_name: str
    epoch: int = 0
    reconfigured_at: int = -1
    penalty_weight: float = -1.0
    history: dict = dataclasses.field(default_factory=dict)
    train_flops: float = 0.0
    samples: int = 0
    dense_macs: float = 0.0
    reconfigurations: list = dataclasses.field(default_factory=list)
    batch_scale: int = 1
    base_batch: int = 0


class _Figures(keras.callbacks.Callback):
    """Writes macs, params and training FLOPs so far into the epoch logs."""

    def __init__(self, run, model_cost, dynamic):
        super().__init__()
        self.run, self.cost, self.dynamic = run, model_cost, dynamic

    def _seen(self):
        return int(keras.ops.convert_to_numpy(self.model.samples_seen))

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._seen()

    def on_epoch_end(self, epoch, logs=None):
        samples = self._seen() - self._start
        self.run.samples += samples
        self.run.train_flops += (FLOPS_PER_MAC * PASSES_PER_SAMPLE
                                 * self.cost.macs * samples)
        if logs is not None:
            logs["macs"] = self.cost.macs
            logs["params"] = self.cost.params
            logs["train_flops"] = self.run.train_flops
            if self.dynamic:
                logs["batch_size"] = self.run.base_batch * self.run.batch_scale


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
    """Keeps the run's history and saves a checkpoint after every epoch."""

    def __init__(self, run, save):
        super().__init__()
        self.run, self.save = run, save

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.run.history.setdefault(k, []).append(float(v))
        self.run.epoch = epoch + 1
        self.run.penalty_weight = float(
            keras.ops.convert_to_numpy(self.model.penalty_weight))
        if self.save:
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
    old = optimizer._learning_rate
    now = int(keras.ops.convert_to_numpy(optimizer.iterations))
    schedule = BatchScaledSchedule(old.base, scale, old.base_step(now), now)
    return load_optimizer_state(_new_optimizer(optimizer, schedule), model,
                                optimizer_state(optimizer, model))


def _batched(train, y, batch_size, run):
    """The training data at the run's current batch size."""
    if run.batch_scale == 1 or not run.base_batch:
        return train, batch_size
    size = run.base_batch * run.batch_scale
    if y is not None or isinstance(train, np.ndarray):
        return train, size
    return train.rebatch(size), None


def _state_path(directory):
    return os.path.join(directory, "state.json")


def _save_checkpoint(directory, run, model, optimizer):
    """Writes model, optimizer state and run state; the state file last."""
    os.makedirs(directory, exist_ok=True)
    tag = f"e{run.epoch:04d}-r{len(run.reconfigurations)}"
    model_file, state_file = f"model-{tag}.keras", f"optimizer-{tag}.npz"
    state = optimizer_state(optimizer, model)
    keys = list(state)
    model.save(os.path.join(directory, model_file))
    with open(os.path.join(directory, state_file), "wb") as f:
        np.savez(f, *[state[k] for k in keys])
    data = {
        "format": CHECKPOINT_FORMAT, "run": dataclasses.asdict(run),
        "model": model_file, "optimizer_state": state_file,
        "optimizer_keys": [[list(k[0]) if k[0] else None, k[1]] for k in keys],
        "optimizer": keras.saving.serialize_keras_object(optimizer),
    }
    path = _state_path(directory)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)  # a run killed before this keeps the last one
    for name in os.listdir(directory):
        if name.startswith(("model-", "optimizer-")) and name not in (model_file, state_file):
            os.remove(os.path.join(directory, name))


def _load_checkpoint(directory, custom_objects):
    with open(_state_path(directory)) as f:
        data = json.load(f)
    if data.get("format") != CHECKPOINT_FORMAT:
        raise TfpruneError(
            f"{directory} holds no PruneTrain checkpoint (state.json is not "
            f"'{CHECKPOINT_FORMAT}'); choose another checkpoint_dir.")
    run = _Run(**data["run"])
    model = keras.saving.load_model(os.path.join(directory, data["model"]),
                                    custom_objects=custom_objects, compile=False)
    optimizer = keras.saving.deserialize_keras_object(
        data["optimizer"], custom_objects=custom_objects)
    with np.load(os.path.join(directory, data["optimizer_state"])) as arrays:
        values = [arrays[f"arr_{i}"] for i in range(len(data["optimizer_keys"]))]
    state = {}
    for (weight, name), value in zip(data["optimizer_keys"], values):
        key = (None if weight is None else (tuple(weight[0]),) + tuple(weight[1:]), name)
        state[key] = value
    load_optimizer_state(optimizer, model, state)
    return model, optimizer, run


def fit(model, train, y=None, *, epochs=1, batch_size=None, validation_data=None,
        optimizer=None, loss=None, metrics=("accuracy",), penalty_ratio=0.2,
        reconfigure_every=10, threshold=1e-4, callbacks=None, checkpoint_dir=None,
        dynamic_batch=False, max_batch_scale=4, verbose="auto",
        custom_objects=None):
    """Trains `model` from scratch with PruneTrain; it shrinks as it trains.

    Training runs in segments of `reconfigure_every` epochs; after each, dead
    channels and dead residual branches are removed (`reconfigure`) and
    training continues on the smaller model with the optimizer's state and
    step carried over. To the callbacks it is one run: `on_train_begin` and
    `on_train_end` are called once, epochs are numbered across segments, and
    `self.model` is the model being trained at the time.

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
        callbacks: Keras callbacks (kept across reconfigurations; weights
            they hold, like EarlyStopping's best ones, fit only the
            architecture they were taken from).
        checkpoint_dir: if set, the run is saved there after every epoch
            and every reconfiguration, and a run started with a directory
            that holds a checkpoint resumes from it (same architecture,
            weights, optimizer state, history; user callbacks start fresh).
        dynamic_batch: grow the batch as the model shrinks (see above).
        max_batch_scale: largest batch growth factor.
        verbose: as for `keras.Model.fit`.
        custom_objects: custom layers the model needs to be re-created.

    Returns:
        A `PruneTrainResult`.

    Example:

    ```python
    model = tfprune.zoo.resnet20(input_shape=(28, 28, 1), classes=10)
    result = tfprune.prunetrain.fit(
        model, train, epochs=30, validation_data=val,
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        penalty_ratio=0.2, reconfigure_every=5, checkpoint_dir="runs/pt")
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
    resuming = checkpoint_dir and os.path.exists(_state_path(checkpoint_dir))
    if resuming:
        plain, optimizer, run = _load_checkpoint(checkpoint_dir, custom_objects)
        if run.model_name != model.name:
            raise TfpruneError(
                f"{checkpoint_dir} holds a run of model '{run.model_name}', not "
                f"'{model.name}'; choose another checkpoint_dir or delete it.")
    else:
        plain = _copy(model)
        optimizer = _new_optimizer(
            optimizer or keras.optimizers.SGD(0.1, momentum=0.9))
        run = _Run(model_name=model.name, dense_macs=float(cost(plain).macs))
        if dynamic_batch:
            run.base_batch = _first_batch_size(train, y, batch_size)
            schedule = getattr(optimizer, "_learning_rate", None)
            if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
                schedule = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            optimizer = _new_optimizer(optimizer, BatchScaledSchedule(schedule))
        if penalty_ratio > 0 and GroupLasso(plain).num_groups == 0:
            raise TfpruneError(
                f"model '{model.name}' has no prunable channel (see "
                "tfprune.analyze(model).summary()); PruneTrain has nothing to "
                "remove. Use model.fit instead.")

    def save():
        if checkpoint_dir:
            _save_checkpoint(checkpoint_dir, run, plain, optimizer)

    def reconfigure_now(final=False):
        nonlocal plain, optimizer
        # After the last epoch nothing absorbs a removed branch's constant.
        step = reconfigure(plain, optimizer, threshold, custom_objects,
                           drop_branches=not final)
        plain, optimizer = step.model, step.optimizer
        after = cost(plain)
        if dynamic_batch:
            scale = int(min(max_batch_scale, max(1, run.dense_macs // max(after.macs, 1))))
            if scale != run.batch_scale:
                optimizer = _rescale_learning_rate(optimizer, plain, scale)
                run.batch_scale = scale
        run.reconfigured_at = run.epoch
        run.reconfigurations.append({
            "epoch": run.epoch, "macs": after.macs, "params": after.params,
            "removed_channels": step.removed_channels,
            "removed_branches": step.removed_branches,
            "batch_size": run.base_batch * run.batch_scale if dynamic_batch else None})
        save()

    def boundary(epoch):
        return bool(reconfigure_every) and epoch > 0 and epoch % reconfigure_every == 0

    # Without user callbacks, none of ours needs batch hooks, and Keras may
    # dispatch them asynchronously.
    user = _Continuous(callbacks) if callbacks else None
    last_logs = None
    stopped = False
    while run.epoch < epochs and not stopped:
        if penalty_ratio > 0 and boundary(run.epoch) and run.reconfigured_at != run.epoch:
            reconfigure_now()
        end = epochs
        if reconfigure_every and penalty_ratio > 0:
            end = min(epochs, (run.epoch // reconfigure_every + 1) * reconfigure_every)
        trainer = PruneTrainModel(plain.inputs, plain.outputs, name=plain.name,
                                  penalty_ratio=penalty_ratio)
        trainer.penalty_weight.assign(run.penalty_weight)
        _ = trainer.lasso  # analyse now, not while tracing the train step
        trainer.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        data, size = _batched(train, y, batch_size, run)
        segment = trainer.fit(
            data, y, batch_size=size, epochs=end, initial_epoch=run.epoch,
            validation_data=validation_data, verbose=verbose,
            callbacks=[c for c in (_Figures(run, cost(plain), dynamic_batch), user,
                                   _Recorder(run, save)) if c is not None])
        last_logs = {k: v[-1] for k, v in segment.history.items() if v}
        stopped = bool(trainer.stop_training) or run.epoch < end
    if penalty_ratio > 0 and run.reconfigured_at != run.epoch:
        reconfigure_now(final=True)
    if user is not None:
        user.finish(last_logs)
    plain.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    dense = FLOPS_PER_MAC * PASSES_PER_SAMPLE * run.dense_macs * run.samples
    return PruneTrainResult(plain, run.history, run.reconfigurations,
                            run.penalty_weight, run.train_flops, dense, optimizer)


# -- command line ---------------------------------------------------------
def cli_train(model_name, data="fashion_mnist", epochs=30, output=None, *,
              penalty_ratio=0.2, reconfigure_every=5, threshold=1e-4,
              batch_size=128, learning_rate=0.1, checkpoint_dir=None, limit=None,
              dynamic_batch=False, verbose=2):
    """`tfprune train --method prunetrain`: a zoo model, trained and pruned.

    Trains `model_name` (a `tfprune.zoo` name) on `data` (a
    `tfprune.datasets` name; flips and 2-pixel shifts as augmentation) with
    SGD (Nesterov momentum 0.9, weight decay 5e-4) and a cosine learning
    rate with 10% linear warm-up, then saves the slim model.

    Args:
        model_name: e.g. "resnet20".
        data: e.g. "fashion_mnist".
        epochs: total epochs.
        output: the .keras file to write (written atomically).
        penalty_ratio, reconfigure_every, threshold, checkpoint_dir,
            dynamic_batch: as for `fit`.
        batch_size: training batch size.
        learning_rate: peak learning rate.
        limit: use only the first N images of each split (a smoke test).
        verbose: as for `keras.Model.fit`.

    Returns:
        0, after printing accuracy, MACs, params and training FLOPs.
    """
    from tfprune import datasets, zoo

    if not output:
        raise ValueError("give the output file with -o slim.keras")
    if not str(output).endswith(".keras"):
        raise ValueError(f"{output}: the output must be a .keras file")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive int, got {batch_size!r}")
    if learning_rate <= 0:
        raise ValueError(f"--lr must be positive, got {learning_rate}")
    meta = datasets.info(data)
    train = datasets.load(data, split="train", batch_size=batch_size, augment=True,
                          limit=limit)
    test = datasets.load(data, split="test", batch_size=512, limit=limit)
    model = zoo.get(model_name, input_shape=meta["input_shape"],
                    classes=meta["num_classes"])
    samples = min(limit or meta["num_examples"]["train"], meta["num_examples"]["train"])
    steps = math.ceil(samples / batch_size) * epochs
    warmup = max(1, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), warmup_target=learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                     weight_decay=5e-4)
    result = fit(model, train, epochs=epochs, validation_data=test,
                 optimizer=optimizer, penalty_ratio=penalty_ratio,
                 reconfigure_every=reconfigure_every, threshold=threshold,
                 checkpoint_dir=checkpoint_dir, dynamic_batch=dynamic_batch,
                 verbose=verbose)
    before, after = cost(model), cost(result.model)
    accuracy = result.model.evaluate(test, verbose=0, return_dict=True).get("accuracy")
    tmp = str(output) + ".partial.keras"
    result.model.save(tmp)
    os.replace(tmp, output)  # never leave a half-written file behind
    print(f"{'':<8} {'params':>14} {'MACs':>16}")
    print(f"{'before':<8} {before.params:>14,.0f} {before.macs:>16,.0f}")
    print(f"{'after':<8} {after.params:>14,.0f} {after.macs:>16,.0f}")
    print(f"test accuracy {accuracy:.4f}; training FLOPs {result.train_flops:.3e} "
          f"({result.train_flops_ratio:.3f} of dense training); "
          f"λ = {result.penalty_weight:.3e}")
    print(f"wrote {output}")
    return 0
