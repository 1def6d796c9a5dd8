"""Measured latency tables: predict a plan's LiteRT latency as a sum.

MACs are a poor proxy for phone latency: XNNPACK kernels like some widths
more than others. A `LatencyTable` times, for each prunable channel group,
the layers that group touches (the convolutions that produce its channels,
the layers that read them, and what lies in between) as a small stand-alone
model at a few candidate widths, and the whole model once. The latency of a
plan is then predicted as

    base_ms + sum over groups of (t_group(kept width) - t_group(full width))
            + sum over layers between two groups of the interaction term

(the empirical lookup table of NetAdapt, Yang et al. 2018, and HALP, Shen et
al. 2022). A convolution that reads group a and writes group b costs about
w_a * w_b: each group's table entry sees one factor shrink, so the plain sum
counts the saving of shrinking both twice. The interaction term puts back
t_L * D_a * s_a * D_b * s_b for a != b, where D_g = 1 - t_g(w) / t_g(full)
is the relative time saved in group g's sub-model, s_g the share of g's
channels in the layer's input (output) tensor, and t_L the layer's time: the
MACs of its bilinear part times the lower ms per MAC of the two groups'
sub-models. So t_L never exceeds the layer's share of a sub-model's time,
and the sum stays non-decreasing in every width. For a single pruned group
the prediction is that group's measurement exactly. Between measured widths the time is interpolated linearly; below
the narrowest measured width it is held at that width's time. The measured
times are made non-decreasing in width first, so a wider plan is never
predicted to be faster.

Timing is tflite_export's job and tfprune never imports it: the timer is
found through the `tfprune.timers` entry-point group (tflite_export
registers `tflite`), or passed as `timer=`: any callable
`timer(keras_model, threads=..., quantization=..., runs=...)` returning the
median milliseconds of one inference.
"""

import hashlib
import json
import math
import os
import platform

import keras
import numpy as np

from tfprune.core.cost import cost, node_cost
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import rebuild
from tfprune.errors import LatencyTableMismatchError, TfpruneError
from tfprune.fileio import write_atomic
from tfprune.plugins import find_plugin

__all__ = ["LatencyTable", "LatencyTableMismatchError", "find_timer",
           "default_widths", "model_hash"]

TIMER_GROUP = "tfprune.timers"
FORMAT = "tfprune.latency/1"
# Layer kinds a group's sub-model may hold (cloned from their configs).
_SUBMODEL_KINDS = ("mixer", "depthwise", "channelwise", "identity", "merge",
                   "concat", "flatten")


def find_timer(name="tflite"):
    """The model timer registered under the `tfprune.timers` entry point.

    Raises:
        TfpruneError: none is installed.
    """
    return find_plugin(TIMER_GROUP, name, "measuring latency",
                       "timer=tflite_export.timing.time_model")


def model_hash(model):
    """A short hash of a model's config (architecture, layer names, shapes)."""
    graph = model if isinstance(model, ChannelGraph) else None
    model = graph.model if graph is not None else model
    text = json.dumps(model.get_config(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_widths(size):
    """Candidate widths of a group of `size` channels: full, 3/4, 1/2, 1/4.

    Widths are rounded to multiples of 8 for groups of 32 channels or more
    (the steps XNNPACK kernels work in), else to whole channels; at least 1.
    """
    step = 8 if size >= 32 else 1
    out = {size}
    for f in (0.75, 0.5, 0.25):
        out.add(max(step, int(round(size * f / step)) * step) if step > 1
                else max(1, int(round(size * f))))
    return sorted(w for w in out if 1 <= w <= size)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _litert_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return None


def _width_plan(graph, group, width):
    """A plan keeping the first `width` channels of `group` (one per segment)."""
    kept = set(range(width))
    for part in group.segments:
        if not kept.intersection(part.tolist()):
            kept.add(int(part[0]))
    return PruningPlan(graph, {group.id: sorted(kept)})


def _submodel(graph, group, plan):
    """The layers touching `group`, as a stand-alone model at `plan`'s widths.

    Every layer whose input or output carries the group's channels is
    cloned from its config (a Conv/Dense with the kept number of filters),
    wired as in the model; inputs that come from outside the group become
    model inputs of their real shape with the kept channel count.
    """
    kept = plan.kept_channels
    names = set(group.layers)
    nodes = [n for n in graph.nodes
             if (n.name in names or (len(n.path) == 1 and n.path[0] in names))
             and n.kind in _SUBMODEL_KINDS and isinstance(n.layer, keras.layers.Layer)
             and not isinstance(n.layer, keras.Model)]
    if not nodes:
        return None

    def width(key):
        return int(np.count_nonzero(kept[graph.channels[key]]))

    tensors, inputs, clones = {}, [], {}
    for node in nodes:
        args = []
        for key in node.inputs:
            if key not in tensors:
                shape = graph.shapes.get(key)
                if shape is None or any(d is None for d in shape[1:]):
                    raise TfpruneError(
                        f"layer '{node.name}' reads a tensor of shape {shape}: "
                        "latency tables need a model with a fixed input size "
                        "(give keras.Input a full shape)")
                tensors[key] = keras.Input(
                    shape=tuple(shape[1:-1]) + (width(key),), batch_size=1)
                inputs.append(tensors[key])
            args.append(tensors[key])
        try:
            if node.name not in clones:
                cfg = dict(node.layer.get_config())
                cfg.pop("name", None)
                if node.kind == "mixer":
                    cfg["units" if node.class_name == "Dense" else "filters"] = \
                        width(node.outputs[0])
                clones[node.name] = node.layer.__class__.from_config(cfg)
            out = clones[node.name](
                args if len(args) > 1 or node.kind in ("merge", "concat") else args[0])
        except Exception as e:  # Keras raises many types for a bad config
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TfpruneError(
                f"layer '{node.name}' ({node.class_name}) could not be rebuilt alone "
                f"to time channel group {group.id} ({first}); pass widths= without "
                "this group (a dict) or make the layer rebuildable from its config") from None
        outs = out if isinstance(out, (list, tuple)) else [out]
        for key, tensor in zip(node.outputs, outs):
            tensors[key] = tensor
    read = {k for n in nodes for k in n.inputs}
    outputs = [tensors[k] for n in nodes for k in n.outputs if k not in read]
    return keras.Model(inputs, outputs, name=f"group{group.id}_w{width_of(group, plan)}")


def width_of(group, plan):
    """Kept channels of `group` in `plan`."""
    return int(len(plan.keep[group.id]))


class LatencyTable:
    """Per-group latency at candidate widths; predicts any plan's latency.

    Build one with `LatencyTable.measure(model)`, save it with `save`, read
    it back with `LatencyTable.load(path, model)`.

    Attributes:
        model_hash: hash of the measured model's config (see `model_hash`).
        base_ms: the whole model's measured latency at full width.
        groups: dict group id -> {"widths": [...], "ms": [...],
            "producers": [...]} (widths ascending, ms made non-decreasing).
        threads, quantization, litert, cpu: what it was measured with.

    Example:

    ```python
    table = tfprune.latency.LatencyTable.measure(model, threads=1, widths=[1, 0.5],
                                                 runs=5, calibrate=False, verbose=0)
    plan = tfprune.prune(model, tfprune.Budget(latency=0.9, table=table))
    print(table.predict(plan), table.base_ms)
    ```
    """

    def __init__(self, model_hash, base_ms, groups, threads=1, quantization="none",
                 litert=None, cpu=None, measured=None, interactions=None, scale=1.0):
        self.model_hash = model_hash
        self.base_ms = float(base_ms)
        # Whole-model savings over the sum of the sub-models' (`calibrate`).
        self.scale = float(scale)
        self.calibration = None
        self.groups = {}
        for gid, row in groups.items():
            widths = [int(w) for w in row["widths"]]
            ms = [float(t) for t in row["ms"]]
            order = np.argsort(widths)
            widths = [widths[i] for i in order]
            ms = np.maximum.accumulate([ms[i] for i in order]).tolist()
            self.groups[int(gid)] = {"widths": widths, "ms": ms,
                                     "producers": list(row.get("producers", []))}
        self.threads = int(threads)
        self.quantization = quantization
        self.litert = litert
        self.cpu = cpu
        # Raw medians before monotone smoothing (for inspection only).
        self.measured = measured or {}
        # Layers between two prunable groups: {"layer", "in", "out", "ms"}.
        self.interactions = list(interactions or [])
        self._channel_groups = (None, None)

    @classmethod
    def measure(cls, model, threads=1, quantization="none", widths=None, timer=None,
                runs=50, verbose=1, calibrate=True):
        """Times each prunable group's layers at candidate widths.

        Args:
            model: a functional or Sequential `keras.Model` with a fixed
                input size (or its `ChannelGraph`). Not modified.
            threads: interpreter threads to time with.
            quantization: "none", "float16", "dynamic" or "int8", passed to
                the timer.
            widths: candidate widths: None for `default_widths` of each
                group, a list of fractions (e.g. `[1, 0.5]`) applied to
                every group, or a dict group id -> list of channel counts
                (groups left out are not timed, and pruning them is
                predicted to save nothing). The full width is always added.
            timer: `timer(keras_model, threads=, quantization=, runs=)` ->
                median ms; by default the `tfprune.timers` entry point
                "tflite" (tflite_export.timing.time_model).
            runs: timed runs per sub-model.
            verbose: 1 shows a `keras.utils.Progbar`, 0 is silent.
            calibrate: also time the whole model pruned uniformly at three
                widths and fit `scale` (`calibrate`); 6 more timings.

        Returns:
            A `LatencyTable`.

        Example:

        ```python
        table = tfprune.latency.LatencyTable.measure(
            model, threads=1, widths=[1, 0.5], runs=5, calibrate=False, verbose=0)
        table.save("latency.json")
        ```
        """
        graph = model if isinstance(model, ChannelGraph) else analyze(model)
        timer = timer or find_timer()
        todo = []
        for group in graph.prunable_groups:
            if isinstance(widths, dict) and group.id not in widths:
                continue  # not timed: its pruning is predicted to save nothing
            todo.append((group, _candidate_widths(group, widths)))
        bar = (keras.utils.Progbar(1 + sum(len(w) for _, w in todo),
                                   unit_name="model") if verbose else None)
        base = float(timer(graph.model, threads=threads, quantization=quantization,
                           runs=runs))
        if bar:
            bar.add(1)
        groups, measured, ms_per_mac = {}, {}, {}
        for group, ws in todo:
            ms = []
            for w in ws:
                sub = _submodel(graph, group, _width_plan(graph, group, w))
                ms.append(0.0 if sub is None else float(
                    timer(sub, threads=threads, quantization=quantization, runs=runs)))
                if w == group.size and sub is not None:
                    macs = cost(sub).macs
                    ms_per_mac[group.id] = ms[-1] / macs if macs else 0.0
                if bar:
                    bar.add(1)
            groups[group.id] = {"widths": ws, "ms": ms, "producers": group.producers}
            measured[group.id] = list(ms)
        table = cls(model_hash(graph.model), base, groups, threads=threads,
                    quantization=quantization, litert=_litert_version(),
                    cpu=_cpu_model(), measured=measured,
                    interactions=_interactions(graph, ms_per_mac))
        if calibrate and table.groups:
            table.calibrate(graph, timer=timer, runs=runs, verbose=verbose)
        return table

    def group_ms(self, group_id, width):
        """Interpolated time of a group's sub-model at `width` channels."""
        row = self.groups[int(group_id)]
        ws, ms = row["widths"], row["ms"]
        return float(np.interp(width, ws, ms))  # clamps outside the range

    def pieces(self, group_id):
        """The group's interpolation as a sum of clipped ramps.

        `group_ms(g, x) == ms0 + sum(slope * clip(x - start, 0, length))`
        over the returned pieces, for any x (held flat below the narrowest
        and above the full width); written this way it is differentiable
        in x with any array library (see `tfprune.methods.hfp`).

        Returns:
            (ms0, [(start, length, slope), ...]): ms0 the time at the
            narrowest measured width.
        """
        row = self.groups[int(group_id)]
        ws, ms = row["widths"], row["ms"]
        return float(ms[0]), [(float(ws[i]), float(ws[i + 1] - ws[i]),
                               (ms[i + 1] - ms[i]) / (ws[i + 1] - ws[i]))
                              for i in range(len(ws) - 1)]

    def predict(self, plan):
        """Predicted latency (ms) of the model pruned by `plan`.

        Raises:
            LatencyTableMismatchError: the plan is for another model.
        """
        self.check(plan.graph)
        delta = 0.0
        for gid, row in self.groups.items():
            keep = plan.keep.get(gid)
            if keep is None:
                continue
            delta += self.group_ms(gid, len(keep)) - self.group_ms(gid, row["widths"][-1])
        if self.interactions:
            delta += self._interaction_ms(plan)
        return self.base_ms + self.scale * delta

    def calibrate(self, model, timer=None, fractions=(0.75, 0.5, 0.25), runs=50,
                  verbose=1):
        """Fits `scale`: how much more (or less) the whole model saves than
        the sum of its sub-models says.

        Sub-models timed alone miss what the whole network gains when every
        tensor shrinks at once (caches, fewer memory passes), so the plain
        sum can predict less saving than the whole model shows. The model
        is pruned uniformly to the measured width nearest each fraction,
        timed against the full model (in turns), and `scale` is the
        least-squares factor between predicted and measured savings. Predictions then are `base_ms + scale *
        (sum of the groups' differences + interactions)`.

        Args:
            model: the measured model (or its graph).
            timer: as for `measure`.
            fractions: uniform widths to time, as fractions of each group.
            runs: timed runs per model.
            verbose: 1 shows a progress bar.

        Returns:
            `self`, with `scale` set.
        """
        graph = model if isinstance(model, ChannelGraph) else analyze(model)
        self.check(graph)
        timer = timer or find_timer()
        self.scale = 1.0
        bar = keras.utils.Progbar(2 * len(fractions), unit_name="model") if verbose else None
        predicted, measured = [], []
        for f in fractions:
            keep = {}
            for gid, row in self.groups.items():
                group = graph.groups[gid]
                w = min(row["widths"], key=lambda x: abs(x - f * group.size))
                keep[gid] = _width_plan(graph, group, w).keep[gid]
            plan = PruningPlan(graph, keep)
            base = float(timer(graph.model, threads=self.threads,
                               quantization=self.quantization, runs=runs))
            pruned = float(timer(rebuild(graph.model, plan), threads=self.threads,
                                 quantization=self.quantization, runs=runs))
            if bar:
                bar.add(2)
            predicted.append(1.0 - self.predict(plan) / self.base_ms)
            measured.append(1.0 - pruned / base)
        q, m = np.asarray(predicted), np.asarray(measured)
        if float(q @ q) > 0:
            # Clipped: a factor outside [0.5, 2] says the timings were
            # disturbed rather than that the sum is that far off.
            self.scale = float(np.clip((q @ m) / (q @ q), 0.5, 2.0))
        self.calibration = {"fractions": list(fractions), "predicted": predicted,
                            "measured": measured}
        return self

    def _interaction_ms(self, plan):
        graph = plan.graph
        if self._channel_groups[0] is not graph:
            owner = np.array([graph.group_id_of_channel(c)
                              for c in range(graph.num_channels)], dtype=int)
            n = len(graph.groups)
            shares = [tuple(np.bincount(owner[graph.channels[row[k]]], minlength=n)
                            / len(graph.channels[row[k]]) for k in ("in", "out"))
                      for row in self.interactions]
            self._channel_groups = (graph, shares)
        shares = self._channel_groups[1]
        saved = np.zeros(len(graph.groups))  # D_g: relative time saved
        for gid, row in self.groups.items():
            keep = plan.keep.get(gid)
            full = row["ms"][-1]
            if keep is not None and full > 0:
                saved[gid] = 1.0 - self.group_ms(gid, len(keep)) / full
        total = 0.0
        for row, (s_in, s_out) in zip(self.interactions, shares):
            d, e = saved * s_in, saved * s_out
            # sum over a != b of d_a * e_b
            total += row["ms"] * (d.sum() * e.sum() - float(np.dot(d, e)))
        return total

    def steps(self, group_id):
        """The measured widths of a group (the widths worth keeping)."""
        return list(self.groups[int(group_id)]["widths"])

    def check(self, model):
        """Raises `LatencyTableMismatchError` unless measured for `model`."""
        got = model_hash(model)
        if got != self.model_hash:
            name = (model.model if isinstance(model, ChannelGraph) else model).name
            raise LatencyTableMismatchError(
                f"this latency table was measured for another model (config hash "
                f"{self.model_hash}, model '{name}' has {got}): measure one for "
                f"this model with LatencyTable.measure(model) or `tfprune latency "
                f"model.keras -o table.json`")
        graph = model if isinstance(model, ChannelGraph) else None
        if graph is not None:
            sizes = {g.id: g.size for g in graph.prunable_groups}
            for gid, row in self.groups.items():
                if sizes.get(gid) != row["widths"][-1]:
                    raise LatencyTableMismatchError(
                        f"latency table group {gid} has {row['widths'][-1]} channels "
                        f"but the model's has {sizes.get(gid)}: measure a new table")

    def matched_to(self, model):
        """This table for another config of the same architecture.

        The gated copy `tfprune.methods.hfp.gate` makes, and the model its gates
        fold into, have the measured model's layers under a different
        config (so another `model_hash`), and may number their channel
        groups differently. The returned table describes `model`: its
        groups are found by their producers' names (and must have the same
        size), its interaction layers by name. Check the table against the
        measured model first (`check`): this method trusts that `model` is
        that model in another form.

        Args:
            model: a `keras.Model` or its `ChannelGraph`.

        Returns:
            A `LatencyTable` whose `check(model)` passes and whose
            predictions for `model`'s plans are this table's predictions for
            the same kept widths.

        Raises:
            LatencyTableMismatchError: a group's producers or size, or an
                interaction layer, is not found in `model`.

        Example:

        ```python
        table = tfprune.latency.LatencyTable.measure(model, widths=[1, 0.5], runs=5,
                                                     calibrate=False, verbose=0)
        gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5))
        folded = tfprune.methods.gates.fold_gates(gated)
        plan = tfprune.prune(folded, tfprune.Budget(macs=0.5))
        print(table.matched_to(folded).predict(plan))
        ```
        """
        graph = model if isinstance(model, ChannelGraph) else analyze(model)
        by_producers = {tuple(g.producers): g for g in graph.groups}
        groups, new_id = {}, {}
        for gid, row in self.groups.items():
            group = by_producers.get(tuple(row["producers"]))
            if group is None or group.size != row["widths"][-1]:
                found = "not found" if group is None else f"has {group.size} channels"
                raise LatencyTableMismatchError(
                    f"latency table group {gid} (producers {row['producers']}, "
                    f"{row['widths'][-1]} channels) {found} in model "
                    f"'{graph.model.name}': the table was measured for another model")
            groups[group.id] = row
            new_id[gid] = group.id
        nodes = {n.name: n for n in graph.nodes}
        interactions = []
        for row in self.interactions:
            node = nodes.get(row["layer"])
            if node is None or not node.inputs or not node.outputs:
                raise LatencyTableMismatchError(
                    f"latency table layer '{row['layer']}' is not in model "
                    f"'{graph.model.name}': the table was measured for another model")
            interactions.append({**row, "in": node.inputs[0], "out": node.outputs[0]})
        return LatencyTable(model_hash(graph.model), self.base_ms, groups,
                            threads=self.threads, quantization=self.quantization,
                            litert=self.litert, cpu=self.cpu,
                            measured={new_id[g]: ms for g, ms in self.measured.items()
                                      if g in new_id},
                            interactions=interactions, scale=self.scale)

    def as_dict(self):
        """The table as a JSON-compatible dict (what `save` writes)."""
        return {"format": FORMAT, "model_hash": self.model_hash,
                "threads": self.threads, "quantization": self.quantization,
                "litert": self.litert, "cpu": self.cpu, "base_ms": self.base_ms,
                "groups": {str(g): row for g, row in self.groups.items()},
                "measured": {str(g): ms for g, ms in self.measured.items()},
                "interactions": self.interactions, "scale": self.scale}

    def save(self, path):
        """Writes the table as JSON to `path` (atomically); returns the path."""
        path = os.fspath(path)
        write_atomic(path, json.dumps(self.as_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path, model=None):
        """Reads a table written by `save`.

        Args:
            path: the JSON file.
            model: optional model (or graph) the table must belong to.

        Raises:
            LatencyTableMismatchError: `model` is not the measured model.
            ValueError: the file is not a latency table.
        """
        path = os.fspath(path)
        with open(path) as f:
            try:
                d = json.load(f)
            except ValueError as e:
                raise ValueError(f"{path}: not a JSON latency table ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a tfprune latency table (expected "
                             f"format '{FORMAT}')")
        try:
            table = cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        if model is not None:
            table.check(model)
        return table

    @classmethod
    def from_dict(cls, d):
        """The table `as_dict` returned (e.g. read from JSON).

        Raises:
            ValueError: `d` is not a latency table's dict.

        Example:

        ```python
        table = tfprune.latency.LatencyTable.measure(model, widths=[1, 0.5], runs=5,
                                                     calibrate=False, verbose=0)
        same = tfprune.latency.LatencyTable.from_dict(table.as_dict())
        ```
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a tfprune latency table (expected format '{FORMAT}')")
        try:
            return cls(d["model_hash"], d["base_ms"], d["groups"], threads=d["threads"],
                       quantization=d["quantization"], litert=d.get("litert"),
                       cpu=d.get("cpu"),
                       measured={int(g): v for g, v in (d.get("measured") or {}).items()},
                       interactions=d.get("interactions"), scale=d.get("scale", 1.0))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a malformed tfprune latency table ({type(e).__name__}: "
                             f"{e})") from None

    def __repr__(self):
        return (f"<LatencyTable {len(self.groups)} groups, base {self.base_ms:.3f} ms, "
                f"{self.threads} thread(s), {self.quantization}, cpu {self.cpu!r}>")


def _interactions(graph, ms_per_mac):
    """Layers whose input and output carry different prunable groups.

    For each, the time of its bilinear part (the MACs that scale with input
    times output width) at full width, at the lower ms per MAC of the
    groups' sub-models it belongs to.
    """
    prunable = {g.id for g in graph.prunable_groups}
    out = []
    for node in graph.nodes:
        if node.kind != "mixer" or not node.inputs or not node.outputs:
            continue
        key_in, key_out = node.inputs[0], node.outputs[0]
        groups_in = {graph.group_id_of_channel(c) for c in graph.channels[key_in]}
        groups_out = {graph.group_id_of_channel(c) for c in graph.channels[key_out]}
        groups_in &= prunable
        groups_out &= prunable
        if not groups_in or not groups_out or (
                len(groups_in | groups_out) == 1):
            continue
        full_in, full_out = len(graph.channels[key_in]), len(graph.channels[key_out])

        def macs(cin, cout, node=node, key_in=key_in):
            return node_cost(graph, node,
                             lambda key: cin if key == key_in else cout)[1]

        bilinear = (macs(full_in, full_out) - macs(full_in, 0) - macs(0, full_out)
                    + macs(0, 0))
        rates = [ms_per_mac[g] for g in sorted(groups_in | groups_out)
                 if g in ms_per_mac]
        if not bilinear or not rates:
            continue
        out.append({"layer": node.name, "in": key_in, "out": key_out,
                    "ms": float(bilinear * min(rates))})
    return out


def _candidate_widths(group, widths):
    if widths is None:
        ws = default_widths(group.size)
    elif isinstance(widths, dict):
        ws = [int(w) for w in widths.get(group.id, [])]
    else:
        ws = []
        for f in widths:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise ValueError(f"widths must be fractions in (0, 1], got {f!r}")
            ws.append(max(1, int(math.ceil(group.size * f))))
    bad = [w for w in ws if not 1 <= w <= group.size]
    if bad:
        raise ValueError(f"group {group.id} ({group.size} channels): widths {bad} "
                         "out of range")
    return sorted(set(ws) | {group.size})
