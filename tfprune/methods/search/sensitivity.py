"""Per-group pruning sensitivity, and a keep-count allocation from it."""

import dataclasses
import math

import keras
import numpy as np

from tfprune.core.budget import check_budget
from tfprune.core.data import as_arrays, evaluate
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import zero_out
from tfprune.errors import TargetUnreachableError
from tfprune.ranking.fit import plan_figures
from tfprune.ranking.importance import magnitude, top_channels


class ConsumerWeights:
    """Edits a working copy's channel-mixing weights for one group at a time."""

    def __init__(self, graph, working):
        self.graph = graph
        self.working = working
        self.layers = {}

    def consumers(self, group):
        out = []
        for node in self.graph.nodes:
            if node.kind == "mixer" and node.first_call and len(node.path) == 1:
                chans = self.graph.channels[node.inputs[0]]
                if np.any((chans >= group.offset) & (chans < group.offset + group.size)):
                    out.append(node)
        return out

    def kernel(self, node):
        layer = self.working.get_layer(node.path[0])
        # the weight mixing inputs into outputs (kernel, pointwise kernel)
        axes = node.spec.weights
        return next(w for w in layer.weights
                    if axes[w.name].input_axis is not None
                    and axes[w.name].output_axis is not None)

    def zero(self, group, kept):
        """Zeroes the consumers' inputs for `group`'s removed channels.

        Returns the old kernels, for `restore`.
        """
        saved = []
        removed = np.setdiff1d(np.arange(group.size), kept) + group.offset
        for node in self.consumers(group):
            var = self.kernel(node)
            value = keras.ops.convert_to_numpy(var)
            saved.append((var, value))
            axes = node.spec.weights[var.name]
            chans = np.repeat(self.graph.channels[node.inputs[0]],
                              axes.repeat_for(node.config))
            mask = np.isin(chans, removed)
            new = value.copy()
            index = [slice(None)] * new.ndim
            index[axes.input_axis] = mask
            new[tuple(index)] = 0
            var.assign(new)
        return saved

    @staticmethod
    def restore(saved):
        for var, value in saved:
            var.assign(value)


@dataclasses.dataclass
class Sensitivity:
    """Metric of the model when one group alone is pruned by each ratio.

    Attributes:
        ratios: the pruning ratios tried (fraction of the group removed).
        base_accuracy, base_loss: the unpruned model's figures.
        accuracy, loss: dict group id -> list, one value per ratio.
        names: dict group id -> a readable name (its first producer).
        chance_loss: loss of a uniform guess over the classes (log of the
            class count), the level a group pruned away entirely tends to.
    """

    ratios: tuple
    base_accuracy: float
    base_loss: float
    accuracy: dict
    loss: dict
    names: dict
    chance_loss: float = None

    def drop(self, group_id, ratio):
        """Interpolated loss increase when `ratio` of the group is removed."""
        xs = [0.0] + list(self.ratios) + [1.0]
        curve = [0.0] + [v - self.base_loss for v in self.loss[group_id]]
        # Removing a whole group leaves the network guessing: beyond the last
        # measured ratio the loss climbs towards chance level, so a group that
        # looked free at 75% is not emptied for nothing.
        end = curve[-1] * 2
        if self.chance_loss is not None:
            end = max(end, self.chance_loss - self.base_loss)
        curve.append(end)
        # Pruning more never helps: measurement noise below zero is flattened.
        return float(np.interp(ratio, xs, np.maximum.accumulate(np.maximum(curve, 0.0))))

    def plot(self, path):
        """Writes a PNG: loss against pruning ratio, one line per group."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        for gid in self.loss:
            ax1.plot((0,) + tuple(self.ratios), [self.base_accuracy] + self.accuracy[gid],
                     marker="o", label=self.names[gid])
            ax2.plot((0,) + tuple(self.ratios), [self.base_loss] + self.loss[gid],
                     marker="o", label=self.names[gid])
        ax1.set(xlabel="fraction of the group removed", ylabel="accuracy",
                title="Accuracy when one group is pruned")
        ax2.set(xlabel="fraction of the group removed", ylabel="loss",
                title="Loss when one group is pruned")
        if len(self.loss) <= 24:
            ax2.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def sensitivity(model, val_data, ratios=(0.25, 0.5, 0.75), limit=1024,
                from_logits=True):
    """Accuracy and loss of `model` with each group alone pruned (by L1).

    Args:
        model: a trained `keras.Model` (not modified).
        val_data: (x, y) arrays or a batched tf.data dataset of (x, y).
        ratios: fractions of each group to remove.
        limit: number of samples used.
        from_logits: whether the model outputs logits.

    Returns:
        A `Sensitivity`.

    Example:

    ```python
    sens = tfprune.methods.search.sensitivity(model, (x, y))  # validation data
    sens.plot("sensitivity.png")
    ```
    """
    x, y = as_arrays(val_data, limit)
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    model = graph.model
    working = zero_out(model, graph.plan())
    editor = ConsumerWeights(graph, working)
    scores = magnitude(graph)
    base_acc, base_loss = evaluate(working, x, y, from_logits)
    accs, losses, names = {}, {}, {}
    for group in graph.prunable_groups:
        names[group.id] = group.producers[0]
        order = np.argsort(-scores[group.id], kind="stable")
        accs[group.id], losses[group.id] = [], []
        for r in ratios:
            keep = order[:max(1, int(round(group.size * (1 - r))))]
            saved = editor.zero(group, keep)
            acc, loss = evaluate(working, x, y, from_logits)
            editor.restore(saved)
            accs[group.id].append(acc)
            losses[group.id].append(loss)
    classes = int(model.outputs[0].shape[-1])
    return Sensitivity(tuple(ratios), base_acc, base_loss, accs, losses, names,
                       chance_loss=float(np.log(classes)) if classes > 1 else None)


def allocate(graph, sens, budget, steps=16, min_keep=0.1):
    """Keep counts per group meeting the target, guided by sensitivity.

    Rule (greedy on sensitivity per MAC): start from full widths and
    repeatedly shrink the group whose next step (1/`steps` of its width, at
    least `round_to` channels) costs the least loss increase per unit saved,
    until every target is met. Savings are measured relative to each target
    and only on targets not yet met, so with both a MACs and a params target
    the search turns to the params-heavy layers once MACs fit (latency, as
    `latency_table.predict` gives it, is one more such target). No group
    goes below `min_keep` of its width (at least one channel): the
    sensitivity curves are measured one group at a time and say nothing
    reliable about a layer thinned to a handful of channels.

    Args:
        graph: the model's `ChannelGraph`.
        sens: a `Sensitivity` of the same model.
        budget: a `tfprune.Budget`; with `round_to="auto"` a group steps
            down to its next width the latency table measured (groups the
            table lacks keep theirs).
        steps: a group shrinks by 1/`steps` of its width at a time.
        min_keep: smallest fraction of a group's width kept.

    Returns:
        dict group id -> number of channels to keep.

    Example:

    ```python
    sens = tfprune.methods.search.sensitivity(model, (x, y), limit=64)
    counts = tfprune.methods.search.allocate(tfprune.analyze(model), sens,
                                             tfprune.Budget(macs=0.5))
    ```
    """
    latency_table, round_to = check_budget(budget).table, budget.round_to
    auto = round_to == "auto"
    limits = [(v, k) for k, v in budget.resolve(graph).items()]
    scores = magnitude(graph)
    groups = [g for g in graph.prunable_groups if g.id in sens.loss]
    counts = {g.id: g.size for g in groups}

    def plan_of(c):
        keep = {}
        for g in groups:
            if c[g.id] < g.size:
                kept = set(top_channels(scores[g.id], c[g.id]).tolist())
                for part in g.segments:
                    if not kept.intersection(part.tolist()):
                        kept.add(int(part[0]))
                keep[g.id] = sorted(kept)
        return PruningPlan(graph, keep)

    def figures(c_):
        return plan_figures(graph, limits, plan_of(c_), latency_table)

    def over(f):
        return sum(max(0.0, f[k] - v) / v for v, k in limits)

    def next_width(g):
        """The next narrower keep count of `g`, or None."""
        if auto:
            floor = max(1, int(math.ceil(min_keep * g.size)))
            widths = [w for w in (latency_table.steps(g.id) if g.id in latency_table.groups
                                  else []) if floor <= w < counts[g.id]]
            return max(widths) if widths else None
        step = max(round_to, int(math.ceil(g.size / steps)))
        n = counts[g.id] - step
        if round_to > 1:
            n = (n // round_to) * round_to
        floor = round_to * int(math.ceil(min_keep * g.size / round_to))
        n = max(n, min(g.size, max(round_to, floor)), 1)
        return n if n < counts[g.id] else None

    current = figures(counts)
    while over(current) > 0:
        best = None
        for g in groups:
            n = next_width(g)
            if n is None:
                continue
            trial = {**counts, g.id: n}
            c = figures(trial)
            # Savings count only on limits still exceeded, each relative to its
            # limit, so a params target is not drowned by the larger MACs numbers.
            saved = sum((current[k] - c[k]) / v for v, k in limits if current[k] > v)
            if saved <= 0:
                continue
            harm = sens.drop(g.id, 1 - n / g.size) - sens.drop(g.id, 1 - counts[g.id] / g.size)
            value = max(harm, 0.0) / saved
            if best is None or value < best[0]:
                best = (value, g.id, n, c)
        if best is None:
            raise TargetUnreachableError(
                "target cannot be met even with every searched group at its "
                "minimum width; ask for a larger target.")
        _, gid, n, current = best
        counts[gid] = n
    return counts
