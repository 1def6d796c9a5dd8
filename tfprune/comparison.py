"""What pruning did to a model, as pictures, JSON and a table.

`report(original, slim, output_dir)` compares a model with its pruned copy
layer by layer (the rebuilder keeps layer names, so layers are matched by
name) and writes:

- `widths.png`: output channels of every Conv/Dense layer before and after,
  in model order, and each layer's share of the original model's MACs
  before and after;
- `summary.json`: per-layer channels, kernel sizes, params and MACs before
  and after (the numbers of `tfprune.cost`), the totals and their ratios;
- with `tflite=(a, b)`: the LiteRT latency of the two exported files and
  where their time goes per op type (`profile.png`).

Timing `.tflite` files is tflite_export's job, and tfprune never imports
tflite_export. The profiler is found through the `tfprune.profilers`
entry-point group (tflite_export registers `tflite`), or passed in as
`profiler=`.
"""

import dataclasses
import json
import os

from tfprune.core.cost import cost
from tfprune.core.graph import analyze
from tfprune.errors import MismatchedModelsError
from tfprune.plugins import find_plugin

__all__ = ["MismatchedModelsError", "Report", "report", "find_profiler"]

PROFILER_GROUP = "tfprune.profilers"


@dataclasses.dataclass
class Report:
    """The outcome of `report`.

    Attributes:
        summary: the dict written to `summary.json`.
        files: paths written (`summary.json`, `widths.png`, maybe
            `profile.png`); empty when no output directory was given.
    """

    summary: dict
    files: list

    def table(self):
        """A printable per-layer table with the totals (and latency)."""
        return format_table(self.summary)


def report(original, slim, output_dir=None, *, tflite=None, profiler=None,
           threads=1, runs=50, names=None):
    """Compares a model with its pruned copy, layer by layer.

    Args:
        original: the unpruned `keras.Model`, or the path of its `.keras`
            file.
        slim: the pruned model (or path); its layers must carry the names
            of the original's layers, as `tfprune.rebuild` keeps them.
        output_dir: where to write `summary.json`, `widths.png` (and
            `profile.png`); created if missing. None writes nothing.
        tflite: optional pair of `.tflite` files (original, slim) to time
            with LiteRT and profile per op type.
        profiler: the function that times `tflite`; by default the one
            registered under the `tfprune.profilers` entry point (provided
            by tflite_export). It is called as
            `profiler(original_path, slim_path, threads=..., runs=...)` and
            returns two dicts with `median_ms`, `p90_ms`, `size_bytes` and
            `ops_ms` (op type -> milliseconds).
        threads: interpreter threads for the timing.
        runs: timed runs per file.
        names: optional labels (original, slim) for the JSON; by default
            the paths, or the models' names.

    Returns:
        A `Report`; `report.table()` is the text the CLI prints.

    Raises:
        MismatchedModelsError: the two models are not a model and a pruned
            copy of it (no layer in common, a layer of `slim` that the
            original lacks, different input shapes, or a layer that grew).

    Example:

    ```python
    import tfprune.comparison
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    result = tfprune.comparison.report(model, slim, "report/")
    print(result.table())  # report/widths.png, report/summary.json
    ```
    """
    labels = list(names) if names else [None, None]
    models = []
    for i, m in enumerate((original, slim)):
        if isinstance(m, (str, os.PathLike)):
            labels[i] = labels[i] or os.fspath(m)
            m = _load(m)
        else:
            labels[i] = labels[i] or getattr(m, "name", "model")
        models.append(m)
    summary = compare_models(models[0], models[1], labels)
    if tflite is not None:
        if len(tflite) != 2:
            raise ValueError(f"tflite must be two .tflite paths (original, slim), "
                             f"got {len(tflite)}")
        for path in tflite:
            if not os.path.exists(path):
                raise FileNotFoundError(f"no such file: {path}")
        profiler = profiler or find_profiler()
        timed = profiler(os.fspath(tflite[0]), os.fspath(tflite[1]),
                         threads=threads, runs=runs)
        summary["tflite"] = _tflite_summary(timed, tflite, threads, runs)
    files = []
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "summary.json")
        with open(path, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        files.append(path)
        files.append(plot_widths(summary, os.path.join(output_dir, "widths.png")))
        if "tflite" in summary:
            files.append(plot_profile(summary, os.path.join(output_dir, "profile.png")))
    return Report(summary, files)


def find_profiler(name="tflite"):
    """The `.tflite` profiler registered under the `tfprune.profilers` group.

    Raises:
        TfpruneError: none is installed.
    """
    return find_plugin(PROFILER_GROUP, name, "timing .tflite files",
                       "profiler=tflite_export.report.profile_pair")


def _load(path):
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not path.endswith((".keras", ".h5")):
        raise ValueError(f"{path}: expected a .keras model file")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: could not load the model ({first})") from None


def _layers(graph, total):
    """Per layer with weights or MACs, in model order: name -> facts."""
    out = {}
    for node in graph.nodes:
        if not node.first_call or node.name in out:
            continue
        lc = total.per_layer.get(node.name)
        if lc is None or not (lc.params or lc.macs):
            continue
        shape = graph.shapes.get(node.outputs[0]) if node.outputs else None
        kernel = node.config.get("kernel_size")
        out[node.name] = {
            "class": node.class_name,
            "channels": int(shape[-1]) if shape and shape[-1] is not None else None,
            "kernel": list(kernel) if isinstance(kernel, (list, tuple)) else kernel,
            "params": int(lc.params), "macs": int(lc.macs)}
    return out


def _input_shapes(model):
    return [tuple(t.shape[1:]) for t in model.inputs]


def compare_models(original, slim, labels=("original", "slim")):
    """The `summary.json` dict of two models (no files, no timing).

    Args:
        original: the unpruned `keras.Model`.
        slim: its pruned copy.
        labels: names for the two models in the result.

    Returns:
        A dict: `original` and `slim` totals, `ratios`, and `layers` (one
        entry per layer with weights, in the original's order).
    """
    g0, g1 = analyze(original), analyze(slim)
    c0, c1 = cost(g0), cost(g1)
    before, after = _layers(g0, c0), _layers(g1, c1)
    hint = ("they are not a model and its pruned copy (tfprune report "
            "matches layers by name, as tfprune.rebuild keeps them)")
    if _input_shapes(original) != _input_shapes(slim):
        raise MismatchedModelsError(
            f"input shapes differ ({_input_shapes(original)} vs "
            f"{_input_shapes(slim)}): {hint}")
    extra = [n for n in after if n not in before]
    if not set(after) & set(before) or extra:
        raise MismatchedModelsError(
            f"layer '{(extra or list(after))[0]}' of {labels[1]} is not in "
            f"{labels[0]}: {hint}")
    for name, b in after.items():
        a = before[name]
        if a["class"] != b["class"]:
            raise MismatchedModelsError(
                f"layer '{name}' is a {a['class']} in {labels[0]} but a "
                f"{b['class']} in {labels[1]}: {hint}")
        if (a["channels"] or 0) < (b["channels"] or 0):
            raise MismatchedModelsError(
                f"layer '{name}' has {b['channels']} channels in {labels[1]} but "
                f"{a['channels']} in {labels[0]}: give the original model first")
    layers = []
    for name, a in before.items():
        b = after.get(name, {"channels": 0, "kernel": None, "params": 0, "macs": 0})
        layers.append({
            "name": name, "class": a["class"],
            "channels_before": a["channels"], "channels_after": b["channels"],
            "kernel_before": a["kernel"], "kernel_after": b["kernel"],
            "params_before": a["params"], "params_after": b["params"],
            "macs_before": a["macs"], "macs_after": b["macs"],
            "removed": name not in after})
    return {
        "format": "tfprune.report/1",
        "original": {"model": labels[0], "params": int(c0.params), "macs": int(c0.macs)},
        "slim": {"model": labels[1], "params": int(c1.params), "macs": int(c1.macs)},
        "ratios": {"params": c1.params / c0.params if c0.params else None,
                   "macs": c1.macs / c0.macs if c0.macs else None},
        "layers": layers,
    }


def _tflite_summary(timed, paths, threads, runs):
    out = {"threads": threads, "runs": runs}
    for key, path, t in zip(("original", "slim"), paths, timed):
        out[key] = {"path": os.fspath(path), "size_bytes": int(t["size_bytes"]),
                    "median_ms": float(t["median_ms"]), "p90_ms": float(t["p90_ms"]),
                    "ops_ms": {k: float(v) for k, v in t["ops_ms"].items()}}
    base, small = out["original"], out["slim"]
    out["latency_ratio"] = (small["median_ms"] / base["median_ms"]
                            if base["median_ms"] else None)
    out["size_ratio"] = (small["size_bytes"] / base["size_bytes"]
                         if base["size_bytes"] else None)
    return out


def _count(n):
    return f"{n:,.0f}"


def format_table(summary):
    """The per-layer table and totals of a `summary.json` dict, as text.

    One row per layer with MACs (Conv, Dense, ...); `share` is the layer's
    part of the original model's MACs. BatchNorm and other layers with
    weights but no MACs are in the JSON only.
    """
    total = summary["original"]["macs"] or 1
    rows = [r for r in summary["layers"] if r["macs_before"]]
    width = max([len("layer")] + [len(r["name"]) for r in rows])
    lines = [f"{'layer':<{width}} {'class':<16} {'channels':>11} "
             f"{'MACs before':>13} {'MACs after':>13} {'share':>6}"]
    for r in rows:
        ch = f"{r['channels_before']}->{r['channels_after']}"
        if r["kernel_before"] != r["kernel_after"] and r["kernel_after"]:
            ch += " k" + "x".join(str(k) for k in r["kernel_after"])
        lines.append(f"{r['name']:<{width}} {r['class'][:16]:<16} {ch:>11} "
                     f"{_count(r['macs_before']):>13} {_count(r['macs_after']):>13} "
                     f"{r['macs_before'] / total:>6.1%}")
    o, s, ratio = summary["original"], summary["slim"], summary["ratios"]
    lines += ["", f"{'':<8} {'params':>14} {'MACs':>16}",
              f"{'before':<8} {_count(o['params']):>14} {_count(o['macs']):>16}",
              f"{'after':<8} {_count(s['params']):>14} {_count(s['macs']):>16}",
              f"{'ratio':<8} {ratio['params']:>14.3f} {ratio['macs']:>16.3f}"]
    t = summary.get("tflite")
    if t:
        b, a = t["original"], t["slim"]
        lines += ["", f"TFLite, LiteRT, {t['threads']} thread"
                  f"{'s' if t['threads'] > 1 else ''}, median of {t['runs']} runs: "
                  f"{b['median_ms']:.3f} ms -> {a['median_ms']:.3f} ms "
                  f"(ratio {t['latency_ratio']:.3f}); size {_count(b['size_bytes'])} -> "
                  f"{_count(a['size_bytes'])} bytes"]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_widths(summary, path):
    """Writes the per-layer channels and MACs-share figure; returns `path`."""
    plt = _pyplot()
    rows = [r for r in summary["layers"] if r["macs_before"]]
    names = [r["name"] for r in rows]
    x = list(range(len(rows)))
    total = summary["original"]["macs"] or 1
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(max(8.0, 0.32 * len(rows) + 2), 7.5),
        gridspec_kw={"height_ratios": [3, 2]})
    w = 0.4
    top.bar([i - w / 2 for i in x], [r["channels_before"] or 0 for r in rows], w,
            color="#b8c4d6", label="original")
    top.bar([i + w / 2 for i in x], [r["channels_after"] or 0 for r in rows], w,
            color="#2b6cb0", label="pruned")
    top.set_ylabel("output channels")
    ratio = summary["ratios"]
    top.set_title(f"{summary['slim']['model']} vs {summary['original']['model']}: "
                  f"params x{ratio['params']:.3f}, MACs x{ratio['macs']:.3f}",
                  fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([i - w / 2 for i in x], [100 * r["macs_before"] / total for r in rows],
               w, color="#b8c4d6", label="original")
    bottom.bar([i + w / 2 for i in x], [100 * r["macs_after"] / total for r in rows],
               w, color="#2b6cb0")
    bottom.set_ylabel("% of the original MACs")
    bottom.set_xticks(x)
    bottom.set_xticklabels(names, rotation=90, fontsize=7)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_profile(summary, path, top_ops=12):
    """Writes the per-op-type time of the two `.tflite` files; returns `path`."""
    plt = _pyplot()
    t = summary["tflite"]
    b, a = t["original"]["ops_ms"], t["slim"]["ops_ms"]
    ops = sorted(set(b) | set(a), key=lambda op: -max(b.get(op, 0), a.get(op, 0)))
    ops = ops[:top_ops][::-1]  # slowest at the top
    y = list(range(len(ops)))
    h = 0.4
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.45 * len(ops) + 1.5)))
    ax.barh([i + h / 2 for i in y], [b.get(op, 0) for op in ops], h,
            color="#b8c4d6", label=f"original ({t['original']['median_ms']:.3f} ms)")
    ax.barh([i - h / 2 for i in y], [a.get(op, 0) for op in ops], h,
            color="#2b6cb0", label=f"pruned ({t['slim']['median_ms']:.3f} ms)")
    ax.set_yticks(y)
    ax.set_yticklabels(ops, fontsize=8)
    ax.set_xlabel("ms per op type (each node timed alone, summed)")
    ax.set_title(f"LiteRT latency x{t['latency_ratio']:.3f} "
                 f"({t['threads']} thread{'s' if t['threads'] > 1 else ''}); "
                 f"MACs x{summary['ratios']['macs']:.3f}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
