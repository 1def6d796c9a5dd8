"""Holistic Filter Pruning: trainable gates that meet a params/MACs/latency budget.

After Enderich et al., "Holistic Filter Pruning for Efficient Deep Neural
Networks" (WACV 2021): every prunable channel group gets a trainable factor
per channel; after each forward pass the network's complexity is computed
from the factors and compared with the target, and a budget loss lets
gradient descent decide which layers give up how much.

tfprune's choices:

- Gates: one `ChannelGate` per channel group, factors in [0, 1] starting at
  1, placed after each producer's BatchNormalization (or after the producer
  when it has none) and shared by every producer of the group.
- Counting: a channel counts as present when its factor is above
  `threshold`. The forward pass uses that hard count, so the budget loss sees
  the size the pruned network will really have; gradients flow through the
  factors themselves (straight-through estimator).
- Budget loss: `weight * relu(cost / target - 1)` for MACs, params and/or
  predicted latency, computed with `tfprune.cost`'s formulas over those
  counts, and for latency with a `tfprune.latency.LatencyTable`'s
  prediction (its piecewise-linear time per group, written as a sum of
  clipped ramps so that it has a gradient, plus its interaction term). It is zero once
  the budget is met, so training is otherwise left alone. The strongest
  channel of each group always counts and is never pushed, so no group
  dies. Once hardened, a channel counts when its mask is 1 (what the plan
  keeps). With `HolisticBudget(ramp_epochs=...)` the target moves from the
  full size to the goal over the first epochs: asking for the whole cut at
  step one can switch off channels faster than the task loss can move the
  cut to the right places, and a network that collapses does not recover.
- Plan: channels ranked by factor, one global ranking, the least pruning
  that meets the target (`tfprune.ranking.fit.fit_plan`); so the result is within
  the budget and close to it.
- Hardening (no jolt at pruning time): when the ramp ends, `HolisticBudget`
  takes that plan's channels as final, sets their gates to exactly zero (a
  non-trainable mask keeps them there; `fade_epochs` lets them fade out
  instead of dropping) and switches the budget loss off. The remaining
  epochs train exactly the network the rebuild returns, so pruning
  afterwards changes no output. The search before it keeps soft factors:
  gates with a hard 0/1 forward pass and a straight-through gradient would
  flip channels on and off at every small move (loss and gradient then
  disagree), and their set (factor > threshold) is not the set the plan
  removes, so a gap between the gated and the pruned network would remain.
  With `harden=False` the removed channels keep factors up to `threshold`,
  and the pruned network differs from the gated one by what they
  contributed.
- Rebuild: factors (gate × mask) are folded into the producers' weights (BN
  gamma/beta, or kernel columns and bias), so the slim model computes what
  the gated model computes with the removed channels zeroed: after
  hardening, exactly what the gated model computes.

Groups that several tensors carry only in part (a Concatenate later added to
another tensor) and groups produced inside nested models are not gated; they
keep their width.
"""


import keras
import numpy as np

from tfprune.core.budget import Budget, check_budget
from tfprune.core.configs import (
    copy_weights_by_name,
    functional_serialized,
)
from tfprune.core.cost import cost, node_cost
from tfprune.core.graph import analyze
from tfprune.core.plan import PruningPlan
from tfprune.errors import InvalidPlanError, LatencyTableMismatchError, TfpruneError
from tfprune.latency import LatencyTable
from tfprune.methods.gates import (
    GATE,
    fold_gates,
    functional_model,
    gate_positions,
    insert_gates,
    model_structure,
)
from tfprune.methods.registry import Method, Option, TrainingSession, register_method
from tfprune.ranking.fit import fit_plan
from tfprune.training.replicas import MultiWorkerFit, per_replica, strategy_scope


@keras.saving.register_keras_serializable(package="tfprune")
class GatedModel(MultiWorkerFit, keras.Model):
    """A functional model with `ChannelGate`s and a budget loss.

    Made by `tfprune.methods.hfp.gate`. Its loss is the compiled loss plus the
    budget loss; `budget_cost()` gives the current (hard) params and MACs,
    `budget_latency()` the predicted latency.

    Args:
        inputs, outputs: as for a functional `keras.Model`.
        target_macs: MACs target (absolute count).
        target_params: params target (absolute count).
        target_latency: predicted latency target in milliseconds.
        latency_table: the `LatencyTable` (or its `as_dict()`) of the model
            before gating; needed for `target_latency`.
        weight: weight of the budget loss.
        threshold: factor below which a channel counts as removed.
        round_to: the budget's width granularity (an int or "auto"), used
            when the gates are hardened and planned.
    """

    # (*args, **kwargs): Keras then serialises this class like a functional
    # model (its layer graph), which is what tfprune reads.
    def __init__(self, *args, **kwargs):
        self.target_macs = kwargs.pop("target_macs", None)
        self.target_params = kwargs.pop("target_params", None)
        target_latency = kwargs.pop("target_latency", None)
        self.target_latency = None if target_latency is None else float(target_latency)
        table = kwargs.pop("latency_table", None)
        if isinstance(table, dict):
            table = LatencyTable.from_dict(table)
        if self.target_latency is not None and table is None:
            raise ValueError("a latency target needs its latency_table.")
        self.latency_table = table
        self.round_to = kwargs.pop("round_to", 1)
        self.weight = float(kwargs.pop("weight", 5.0))
        self.threshold = float(kwargs.pop("threshold", 0.05))
        super().__init__(*args, **kwargs)
        self._budget = None
        # Fraction of the way from the full model to the target that the
        # budget asks for now; HolisticBudget ramps it up, 1.0 without it.
        self.budget_progress = keras.Variable(1.0, trainable=False, name="budget_progress")
        # 1 while the budget loss acts; `harden` sets it to 0 (the channels
        # are chosen, the loss has nothing left to decide).
        self.budget_active = keras.Variable(1.0, trainable=False, name="budget_active")

    @property
    def hardened(self):
        """Whether `harden` has fixed the channels to remove."""
        return float(keras.ops.convert_to_numpy(self.budget_active)) == 0.0

    @property
    def budget(self):
        if self._budget is None:
            self._budget = _SoftBudget(self)
        return self._budget

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)
        # Keras divides the compiled loss by the replicas (their gradients
        # are summed); the budget term must be divided alike.
        return loss + per_replica(self.budget.loss())

    def budget_cost(self):
        """(params, MACs) the model would have if pruned at `threshold` now."""
        params, macs = self.budget.cost(hard_numpy=True)
        return float(params), float(macs)

    def budget_latency(self):
        """Predicted latency (ms) if pruned at `threshold` now (None without
        a latency table): `latency_table.predict` of those channels."""
        if self.latency_table is None:
            return None
        return float(self.budget.latency(hard_numpy=True))

    def get_config(self):
        table = self.latency_table
        return {**super().get_config(), "target_macs": self.target_macs,
                "target_params": self.target_params,
                "target_latency": self.target_latency,
                "latency_table": None if table is None else table.as_dict(),
                "weight": self.weight, "threshold": self.threshold,
                "round_to": self.round_to}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        extra = {k: config.pop(k) for k in
                 ("target_macs", "target_params", "target_latency", "latency_table",
                  "weight", "threshold", "round_to") if k in config}
        model = keras.Model.from_config(config, custom_objects=custom_objects)
        return cls(*model_structure(model), name=model.name, **extra)


class _SoftBudget:
    """The cost formulas of `tfprune.cost` and the latency table's
    prediction, over the gates' channel counts."""

    def __init__(self, model):
        self.model = model
        graph = analyze(model)
        self.graph = graph
        self.gates = {}  # group id -> gate variable
        for node in graph.nodes:
            if node.class_name == GATE and node.first_call:
                gid = graph.group_id_of_channel(graph.channels[node.inputs[0]][0])
                self.gates[gid] = node.layer
        gated = np.zeros(graph.num_channels, dtype=bool)
        for gid in self.gates:
            g = graph.groups[gid]
            gated[g.offset:g.offset + g.size] = True
        self.variable_nodes, constant = [], [0, 0]
        for node in graph.nodes:
            if node.class_name == GATE:
                continue  # folded away on rebuild
            keys = node.inputs + node.outputs
            if any(gated[graph.channels[k]].any() for k in keys if k in graph.channels):
                self.variable_nodes.append(node)
            else:
                p, m = node_cost(graph, node, lambda k: len(graph.channels[k]))
                constant[0] += p
                constant[1] += m
        self.constant = constant
        table = getattr(model, "latency_table", None)
        # The table describes the model before gating: find its groups and
        # layers in the gated graph by name.
        self.table = None if table is None else table.matched_to(graph)
        self._shares = self._interaction_shares() if self.table is not None else []
        self.targets = [(model.target_macs, "macs"), (model.target_params, "params"),
                        (getattr(model, "target_latency", None), "latency")]
        ones = np.ones(graph.num_channels, dtype="float32")
        params, macs = self._cost_with(ones, np.take, np.sum)
        self.full = {"macs": float(macs), "params": float(params),
                     "latency": None if self.table is None else self.table.base_ms}

    def _presence(self, hard_numpy):
        """Per-channel presence over the graph's channel numbering.

        The strongest channel of every group always counts as present and is
        not pushed by the budget: a group never loses its last channel.
        """
        parts = []
        hardened = hard_numpy and getattr(self.model, "hardened", False)
        for g in self.graph.groups:
            if g.id in self.gates:
                layer = self.gates[g.id]
                gate = layer.factors
                if hardened:  # exactly what the plan keeps
                    parts.append(keras.ops.convert_to_numpy(layer.mask) > 0)
                elif hard_numpy:
                    value = keras.ops.convert_to_numpy(gate)
                    hard = value > self.model.threshold
                    hard[np.argmax(value)] = True
                    parts.append(hard.astype("float32"))
                else:
                    top = keras.ops.cast(
                        keras.ops.arange(g.size) == keras.ops.argmax(gate), gate.dtype)
                    hard = keras.ops.cast(gate > self.model.threshold, gate.dtype)
                    soft = gate + keras.ops.stop_gradient(hard - gate)
                    parts.append(top + (1.0 - top) * soft)
            else:
                parts.append(np.ones(g.size, dtype="float32"))
        if hard_numpy:
            return np.concatenate(parts).astype("float32")
        return keras.ops.concatenate([keras.ops.convert_to_tensor(p, "float32")
                                      for p in parts])

    def cost(self, hard_numpy=False):
        presence = self._presence(hard_numpy)
        if hard_numpy:
            return self._cost_with(presence, np.take, np.sum)
        return self._cost_with(presence, keras.ops.take, keras.ops.sum)

    def _cost_with(self, presence, take, total):
        def count(key):
            return total(take(presence, self.graph.channels[key]))

        params, macs = self.constant
        for node in self.variable_nodes:
            p, m = node_cost(self.graph, node, count)
            params, macs = params + p, macs + m
        return params, macs

    def _interaction_shares(self):
        """Per interaction row of the table: (s_in, s_out) over group ids,
        each group's share of the layer's input (output) channels, as
        `LatencyTable._interaction_ms` computes them."""
        graph = self.graph
        owner = np.array([graph.group_id_of_channel(c)
                          for c in range(graph.num_channels)], dtype=int)
        n = len(graph.groups)
        return [tuple(np.bincount(owner[graph.channels[row[k]]], minlength=n)
                      / len(graph.channels[row[k]]) for k in ("in", "out"))
                for row in self.table.interactions]

    def latency(self, hard_numpy=False):
        """The table's predicted latency (ms) at the gates' channel counts.

        With `hard_numpy`, a float computed in numpy (float64) that equals
        `table.predict` of a plan keeping the counted channels; otherwise a
        tensor whose gradient reaches the gates (straight-through counts).
        """
        presence = self._presence(hard_numpy)
        if hard_numpy:
            presence = presence.astype(np.float64)
            ops, total = np, np.sum
        else:
            ops, total = keras.ops, keras.ops.sum
        table = self.table
        result = 0.0  # the change from base_ms, before the table's scale
        saved = {}  # D_g = 1 - t_g(count) / t_g(full), the relative time saved
        for gid, row in table.groups.items():
            g = self.graph.groups[gid]
            count = total(presence[g.offset:g.offset + g.size])
            ms0, pieces = table.pieces(gid)
            ms = ms0
            for start, length, slope in pieces:
                ms = ms + slope * ops.minimum(ops.maximum(count - start, 0.0), length)
            full = row["ms"][-1]
            result = result + (ms - full)
            if full > 0:
                saved[gid] = 1.0 - ms / full
        for row, (s_in, s_out) in zip(table.interactions, self._shares):
            d = [(v, s_in[gid], s_out[gid]) for gid, v in saved.items()
                 if s_in[gid] or s_out[gid]]
            if not d:
                continue
            # sum over a != b of D_a s_in[a] * D_b s_out[b]
            d_in = sum(v * a for v, a, _ in d)
            d_out = sum(v * b for v, _, b in d)
            same = sum(v * v * a * b for v, a, b in d)
            result = result + row["ms"] * (d_in * d_out - same)
        result = table.base_ms + table.scale * result
        return float(result) if hard_numpy else result

    def loss(self):
        figures = {}
        needed = {key for target, key in self.targets if target}
        if needed & {"macs", "params"}:
            figures["params"], figures["macs"] = self.cost()
        if "latency" in needed:
            figures["latency"] = self.latency()
        progress = keras.ops.convert_to_tensor(self.model.budget_progress)
        loss = 0.0
        for target, key in self.targets:
            if target:
                full = self.full[key]
                current = full - progress * (full - target)
                loss = loss + keras.ops.relu(figures[key] / current - 1.0)
        return self.model.weight * self.model.budget_active * loss


def gate(model, budget, weight=5.0, threshold=0.05):
    """A copy of `model` with a `ChannelGate` on every prunable group.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        budget: a `tfprune.Budget`. Its targets become the budget loss's
            (in counts and milliseconds); with its latency `table` (even
            without a latency target) `HolisticBudget` logs `latency_ms`.
        weight: weight of the budget loss against the task loss.
        threshold: gate factor under which a channel counts as removed.

    Returns:
        A `GatedModel` with the same weights; compile and fit it with
        `HolisticBudget()` among the callbacks.

    Example:

    ```python
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5))
    gated.compile("sgd", "sparse_categorical_crossentropy")
    gated.fit(x, y, epochs=1, verbose=0,
              callbacks=[tfprune.methods.hfp.HolisticBudget()])
    slim = tfprune.rebuild(gated, tfprune.methods.hfp.plan(gated))
    ```
    """
    check_budget(budget)
    for name, value, low, high in (("weight", weight, 0.0, None),
                                   ("threshold", threshold, 0.0, 1.0)):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not np.isfinite(value) or value < low or (high and value >= high)):
            raise ValueError(f"{name} must be a finite number in [{low}, "
                             f"{high or 'inf'}), got {value!r}.")
    # Under a tf.distribute strategy the gated copy's variables (weights,
    # gates, budget progress) belong to the strategy of the model.
    with strategy_scope(model):
        return _gate(model, budget, weight, threshold)


def _gate(model, budget, weight, threshold):
    graph = analyze(model)
    if any(n.class_name == GATE for n in graph.nodes):
        raise TfpruneError(f"model '{model.name}' already has channel gates.")
    limits = budget.resolve(graph)  # the table: measured for this model, before gating
    latency_table = budget.table
    positions = gate_positions(graph)
    if not positions:
        raise TfpruneError(
            f"model '{model.name}' has no channel group that can be gated; "
            "see tfprune.analyze(model).summary() for why.")
    serialized = functional_serialized(functional_model(model))
    gates = insert_gates(serialized, graph, positions)
    plain = keras.saving.deserialize_keras_object(serialized)
    copy_weights_by_name(model, plain, skip=gates)
    gated = GatedModel(*model_structure(plain), name=model.name,
                       target_macs=limits.get("macs"), target_params=limits.get("params"),
                       target_latency=limits.get("latency"), latency_table=latency_table,
                       weight=weight, threshold=threshold, round_to=budget.round_to)
    if latency_table is not None:
        # Matching the table to the gated graph can fail where gating groups
        # channels differently: say so now, not at the first training step.
        try:
            gated.budget  # noqa: B018 (builds the soft budget)
        except LatencyTableMismatchError as e:
            raise TfpruneError(
                f"model '{model.name}': the gated copy groups channels differently "
                f"from the model the latency table describes ({e}); latency targets "
                "are not available for this architecture yet: use macs or "
                "params.") from None
    return gated


def attach(model, budget, weight=5.0, threshold=0.05, ramp_epochs=1, fade_epochs=0.0):
    """Starts HFP: gates to train against `budget`, and the callback for `fit`.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        budget: a `tfprune.Budget` (MACs, params and/or latency).
        weight, threshold: as for `gate`.
        ramp_epochs, fade_epochs: as for `HolisticBudget`.

    Returns:
        A `TrainingSession`; compile and fit `session.model` (a `GatedModel`)
        with `session.callbacks`; `session.plan()` is `plan(session.model)`
        and `session.rebuild()` the slim model.

    Example:

    ```python
    session = tfprune.methods.hfp.attach(model, tfprune.Budget(macs=0.5))
    session.model.compile("sgd", "sparse_categorical_crossentropy")
    session.model.fit(x, y, epochs=1, callbacks=session.callbacks, verbose=0)
    slim = session.rebuild()
    ```
    """
    gated = gate(model, budget, weight=weight, threshold=threshold)
    callback = HolisticBudget(ramp_epochs=ramp_epochs, fade_epochs=fade_epochs)
    return TrainingSession(gated, [callback], lambda: plan(gated))


def gate_scores(model):
    """Producer names of each gated group -> gate factors per channel."""
    graph = analyze(model)
    scores = {}
    for node in graph.nodes:
        if node.class_name == GATE and node.first_call:
            group = graph.groups[graph.group_id_of_channel(graph.channels[node.inputs[0]][0])]
            scores[tuple(group.producers)] = keras.ops.convert_to_numpy(
                node.layer.factors).astype(np.float64)
    return scores


def _gate_layers(model):
    """Producer names of each gated group -> its `ChannelGate` layer."""
    graph = analyze(model)
    layers = {}
    for node in graph.nodes:
        if node.class_name == GATE and node.first_call:
            group = graph.groups[graph.group_id_of_channel(graph.channels[node.inputs[0]][0])]
            layers[tuple(group.producers)] = node.layer
    return layers


def stored_budget(model):
    """The `Budget` a `GatedModel` was made for (counts and milliseconds)."""
    latency = getattr(model, "target_latency", None)
    targets = {"macs": getattr(model, "target_macs", None),
               "params": getattr(model, "target_params", None),
               "latency": None if latency is None else f"{float(latency)!r}ms"}
    if all(v is None for v in targets.values()):
        raise ValueError(f"model '{model.name}' carries no budget (it was not made by "
                         "tfprune.methods.hfp.gate): pass budget=.")
    return Budget(**targets, table=getattr(model, "latency_table", None),
                  round_to=getattr(model, "round_to", 1))


def choose(model, budget=None):
    """The channels `harden` would keep: producers -> bool array per gate.

    Args:
        model: a `GatedModel`.
        budget: as for `plan`.

    Returns:
        A dict (producer names of a gated group) -> bool array (True: kept).
    """
    chosen = plan(model, budget)
    kept = {tuple(g.producers): chosen.keep[g.id] for g in chosen.graph.groups}
    out = {}
    for producers, layer in _gate_layers(model).items():
        keep = np.zeros(int(layer.gate.shape[0]), dtype=bool)
        keep[kept[producers]] = True
        out[producers] = keep
    return out


def harden(model, keep=None, budget=None):
    """Fixes the channels to remove: their gates become exactly zero.

    The channels `plan` would remove get gate and mask 0 (the mask keeps
    them there while training goes on) and the budget loss is switched
    off, so from now on the gated model computes exactly what
    `tfprune.rebuild(model, hfp.plan(model))` will compute.

    Args:
        model: a `GatedModel`.
        keep: the result of `choose` (computed now when None).
        budget: as for `plan`.

    Returns:
        `model`.
    """
    if keep is None:
        keep = choose(model, budget)
    for producers, layer in _gate_layers(model).items():
        layer.harden(keep[producers])
    model.budget_active.assign(0.0)
    return model


def plan(model, budget=None):
    """The pruning plan of a trained `GatedModel`, meeting its budget.

    Channels are ranked by gate factor over the whole network; the plan is
    the least pruning whose cost is within the budget (by default the one
    given to `gate`). For a hardened model (`harden`, `HolisticBudget`)
    without a new budget, it removes exactly the hardened channels. Groups
    without a gate keep every channel unless the target cannot be met
    otherwise.

    Args:
        model: a `GatedModel` (or any model with `ChannelGate`s).
        budget: a `tfprune.Budget` overriding the one given to `gate`
            (fractions of the ungated model's figures, or counts; its table
            is the one of the model before gating).

    Returns:
        A `PruningPlan` of the model with its gates folded;
        `tfprune.rebuild(model, plan)` folds the gates and slices the
        weights. Predict its latency with
        `table.matched_to(plan.graph).predict(plan)`.

    Example:

    ```python
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5))
    plan = tfprune.methods.hfp.plan(gated, tfprune.Budget(params=0.5))
    slim = tfprune.rebuild(gated, plan)
    ```
    """
    hardened = getattr(model, "hardened", False)
    if budget is None:
        budget = stored_budget(model)
    else:
        check_budget(budget)
        hardened = False  # a new target: plan it from the factors
    scores = gate_scores(model)
    folded = fold_gates(model)
    graph = analyze(folded)
    # The table was checked against the model before gating (gate); the
    # folded model is that model under another config: match it by names.
    if budget.table is not None:
        budget = budget.replace(table=budget.table.matched_to(graph))
    table, round_to = budget.table, budget.round_to
    auto = round_to == "auto"
    if hardened:  # the channels `harden` chose, exactly
        layers = _gate_layers(model)
        keep = {g.id: np.flatnonzero(keras.ops.convert_to_numpy(
                    layers[tuple(g.producers)].mask) > 0)
                for g in graph.groups if tuple(g.producers) in layers}
        try:
            chosen = PruningPlan(graph, keep, round_to=None if auto or round_to <= 1
                                 else round_to)
            if not auto or all(
                    len(chosen.keep[gid]) in table.steps(gid) for gid in table.groups
                    if gid in chosen.keep):
                return chosen
        except InvalidPlanError:
            pass  # hardened for another round_to: plan from the factors
    # Ungated groups score above any gate (factors are <= 1): pruned last.
    full = {g.id: scores.get(tuple(g.producers), 10.0 + np.zeros(g.size))
            for g in graph.groups}
    return fit_plan(graph, full, budget, scope="global", normalize=False)


class HolisticBudget(keras.callbacks.Callback):
    """Ramps a `GatedModel`'s budget, hardens its gates, logs its size.

    The budget asked of the model moves linearly from the full size to the
    target over the first `ramp_epochs` epochs (0: the whole target from
    the first step). When the ramp ends (with `ramp_epochs=0`: when
    training ends) the channels `hfp.plan` would remove are chosen and
    their gates faded to exactly zero over `fade_epochs` (`harden`); the
    budget loss then stops and the remaining epochs train the network that
    pruning will return, so pruning changes nothing. Training always ends
    hardened. Adds `macs`, `params`, `macs_ratio`, `params_ratio` (against
    the model before gating) and `budget_loss` to `logs` at the end of
    every epoch, and with a latency table (the budget's `table`)
    `latency_ms` and `latency_ratio` (the table's prediction, against its
    `base_ms`). Place it before `CSVLogger` / `TensorBoard` in the
    callbacks list.

    Args:
        ramp_epochs: epochs over which the target is reached.
        harden: choose and zero the removed channels (see above); False
            leaves the gates soft (the pruned model then differs from the
            gated one by the removed channels' small factors).
        fade_epochs: epochs over which chosen gates go to zero (0: at once).

    Example:

    ```python
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5))
    gated.compile("sgd", loss)
    gated.fit(train, epochs=2, verbose=0,
              callbacks=[tfprune.methods.hfp.HolisticBudget(ramp_epochs=1),
                         keras.callbacks.CSVLogger("hfp.csv")])
    ```
    """

    def __init__(self, ramp_epochs=1, harden=True, fade_epochs=0.0):
        super().__init__()
        for name, value in (("ramp_epochs", ramp_epochs), ("fade_epochs", fade_epochs)):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not np.isfinite(value) or value < 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
        self.ramp_epochs = float(ramp_epochs)
        self.harden = bool(harden)
        self.fade_epochs = float(fade_epochs)
        self._base = None
        self._steps = None
        self._step = 0
        self._progress = None
        self._keep = None  # chosen channels, while fading
        self._fade_start = 0

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "budget"):
            raise TypeError(
                "HolisticBudget needs a GatedModel: tfprune.methods.hfp.gate(...) or attach(...).model.")
        self._base = cost(fold_gates(self.model))
        self._steps = self.params.get("steps") if self.params else None
        self._progress = None
        self._set_progress()

    def _choose(self):
        self._keep = choose(self.model)
        self._fade_start = self._step
        self.model.budget_active.assign(0.0)

    def _fade(self, final=False):
        fade_steps = self.fade_epochs * (self._steps or 1)
        t = 1.0 if final or fade_steps <= 0 else (self._step - self._fade_start) / fade_steps
        if t >= 1.0:
            harden(self.model, self._keep)
            self._keep = None
            return
        for producers, layer in _gate_layers(self.model).items():
            keep = self._keep[producers]
            layer.mask.assign(np.where(keep, 1.0, 1.0 - t).astype("float32"))

    def _set_progress(self):
        if self.ramp_epochs <= 0 or not self._steps:
            progress = 1.0
        else:
            progress = min(1.0, self._step / (self.ramp_epochs * self._steps))
        if progress == self._progress:
            return
        self._progress = progress
        # On JAX, fit keeps the training state outside the variables during
        # an epoch: write it back first, so that the next step reads the
        # whole state, the new progress included (only while ramping).
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self.model.budget_progress.assign(progress)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._set_progress()
        if not self.harden:
            return
        if (self._keep is None and not self.model.hardened and self.ramp_epochs > 0
                and self._steps and self._step >= self.ramp_epochs * self._steps):
            self._choose()
        if self._keep is not None:
            self._fade()

    def on_train_end(self, logs=None):
        if not self.harden:
            return
        if self._keep is None and not self.model.hardened:
            self._choose()
        if self._keep is not None:
            self._fade(final=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        params, macs = self.model.budget_cost()
        logs["macs"] = macs
        logs["params"] = params
        logs["macs_ratio"] = macs / self._base.macs
        logs["params_ratio"] = params / self._base.params
        logs["budget_loss"] = float(keras.ops.convert_to_numpy(self.model.budget.loss()))
        latency = self.model.budget_latency()
        if latency is not None:
            logs["latency_ms"] = latency
            logs["latency_ratio"] = latency / self.model.latency_table.base_ms


register_method("hfp", Method(
    attach=attach,
    summary="trainable channel gates steered by a budget loss; the budget is met exactly",
    paper="Enderich et al. 2020, Holistic Filter Pruning for Efficient Deep Neural "
          "Networks",
    latency=True,
    options=[Option("weight", float, 5.0, "weight of the budget loss"),
             Option("threshold", float, 0.05, "factor under which a channel counts "
                    "as removed"),
             Option("ramp_epochs", float, 1.0, "epochs over which the budget "
                    "reaches its target")]))
