"""The figures of BENCHMARKS.md, drawn from the rows of benchmarks/results.jsonl.

- `accuracy`: test accuracy against the fraction of MACs kept, one line per
  method (and framework: peer libraries' rows are drawn dashed);
- `latency`: LiteRT latency ratio against MACs ratio, with the y = x line
  and uniform per-layer widths as the reference;
- `prunetrain`: PruneTrain's MACs per epoch against dense training.

Each figure names, at its foot, the commits its rows were measured at.
Drawn with Matplotlib's Agg canvas (no display, no pyplot state).
"""

import collections
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks import results
from tfprune.fileio import atomic_path

FIGURES_DIR = os.path.join(results.HERE, "figures")
DPI = 100
# Matplotlib writes its version into PNGs; leaving it out keeps a figure's
# bytes the same when its rows are.
_PNG_METADATA = {"Software": None}
_PRECISION = {"none": "float32", "int8": "int8"}


def _commits(rows):
    """A footer line: which commits the plotted rows come from."""
    measured = list(dict.fromkeys(r["commit"][:7] + ("+dirty" if r.get("dirty") else "")
                                  for r in rows if r.get("commit")))
    legacy = [r for r in rows if not r.get("commit")]
    parts = []
    if measured:
        parts.append("commit" + "s" * (len(measured) > 1) + " " + ", ".join(measured))
    if legacy:
        first = results.first_commits(legacy)
        parts.append(f"{len(legacy)} row{'s' * (len(legacy) > 1)} from before provenance "
                     f"was recorded" + (f" (first committed in {', '.join(first)})"
                                        if first else ""))
    return "benchmarks/results.jsonl: " + "; ".join(parts)


def _figure(ncols, nrows=1, width=5.2, height=4.2, legend_height=1.0):
    """A figure of subplots with room below them for one shared legend."""
    fig = Figure(figsize=(width * ncols, height * nrows + legend_height), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig, axes, rows, path, title, ncol=3):
    """Title, the commits' line and a legend shared by the subplots (`ncol`
    columns; None: each subplot has its own); writes the PNG atomically."""
    entries = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if ncol:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncol=min(ncol, len(entries)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=13)
    fig.supxlabel(_commits(rows), fontsize=7, color="0.35")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=_PNG_METADATA)
    return path


def _method_label(r):
    label = r["method"]
    scope, round_to = r.get("scope"), r.get("round_to")
    if scope not in (None, "global") or round_to not in (None, 1):
        label += f" ({scope or 'global'}" + (f", widths ×{round_to}" if round_to not in (None, 1) else "") + ")"
    framework = results.value(r, "framework")
    if framework != "tfprune":
        label += f" [{framework}]"
    return label


def accuracy(rows, path):
    """Test accuracy against MACs kept, one subplot per model.

    Args:
        rows: the latest rows; those of kind "accuracy" are drawn.
        path: the PNG to write.

    Returns:
        The path, or None when there are no pruned accuracy rows.
    """
    rows = [r for r in rows if results.value(r, "kind") == "accuracy"
            and r.get("macs_ratio") is not None and r.get("test_acc") is not None]
    if not any(r["method"] != "baseline" for r in rows):
        return None
    models = sorted({r["model"] for r in rows})
    fig, axes = _figure(len(models))
    colors = {}
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        series = collections.defaultdict(list)
        for r in mine:
            if r["method"] != "baseline":
                series[_method_label(r)].append(r)
        for label in sorted(series):
            points = sorted(series[label], key=lambda r: r["macs_ratio"])
            peer = results.value(points[0], "framework") != "tfprune"
            color = colors.setdefault(label, f"C{len(colors) % 10}")
            ax.plot([r["macs_ratio"] for r in points], [r["test_acc"] for r in points],
                    marker="s" if peer else "o", linestyle="--" if peer else "-",
                    color=color, label=label)
        # The dense model each framework started from.
        dense = {}
        for r in mine:
            framework = results.value(r, "framework")
            if r["method"] == "baseline":
                dense[framework] = r["test_acc"]
            elif r.get("baseline_acc") is not None:
                dense.setdefault(framework, r["baseline_acc"])
        for i, (framework, acc) in enumerate(sorted(dense.items())):
            ax.axhline(acc, color="0.5", linestyle=":", linewidth=1)
            ax.plot([1.0], [acc], marker="*", markersize=12, linestyle="none",
                    color="0.2" if framework == "tfprune" else "0.55",
                    label=f"dense baseline ({framework})")
        ax.set_title(model)
        ax.set_xlabel("MACs kept (fraction of the dense model)")
        ax.set_ylabel("test accuracy after fine-tuning")
        ax.set_xlim(0, 1.05)
        ax.grid(alpha=0.3)
    return _save(fig, axes, rows, path, "Fashion-MNIST: accuracy against MACs kept")


def latency(rows, path):
    """Latency ratio against MACs ratio, per model and precision, one thread.

    Global-ranking variants are drawn in colour; uniform per-layer widths,
    the reference, dashed in grey; unstructured sparsity (tfmot) as a cross.

    Returns:
        The path, or None when there are no latency rows.
    """
    rows = [r for r in rows if results.value(r, "kind") == "latency"
            and r.get("latency_ratio") is not None and r.get("macs_ratio") is not None]
    if not rows:
        return None
    threads = min(r["threads"] for r in rows)
    rows = [r for r in rows if r["threads"] == threads]
    models = sorted({r["model"] for r in rows})
    precisions = [q for q in ("none", "int8") if any(r["quantization"] == q for r in rows)]
    precisions += sorted({r["quantization"] for r in rows} - set(precisions))
    fig, axes = _figure(len(models), len(precisions), width=4.2, height=4.0)
    top = max(1.1, max(r["latency_ratio"] for r in rows) * 1.05)
    for i, quantization in enumerate(precisions):
        for ax, model in zip(axes[i], models):
            mine = [r for r in rows if r["model"] == model and r["quantization"] == quantization]
            ax.plot([0, 1.1], [0, 1.1], color="0.6", linestyle=":", linewidth=1,
                    label="y = x (time falls as MACs do)")
            original = [r for r in mine if r["method"] == "original"]
            series = collections.defaultdict(list)
            for r in mine:
                if r["method"] != "original" and r.get("sparsity") is None:
                    series[(r.get("scope") or "", r.get("round_to") or 1, r["method"])].append(r)
            globals_ = sorted(k for k in series if k[0] != "uniform")
            for n, key in enumerate(globals_ + sorted(k for k in series if k[0] == "uniform")):
                scope, round_to, method = key
                points = original + sorted(series[key], key=lambda r: -r["macs_ratio"])
                widths = "free widths" if round_to == 1 else f"widths ×{round_to}"
                if scope == "uniform":
                    style = {"color": "0.25" if round_to == 8 else "0.55", "linestyle": "--",
                             "marker": "D", "markerfacecolor": "white"}
                    label = f"{method} uniform, {widths} (reference)"
                else:
                    style = {"color": f"C{n}", "linestyle": "-", "marker": "o"}
                    label = f"{method} {scope or 'global'}, {widths}"
                ax.plot([r["macs_ratio"] for r in points], [r["latency_ratio"] for r in points],
                        label=label, **style)
            for r in mine:
                if r.get("sparsity") is not None:
                    ax.plot([r["macs_ratio"]], [r["latency_ratio"]], marker="X", markersize=9,
                            linestyle="none", color="C3",
                            label=f"{r['method']} ({r['sparsity']:.0%} zeros)")
            ax.set_title(f"{model}, {_PRECISION.get(quantization, quantization)}")
            ax.set_xlabel("MACs ratio (pruned / original)")
            ax.set_ylabel("latency ratio (median, pruned / original)")
            ax.set_xlim(0, 1.1)
            ax.set_ylim(0, top)
            ax.grid(alpha=0.3)
    return _save(fig, axes, rows, path,
                 f"LiteRT (XNNPACK) latency against MACs, batch 1, {threads} thread"
                 + "s" * (threads > 1) + "; not fine-tuned")


def prunetrain(rows, path):
    """MACs per epoch of PruneTrain runs against the dense run, per setting.

    Returns:
        The path, or None when no PruneTrain row records its MACs per epoch.
    """
    rows = [r for r in rows if results.value(r, "kind") == "prunetrain"]
    settings = sorted({(r["model"], r["epochs"], r.get("train_images"), r.get("batch_size"))
                       for r in rows if r.get("macs_per_epoch")}, key=str)
    if not settings:
        return None
    fig, axes = _figure(len(settings), width=8.5, height=5.0, legend_height=0.3)
    drawn = []
    for ax, setting in zip(axes[0], settings):
        model, epochs, images, batch = setting
        mine = [r for r in rows
                if (r["model"], r["epochs"], r.get("train_images"), r.get("batch_size")) == setting]
        drawn += mine
        dense = next((r for r in mine if r["method"] == "dense"), None)
        runs = sorted((r for r in mine if r.get("macs_per_epoch")),
                      key=lambda r: (results.value(r, "lasso"), -(r.get("penalty_ratio") or 0)))
        for n, r in enumerate(runs):
            macs = [m / 1e6 for m in r["macs_per_epoch"]]
            lasso = results.value(r, "lasso")
            label = (f"PruneTrain {lasso} r = {r['penalty_ratio']}: acc {r['test_acc']:.2%}, "
                     f"MACs {r['macs_ratio']:.0%}, FLOPs {r['train_flops_ratio']:.0%}")
            ax.step(range(1, len(macs) + 1), macs, where="mid", color=f"C{n}",
                    linewidth=2, label=label,
                    linestyle="-" if lasso == "proximal" else ":")
            # A reconfiguration after epoch e changes the width from epoch e + 1.
            cuts = [c for c in r.get("reconfigurations") or [] if c.get("removed_channels")]
            ax.plot([c["epoch"] + 0.5 for c in cuts], [c["macs"] / 1e6 for c in cuts],
                    linestyle="none", marker="v", color=f"C{n}")
        if dense is not None:  # drawn last: runs that removed nothing lie under it
            ax.plot([0.5, epochs + 0.5], [dense["macs"] / 1e6] * 2, color="black",
                    linestyle="--", linewidth=1.2, label=f"dense: acc {dense['test_acc']:.2%}")
            full = dense["macs"] / 1e6
            right = ax.secondary_yaxis("right", functions=(lambda m, full=full: m / full,
                                                           lambda f, full=full: f * full))
            right.set_ylabel("fraction of the dense model's MACs")
        if runs:
            ax.plot([], [], linestyle="none", marker="v", color="0.4",
                    label="reconfiguration removing channels")
        ax.set_title(f"{model}, {epochs} epochs"
                     + (f", {images:,} images, batch {batch}" if images else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("MACs per image (millions)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0.5, epochs + 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best", title_fontsize=8,
                  title="MACs: final model; FLOPs: training; both to dense")
    return _save(fig, axes, drawn, path, "PruneTrain: MACs of the model trained, epoch by epoch",
                 ncol=None)


# name -> (drawing function, file name, caption in BENCHMARKS.md)
FIGURES = {
    "accuracy": (accuracy, "accuracy_vs_macs.png",
                 "Test accuracy after fine-tuning against the fraction of MACs kept, "
                 "one line per method; dashed lines are other frameworks' rows."),
    "latency": (latency, "latency_vs_macs.png",
                "LiteRT latency ratio against MACs ratio (1 thread): points on the "
                "dotted y = x line get exactly the speed-up the MACs promise; the "
                "grey dashed lines are uniform per-layer widths, the reference."),
    "prunetrain": (prunetrain, "prunetrain_macs.png",
                   "MACs per image of the model PruneTrain trains, epoch by epoch, "
                   "against the dense run; triangles mark reconfigurations."),
}


def write_all(rows, folder=FIGURES_DIR):
    """Draws every figure that has rows; returns {name: (path, caption)}."""
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, (draw, file, caption) in FIGURES.items():
        path = draw(rows, os.path.join(folder, file))
        if path:
            out[name] = (path, caption)
    return out
