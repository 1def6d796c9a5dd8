"""The SMOF model: kernel-ring masks and channel gates under a budget loss."""

import keras
import numpy as np

from tfprune.core.budget import check_budget
from tfprune.core.configs import (
    copy_weights_by_name,
    functional_serialized,
)
from tfprune.core.cost import cost, node_cost
from tfprune.core.graph import analyze
from tfprune.core.plan import PruningPlan
from tfprune.errors import TargetUnreachableError, TfpruneError
from tfprune.methods.gates import (
    GATE,
    fold_gates,
    functional_model,
    gate_positions,
    insert_gates,
    model_structure,
)
from tfprune.methods.registry import Method, Option, TrainingSession, register_method
from tfprune.methods.smof.ring_masks import (
    KERNEL_MASK,
    maskable,
    num_rings,
    size_for_radius,
    unwrap_kernel_masks,
)

_OPTIONS = ("target_macs", "target_params", "weight", "threshold")


@keras.saving.register_keras_serializable(package="tfprune")
class SMOFModel(keras.Model):
    """A functional model with kernel-ring masks, channel gates and a budget.

    Made by `tfprune.methods.smof.mask`. Its loss is the compiled loss plus the
    budget loss; `budget_cost()` gives the (hard) params and MACs now.

    Args:
        inputs, outputs: as for a functional `keras.Model`.
        target_macs, target_params: targets (absolute counts).
        weight: weight of the budget loss.
        threshold: factor below which a ring or channel counts as removed.
    """

    def __init__(self, *args, **kwargs):
        self.target_macs = kwargs.pop("target_macs", None)
        self.target_params = kwargs.pop("target_params", None)
        self.weight = float(kwargs.pop("weight", 5.0))
        self.threshold = float(kwargs.pop("threshold", 0.05))
        super().__init__(*args, **kwargs)
        self._budget = None
        self.budget_progress = keras.Variable(1.0, trainable=False, name="budget_progress")

    @property
    def budget(self):
        if self._budget is None:
            self._budget = _SoftBudget(self)
        return self._budget

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self._budget is None:  # built eagerly: it reads the model's config
            self._budget = _SoftBudget(self)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)
        return loss + self.budget.loss()

    def budget_cost(self):
        """(params, MACs) of the plan the masks give at `threshold` now."""
        params, macs = self.budget.cost(hard_numpy=True)
        return float(params), float(macs)

    def get_config(self):
        return {**super().get_config(), **{k: getattr(self, k) for k in _OPTIONS}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        extra = {k: config.pop(k) for k in _OPTIONS if k in config}
        model = keras.Model.from_config(config, custom_objects=custom_objects)
        return cls(*model_structure(model), name=model.name, **extra)


def _hard_rings(values, threshold):
    """Bool per ring: counted when it or any ring outside it is above."""
    above = values > threshold
    return np.flip(np.logical_or.accumulate(np.flip(above)))


class _SoftBudget:
    """`tfprune.cost`'s formulas over gate counts and masked kernel sizes."""

    def __init__(self, model):
        self.model = model
        plain = unwrap_kernel_masks(model, fold=False)
        self.graph = graph = analyze(plain)
        self.gates = {}
        for node in graph.nodes:
            if node.class_name == GATE and node.first_call:
                gid = graph.group_id_of_channel(graph.channels[node.inputs[0]][0])
                self.gates[gid] = model.get_layer(node.path[-1])
        self.masks = {layer.name: layer for layer in model.layers
                      if type(layer).__name__ == KERNEL_MASK}
        self.nodes = [n for n in graph.nodes if n.class_name != GATE]
        self.full = self.cost(hard_numpy=True, everything=True)

    def _presence(self, hard_numpy, everything=False):
        threshold = self.model.threshold
        parts = []
        for g in self.graph.groups:
            if g.id in self.gates and not everything:
                gate = self.gates[g.id].gate
                if hard_numpy:
                    value = keras.ops.convert_to_numpy(gate)
                    hard = value > threshold
                    hard[np.argmax(value)] = True
                    parts.append(hard.astype("float32"))
                else:
                    top = keras.ops.cast(
                        keras.ops.arange(g.size) == keras.ops.argmax(gate), gate.dtype)
                    hard = keras.ops.cast(gate > threshold, gate.dtype)
                    soft = gate + keras.ops.stop_gradient(hard - gate)
                    parts.append(top + (1.0 - top) * soft)
            else:
                parts.append(np.ones(g.size, dtype="float32"))
        if hard_numpy:
            return np.concatenate(parts)
        return keras.ops.concatenate([keras.ops.convert_to_tensor(p, "float32")
                                      for p in parts])

    def kernel_sizes(self, hard_numpy, everything=False):
        """Layer name -> kernel size per axis (soft tensors unless hard)."""
        out = {}
        if everything:
            return out
        for name, mask in self.masks.items():
            kernel = tuple(mask.layer.kernel_size)
            rings = mask.rings
            if hard_numpy:
                value = keras.ops.convert_to_numpy(rings)
                radius = int(_hard_rings(value, self.model.threshold).sum())
                out[name] = size_for_radius(kernel, radius)
                continue
            soft = rings + keras.ops.stop_gradient(self._hard_tensor(rings) - rings)
            out[name] = tuple(1.0 + 2.0 * keras.ops.sum(soft[:(k - 1) // 2])
                              for k in kernel)
        return out

    def _hard_tensor(self, rings):
        above = keras.ops.cast(rings > self.model.threshold, rings.dtype)
        # counted if any ring at or outside it is above: a reversed cumsum
        outside = keras.ops.flip(keras.ops.cumsum(keras.ops.flip(above)))
        return keras.ops.cast(outside > 0.0, rings.dtype)

    def cost(self, hard_numpy=False, everything=False):
        presence = self._presence(hard_numpy, everything)
        kernels = self.kernel_sizes(hard_numpy, everything)
        take, total = (np.take, np.sum) if hard_numpy else (keras.ops.take, keras.ops.sum)

        def count(key):
            return total(take(presence, self.graph.channels[key]))

        params = macs = 0
        for node in self.nodes:
            p, m = node_cost(self.graph, node, count, kernels)
            params, macs = params + p, macs + m
        return params, macs

    def loss(self):
        params, macs = self.cost()
        progress = keras.ops.convert_to_tensor(self.model.budget_progress)
        loss = 0.0
        for target, current, full in ((self.model.target_macs, macs, self.full[1]),
                                      (self.model.target_params, params, self.full[0])):
            if target:
                goal = full - progress * (full - target)
                loss = loss + keras.ops.relu(current / goal - 1.0)
        return self.model.weight * loss


def _maskable(graph):
    """Names of the convs whose kernel rings get a mask."""
    calls = {}
    for node in graph.nodes:
        calls[node.path] = calls.get(node.path, 0) + 1
    out = []
    for node in graph.nodes:
        cfg = node.config
        if (maskable(node.layer) and len(node.path) == 1
                and calls[node.path] == 1 and cfg.get("padding") in ("same", "valid")
                and cfg.get("data_format", "channels_last") == "channels_last"
                and num_rings(tuple(cfg["kernel_size"])) > 0):
            out.append(node.name)
    return out


def mask(model, budget, weight=5.0, threshold=0.05):
    """A copy of `model` with kernel-ring masks and channel gates.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        budget: a `tfprune.Budget` with `macs` and/or `params` (SMOF takes no
            latency target and does not round widths).
        weight: weight of the budget loss against the task loss.
        threshold: factor under which a ring or channel counts as removed.

    Returns:
        An `SMOFModel` with the same weights; compile and fit it with
        `SMOFSchedule()` among the callbacks.

    Example:

    ```python
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.5))
    masked.compile("sgd", "sparse_categorical_crossentropy")
    masked.fit(x, y, epochs=1, verbose=0,
               callbacks=[tfprune.methods.smof.SMOFSchedule()])
    slim = tfprune.rebuild(masked, tfprune.methods.smof.plan(masked))
    ```
    """
    _check_budget(budget)
    graph = analyze(model)
    if any(n.class_name in (GATE, KERNEL_MASK) for n in graph.nodes):
        raise TfpruneError(f"model '{model.name}' already has gates or kernel masks.")
    limits = budget.resolve(graph)
    positions = gate_positions(graph)
    wrapped = _maskable(graph)
    if not positions and not wrapped:
        raise TfpruneError(
            f"model '{model.name}' has neither a prunable channel group nor a "
            "convolution with a kernel wider than 1; see "
            "tfprune.analyze(model).summary().")
    model = functional_model(model)
    serialized = functional_serialized(model)
    config = serialized["config"]
    entries = config["layers"]
    by_name = {e.get("name") or e["config"]["name"]: i for i, e in enumerate(entries)}
    for name in wrapped:
        entry = entries[by_name[name]]
        inbound = entry["inbound_nodes"]
        inner = {k: v for k, v in entry.items() if k not in ("inbound_nodes", "build_config")}
        entry.clear()
        entry.update({
            "module": "tfprune.methods.smof.ring_masks", "class_name": KERNEL_MASK,
            "registered_name": f"tfprune>{KERNEL_MASK}", "name": name,
            "config": {"name": name, "trainable": inner["config"].get("trainable", True),
                       "dtype": inner["config"].get("dtype"), "layer": inner,
                       "initial_value": 1.0},
            "inbound_nodes": inbound})
    gates = insert_gates(serialized, graph, positions)
    plain = keras.saving.deserialize_keras_object(serialized)
    copy_weights_by_name(model, plain, skip=set(wrapped) | gates)
    for name in wrapped:
        plain.get_layer(name).layer.set_weights(model.get_layer(name).get_weights())
    return SMOFModel(*model_structure(plain), name=model.name,
                     target_macs=limits.get("macs"), target_params=limits.get("params"),
                     weight=weight, threshold=threshold)


def _check_budget(budget):
    check_budget(budget)
    if budget.latency is not None:
        raise ValueError("SMOF takes no latency target; give macs= or params=.")
    if budget.round_to != 1:
        raise ValueError("SMOF does not round widths (its kernels shrink by whole "
                         "rings instead); leave round_to at 1.")


def attach(model, budget, weight=5.0, threshold=0.05, ramp_epochs=1):
    """Starts SMOF: masks to train against `budget`, and the callback for `fit`.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        budget: as for `mask`.
        weight, threshold: as for `mask`.
        ramp_epochs: as for `SMOFSchedule`.

    Returns:
        A `TrainingSession`; compile and fit `session.model` (an `SMOFModel`)
        with `session.callbacks`; `session.plan()` is `plan(session.model)`.

    Example:

    ```python
    session = tfprune.methods.smof.attach(model, tfprune.Budget(macs=0.5))
    session.model.compile("sgd", "sparse_categorical_crossentropy")
    session.model.fit(x, y, epochs=1, callbacks=session.callbacks, verbose=0)
    slim = session.rebuild()
    ```
    """
    masked = mask(model, budget, weight=weight, threshold=threshold)
    return TrainingSession(masked, [SMOFSchedule(ramp_epochs=ramp_epochs)],
                           lambda: plan(masked))


def kernel_plan(model, threshold=None):
    """Layer name -> kernel size its ring factors give (changed ones only)."""
    threshold = getattr(model, "threshold", 0.05) if threshold is None else threshold
    out = {}
    for layer in model.layers:
        if type(layer).__name__ == KERNEL_MASK:
            values = keras.ops.convert_to_numpy(layer.rings)
            kernel = tuple(layer.layer.kernel_size)
            size = size_for_radius(kernel, int(_hard_rings(values, threshold).sum()))
            if size != kernel:
                out[layer.name] = size
    return out


def plan(model, budget=None):
    """The pruning plan of a trained `SMOFModel`: kernel sizes and channels.

    Kernel sizes come from the ring factors (rings above the model's
    `threshold` stay); channels are those whose gate is above a threshold
    that starts at the model's and rises, by bisection over the gate values,
    until the plan (with its kernel sizes) meets the target.

    Args:
        model: an `SMOFModel`.
        budget: a `tfprune.Budget` overriding the one given to `mask`
            (fractions of the unmasked model's figures, or counts).

    Returns:
        A `PruningPlan` for the model without masks; `tfprune.rebuild(model,
        plan)` folds the masks and slices.

    Raises:
        TargetUnreachableError: if even one channel per gated group with
            these kernel sizes is above the target.
    """
    threshold = float(getattr(model, "threshold", 0.05))
    kernels = kernel_plan(model, threshold)
    plain = unwrap_kernel_masks(model, fold=False)
    gated = analyze(plain)
    scores = {}
    for node in gated.nodes:
        if node.class_name == GATE and node.first_call:
            group = gated.groups[gated.group_id_of_channel(gated.channels[node.inputs[0]][0])]
            scores[tuple(group.producers)] = keras.ops.convert_to_numpy(
                model.get_layer(node.path[-1]).gate).astype(np.float64)
    graph = analyze(fold_gates(plain))
    if budget is None:
        macs, params = getattr(model, "target_macs", None), getattr(model, "target_params", None)
        if macs is None and params is None:
            raise ValueError(f"model '{model.name}' carries no budget (it was not made "
                             "by tfprune.methods.smof.mask): pass budget=.")
    else:
        _check_budget(budget)
        limits = budget.resolve(graph)
        macs, params = limits.get("macs"), limits.get("params")
    gated_groups = {g.id: scores[tuple(g.producers)] for g in graph.groups
                    if tuple(g.producers) in scores}

    def make(t):
        keep = {}
        for gid, values in gated_groups.items():
            kept = values > t
            kept[np.argmax(values)] = True
            keep[gid] = np.flatnonzero(kept)
        return PruningPlan(graph, keep, kernels=kernels)

    def fits(p):
        c = cost(graph, p)
        return (macs is None or c.macs <= macs) and (params is None or c.params <= params)

    candidate = make(threshold)
    if fits(candidate):
        return candidate
    values = np.unique(np.concatenate([v for v in gated_groups.values()] + [[threshold]]))
    values = values[values >= threshold]
    lo, hi = 0, len(values) - 1  # fits(make(values[hi])): only the strongest stay
    if not fits(make(values[hi])):
        c = cost(graph, make(values[hi]))
        raise TargetUnreachableError(
            f"model '{model.name}': with kernel sizes {kernels} and one channel per "
            f"gated group the cost is {c.macs} MACs / {c.params} params, above the "
            f"target ({macs} MACs, {params} params); train longer or ask for less.")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(make(values[mid])):
            hi = mid
        else:
            lo = mid
    return make(values[hi])


class SMOFSchedule(keras.callbacks.Callback):
    """Ramps an `SMOFModel`'s budget and writes its size into the logs.

    The budget moves linearly from the full size to the target over the
    first `ramp_epochs` epochs (0: the whole target at once). At the end of
    every epoch it adds `macs`, `params`, `macs_ratio`, `params_ratio`
    (against the model before masking), `kernels_shrunk` (convs whose
    kernel the masks shrink now) and `budget_loss` to `logs`. Place it
    before `CSVLogger` / `TensorBoard` in the callbacks list.

    Args:
        ramp_epochs: epochs over which the target is reached.

    Example:

    ```python
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.5))
    masked.compile("sgd", loss)
    masked.fit(train, epochs=2, verbose=0,
               callbacks=[tfprune.methods.smof.SMOFSchedule(ramp_epochs=1),
                          keras.callbacks.CSVLogger("smof.csv")])
    ```
    """

    def __init__(self, ramp_epochs=1):
        super().__init__()
        self.ramp_epochs = float(ramp_epochs)
        self._steps = None
        self._step = 0

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, SMOFModel):
            raise TypeError("SMOFSchedule needs an SMOFModel: tfprune.methods.smof.mask(...) or attach(...).model.")
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
        full_params, full_macs = self.model.budget.full
        logs["macs"] = macs
        logs["params"] = params
        logs["macs_ratio"] = macs / float(full_macs)
        logs["params_ratio"] = params / float(full_params)
        logs["kernels_shrunk"] = float(len(kernel_plan(self.model)))
        logs["budget_loss"] = float(keras.ops.convert_to_numpy(self.model.budget.loss()))


register_method("smof", Method(
    attach=attach,
    summary="trainable kernel-ring masks and channel gates: smaller kernels as well "
            "as fewer channels",
    paper="Liu et al. 2021, SMOF: Squeezing More Out of Filters Yields "
          "Hardware-Friendly CNN Pruning",
    round_to=False, kernels=True,
    options=[Option("weight", float, 5.0, "weight of the budget loss"),
             Option("threshold", float, 0.05, "factor under which a ring or channel "
                    "counts as removed"),
             Option("ramp_epochs", float, 1.0, "epochs over which the budget "
                    "reaches its target")]))
