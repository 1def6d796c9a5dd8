"""BENCHMARKS.md and its figures, made from benchmarks/results.jsonl.

Every table of BENCHMARKS.md is one entry of `SECTIONS`: its title, the kind
of rows it shows, their columns and order, and the text above it. A table
shows the latest row of each configuration (`results.latest`) and says which
commit each row was measured at. The figures (`benchmarks.plots`) are drawn
from the same rows and linked from their sections.

Usage: python -m benchmarks.report    # rewrite BENCHMARKS.md and benchmarks/figures/
"""

import argparse
import collections
import dataclasses
import os
from typing import Callable, Optional

from benchmarks import plots, results
from tfprune.fileio import write_atomic

REPORT = os.path.join(results.ROOT, "BENCHMARKS.md")

# Column headers where the field's name is not clear enough.
NAMES = {"acc_before_finetune": "before FT", "gated_acc": "gated", "target": "target MACs",
         "budget_error": "budget err", "acc_drop": "Δacc"}


@dataclasses.dataclass(frozen=True)
class Section:
    """One table of BENCHMARKS.md.

    Args:
        title: the heading.
        kind: the rows shown (`row["kind"]`).
        columns: the fields shown, in order; a commit column is added.
        text: the paragraph above the table (markdown).
        order: sort key of the rows (default: the log's order).
        derive: makes display fields from a copy of a row (computed columns).
        names: column headers for this section, over `NAMES`.
        figure: the `plots.FIGURES` entry shown above the table.
        where: which rows of `kind` it shows (a predicate; default: all).
        table: makes (rows used, the table's lines) from the chosen rows,
            in place of one line per row (e.g. a pivot).
    """

    title: str
    kind: str
    columns: tuple
    text: str
    order: Optional[Callable] = None
    derive: Optional[Callable] = None
    names: dict = dataclasses.field(default_factory=dict)
    figure: Optional[str] = None
    where: Optional[Callable] = None
    table: Optional[Callable] = None


def _accuracy_order(r):
    return (r["model"], r["method"] != "baseline", -float(r.get("target") or 1),
            results.value(r, "framework") != "tfprune", r["method"])


def _accuracy_derive(r):
    if r.get("test_acc") is not None and r.get("baseline_acc") is not None:
        r["drop"] = round(100 * (r["test_acc"] - r["baseline_acc"]), 2)
    return r


def _latency_order(r):
    order = {"original": 0, "l1": 1}
    return (r["model"], r["quantization"], r["threads"], order.get(r["method"], 2),
            -float(r.get("target") or 1), r.get("scope") or "", r.get("round_to") or 0)


def _latency_derive(r):
    if r.get("sparsity") is not None:
        r["method"] = f"{r['method']} ({r['sparsity']:.0%} zeros)"
    if r.get("macs_ratio"):
        r["time_per_mac"] = round(r["latency_ratio"] / r["macs_ratio"], 3)
    return r


# The methods of the comparison with Torch-Pruning, in the order shown:
# (framework, method, scope) -> label.
PEER_METHODS = {
    ("tfprune", "l1", "global"): "tfprune `l1` (global)",
    ("tfprune", "l1", "uniform"): "tfprune `l1` (uniform)",
    ("tfprune", "l1+kd", "global"): "tfprune `l1+kd` (global)",
    ("tfprune", "group_l1", "global"): "tfprune `group_l1` (global)",
    ("tfprune", "group_l1", "uniform"): "tfprune `group_l1` (uniform)",
    ("tfprune", "group_l1+kd", "global"): "tfprune `group_l1+kd` (global)",
    ("tfprune", "prunenet", "global"): "tfprune `prunenet`",
    ("tfprune", "prunenet+kd", "global"): "tfprune `prunenet+kd`",
    ("tfprune", "l1+refit+kd", "global"): "tfprune `l1+refit+kd` (global)",
    ("tfprune", "prunenet+refit+kd", "global"): "tfprune `prunenet+refit+kd`",
    ("tfprune", "hfp+kd", None): "tfprune `hfp+kd`",
    ("tfprune", "ga+kd", None): "tfprune `ga+kd`",
    ("torch-pruning", "uniform-l1", "torch-pruning"): "Torch-Pruning uniform L1",
    ("torch-pruning", "global-group-l2", "torch-pruning"): "Torch-Pruning global group L2",
    ("torch-pruning", "global-taylor", "torch-pruning"): "Torch-Pruning global Taylor",
    # diagnostics: the peer with one thing changed (`--keras-baseline`, `--keras-padding`)
    ("torch-pruning", "uniform-l1@keras-baseline", "torch-pruning"):
        "diagnostic: Torch-Pruning uniform L1 from tfprune's baseline",
    ("torch-pruning", "global-group-l2@keras-baseline", "torch-pruning"):
        "diagnostic: Torch-Pruning global group L2 from tfprune's baseline",
    ("torch-pruning", "uniform-l1@keras-padding", "torch-pruning"):
        "diagnostic: Torch-Pruning uniform L1, PyTorch baseline padded as Keras pads",
    # controls: each baseline fine-tuned as the pruned models are, nothing removed
    ("tfprune", "unpruned", None): "control: tfprune baseline + fine-tuning",
    ("torch-pruning", "unpruned", "torch-pruning"): "control: PyTorch baseline + fine-tuning",
}
PEER_TARGETS = (0.5, 0.33, 0.2, 1.0)


def _peer_key(r):
    return (results.value(r, "framework"), r["method"], r.get("scope"))


def _is_peer_row(r):
    return (r["model"] == "resnet20" and r.get("target") in PEER_TARGETS
            and _peer_key(r) in PEER_METHODS and r.get("test_acc") is not None)


def _peer_table(rows):
    """Method x MACs kept: mean test accuracy over seeds, and its drop from
    the framework's own baseline; the best of each framework in bold."""
    last = {}  # the latest row of each seed: rows come oldest first
    for r in rows:
        last[_peer_key(r), r["target"], results.value(r, "seed")] = r
    cells = collections.defaultdict(list)
    for (method, target, _), r in last.items():
        cells[method, target].append(r)
    mean = {}
    for key, group in cells.items():
        n = len(group)
        acc = sum(r["test_acc"] for r in group) / n
        base = sum(r["baseline_acc"] for r in group) / n
        before = [r["acc_before_finetune"] for r in group
                  if r.get("acc_before_finetune") is not None]
        mean[key] = (acc, 100 * (acc - base), n,
                     sum(before) / len(before) if before else None)
    best = {}
    for (method, target), (_, drop, _, _) in mean.items():
        if PEER_METHODS[method].startswith(("control:", "diagnostic:")):
            continue
        k = (method[0], target)
        best[k] = max(best.get(k, drop), drop)
    out = ["| method | " + " | ".join(
        f"{t:.0%} MACs: acc (Δ pts), before FT" if t < 1 else "unpruned, fine-tuned"
        for t in PEER_TARGETS) + " |",
           "|---|" + "---|" * len(PEER_TARGETS)]
    for method, label in PEER_METHODS.items():
        row = []
        for t in PEER_TARGETS:
            if (method, t) not in mean:
                row.append("")
                continue
            acc, drop, n, before = mean[method, t]
            cell = f"{100 * acc:.2f}% ({drop:+.2f})"
            if drop == best.get((method[0], t)):
                cell = f"**{cell}**"
            if n > 1:
                cell += f", mean of {n} seeds"
            if before is not None:
                cell += f"; {100 * before:.1f}%"
            row.append(cell)
        if any(row):
            out.append(f"| {label} | " + " | ".join(row) + " |")
    return list(last.values()), out


def _prunetrain_derive(r):
    if r["method"] == "dense":
        r["lasso"] = None
    return r


SECTIONS = (
    Section(
        "Accuracy against MACs", "accuracy",
        ("model", "framework", "method", "target", "scope", "params", "macs",
         "params_ratio", "macs_ratio", "gated_acc", "acc_before_finetune", "test_acc",
         "baseline_acc",
         "drop", "budget_error", "epochs", "wall_s", "machine"),
        "Methods: `l1` (global L1 ranking, `benchmarks.run`), `hfp` / `hfp+kd` "
        "(Holistic Filter Pruning, fine-tuned without / with distillation, "
        "`benchmarks.hfp`), `ga+kd` (genetic channel search, distillation, "
        "`benchmarks.genetic`). Rows of another framework (e.g. `torch-pruning`) "
        "are peers run under the same protocol by their own script. `before FT`: "
        "test accuracy right after pruning; `gated`: HFP's gated model's test "
        "accuracy at the end of gate training (what `before FT` should equal); `budget err`: |achieved / target - 1| "
        "for HFP. `Δ pts`: test accuracy minus the row's own framework's "
        "baseline, in points. Epochs: baseline + pruning-time training + "
        "fine-tuning.",
        order=_accuracy_order, derive=_accuracy_derive,
        names={"drop": "Δ pts"}, figure="accuracy"),
    Section(
        "tfprune against Torch-Pruning: resnet20, one protocol", "accuracy",
        (),
        "The same ResNet-20 architecture, data, augmentation, optimiser and "
        "epochs in both frameworks (`benchmarks.peers.torch_pruning` trains and "
        "prunes the PyTorch copy; the tfprune rows come from `benchmarks.run`, "
        "`benchmarks.prunenet`, `benchmarks.hfp` and `benchmarks.genetic`). Each "
        "cell: test accuracy after the 3 fine-tuning epochs, its change from the "
        "framework's own baseline in points (bold: the framework's best at that "
        "budget), and the accuracy right after pruning, before fine-tuning. One "
        "seed unless the cell says otherwise. `+kd`: fine-tuned distilling from "
        "the baseline (`tfprune.finetune`'s default when given the original). "
        "`+refit`: the layers reading pruned channels re-fitted by least squares "
        "on 512 training images before fine-tuning (`tfprune.methods.search.reconstruct`). "
        "HFP trains its gates 2 more epochs. The controls fine-tune each unpruned "
        "baseline the same 3 epochs: what the extra epochs alone give. The "
        "diagnostics change one thing in the peer: `from tfprune's baseline` prunes "
        "and fine-tunes tfprune's own Keras baseline, converted to PyTorch "
        "(`--keras-baseline`; it scores 92.99% there as in Keras), so both "
        "frameworks start from the same network; `padded as Keras pads` trains "
        "the PyTorch baseline with Keras's one-sided stride-2 padding "
        "(`--keras-padding`).",
        where=_is_peer_row, table=_peer_table),
    Section(
        "Genetic search: which channels, at equal widths", "selection",
        ("model", "method", "target", "target_params", "reconstruction_error",
         "acc_before_finetune", "search_s", "machine"),
        "Same widths for every row (the GA's sensitivity allocation); only the "
        "choice of channels differs, and every row's next layers are re-fitted "
        "by least squares the same way. Reconstruction error: summed normalised "
        "residual of the consumers on calibration activations. Accuracy before "
        "fine-tuning. `search s`: the GA's search time on 2 cores (population 32, "
        "30 generations)."),
    Section(
        "Genetic search: two-step fitness against real loss", "fitness",
        ("model", "method", "target", "search_s", "time_ratio_vs_real_loss",
         "acc_before_finetune", "calls", "machine"),
        "Population 16, 8 generations, same seed; `two_step` evaluates the "
        "reconstruction error for every candidate and the real loss for the 2 "
        "best per generation, `real_loss` the real loss for every candidate. "
        "Same run, one after the other."),
    Section(
        "Training step: gated against plain", "steptime",
        ("model", "method", "plain_ms", "gated_ms", "ratio", "machine"),
        "Median seconds per training step (batch 128) of the gated model (gates "
        "and budget loss) against a plain clone of the same trained baseline, "
        "timed in turns in one run (`benchmarks.hfp --parts steptime`)."),
    Section(
        "PruneTrain against dense training", "prunetrain",
        ("model", "method", "lasso", "penalty_ratio", "epochs", "reconfigure_every",
         "train_images", "batch_size", "test_acc", "dense_acc", "acc_drop", "macs_ratio",
         "params_ratio", "train_flops_ratio", "wall_s", "wall_ratio", "cpu_s",
         "cpu_ratio", "machine"),
        "Same model, initial weights, epochs and one-cycle schedule (peak 0.1), "
        "trained from scratch in one run, dense first. `train images` / `batch`: "
        "the reduced protocol of `benchmarks.prunetrain` (a fixed subset, with the "
        "batch that keeps the full protocol's 469 steps per epoch); test accuracy "
        "on the full test set. Training FLOPs: 6 x MACs x samples per epoch at "
        "the width trained. Wall ratios hold only on an otherwise idle machine; "
        "CPU seconds (the process, all threads) are less disturbed by other jobs. "
        "A row that removed nothing (macs ratio 1) did the dense run's work: its "
        "wall ratio measures the noise and the difference between the two "
        "training paths, so read the other rows' wall ratios against it. `lasso`: "
        "the group-lasso step, proximal (soft-thresholding after each optimizer "
        "step) or subgradient (the penalty's gradient).",
        derive=_prunetrain_derive, figure="prunetrain"),
    Section(
        "The tool itself", "tool",
        ("model", "method", "median_s", "runs", "machine"),
        "Median seconds of tfprune's own steps on keras.applications ResNet50 "
        "(`benchmarks.tool`).",
        names={"method": "step", "median_s": "median s"}),
    Section(
        "Latency on LiteRT (XNNPACK)", "latency",
        ("model", "method", "target", "scope", "round_to", "quantization", "threads",
         "latency_ms", "p90_ms", "latency_ratio", "min_ratio", "macs_ratio",
         "time_per_mac", "size_bytes", "gzip_bytes", "top1_agreement", "weights",
         "load_avg", "machine"),
        "Written by `python -m benchmarks.latency`. Original and pruned "
        "models (`l1`; `global` ranking, tfprune's default, or `uniform` "
        "fractions; 50% and 33% MACs targets; widths free or rounded to "
        "multiples of 8 or 16) exported with "
        "`tflite_export.convert` (builtin ops only) as float32 and full "
        "int8, then timed in one process with the LiteRT interpreter, "
        "interleaved, batch 1. `latency_ratio` and `macs_ratio` are to the "
        "original model of the same precision and thread count "
        "(`min_ratio`: the same for the fastest run, the least disturbed "
        "by other processes; `load_avg`: the machine's 1-minute load "
        "average while timing, 2 cores); "
        "`time_per_mac` is their quotient (1.0: time falls exactly as MACs "
        "do). `top1_agreement` is the export check (tflite against Keras). "
        "Pruned models here are not fine-tuned: for accuracy after "
        "pruning see the table above. tfmot rows are unstructured 50% sparsity on a "
        "`tf_keras` twin with the same weights, converted with the same settings. "
        "Where the time goes, op by op: `benchmarks/profiles.md`.",
        order=_latency_order, derive=_latency_derive,
        names={"target": "target"}, figure="latency"),
    Section(
        "Pruning to a measured latency", "latency_target",
        ("model", "method", "target_latency", "target_macs", "scope", "round_to",
         "threads", "quantization", "predicted_ratio", "latency_ratio", "target_error",
         "macs_ratio", "quotient", "original_ms", "ms", "machine"),
        "Written by `python -m benchmarks.latency_targets` (random weights, "
        "224x224 for MobileNetV2 and ResNet-50). `l1+table`: `tfprune.prune(..., "
        "tfprune.Budget(..., table=table, round_to=\"auto\"), criterion=\"l1\")` "
        "with a latency target, `target_latency` (a fraction of the table's "
        "predicted original latency), or a MACs target, `target_macs`; `l1`: plain "
        "L1 on a grid of MACs targets. All models of one model family are exported "
        "as float32 and timed in one process, interleaved; `latency_ratio` is the "
        "measured median against the original's, `predicted_ratio` the table's, "
        "`target_error` = measured / target - 1 (goal: within ±5%), `quotient` = "
        "latency ratio / MACs ratio.",
        order=lambda r: (r["model"], r["method"] != "l1+table", r.get("scope") or "",
                         str(r.get("round_to")), -float(r.get("target_latency") or 0),
                         -float(r.get("target_macs") or 0))),
    Section(
        "Latency-targeted against plain l1 at equal measured latency", "latency_equal",
        ("model", "target_latency", "latency_ratio", "macs_ratio", "l1_macs_ratio",
         "l1_scope", "l1_round_to", "machine"),
        "From the same run as the table above: for each `l1+table` model, the MACs "
        "that the best plain-l1 variant (global or uniform, `round_to` 1, 8 or 16) "
        "keeps at the same measured latency, interpolated on its grid. More MACs "
        "kept at equal latency means more of the network survives for the same "
        "speed-up.",
        names={"macs_ratio": "table MACs ratio", "l1_macs_ratio": "best l1 MACs ratio"}),
)


SMOF_METHODS = ("smof", "smof+kd", "l1+kd")


def _smof_latency_order(r):
    return (r["model"], r["quantization"], r["threads"], -float(r["target"]),
            r["method"] != "l1")


def _smof_latency_derive(r):
    if isinstance(r.get("input_shape"), list):
        r["input_shape"] = "x".join(map(str, r["input_shape"]))
    return r


SECTIONS += (
    Section(
        "SMOF: kernel sizes and channels, accuracy", "accuracy",
        ("model", "method", "target", "kernels", "params_ratio", "macs_ratio",
         "acc_before_finetune", "test_acc", "baseline_acc", "budget_error", "epochs",
         "wall_s", "machine"),
        "Written by `python -m benchmarks.smof --parts accuracy`. `smof` / "
        "`smof+kd`: `tfprune.methods.smof` on the cached baseline (kernel-ring masks and "
        "channel gates trained with the MACs budget loss, `SMOFSchedule`), "
        "planned, rebuilt and fine-tuned for the protocol's epochs without / with "
        "distillation from the baseline; `l1+kd`: global l1 channel pruning with "
        "the same distillation fine-tuning, the channel-only reference at the same "
        "targets. `kernels`: convolutions per kernel size after pruning. Epochs: "
        "baseline + mask training + fine-tuning. These rows appear in the "
        "accuracy table above too.",
        order=_accuracy_order, where=lambda r: r["method"] in SMOF_METHODS),
    Section(
        "SMOF: smaller kernels against thinner layers, latency", "smof_latency",
        ("model", "input_shape", "method", "target", "quantization", "threads",
         "macs_ratio", "latency_ratio", "quotient", "original_ms", "pruned_ms",
         "kernels", "runs", "weights", "load_avg", "machine"),
        "Written by `python -m benchmarks.smof` (the latency part). At equal "
        "MACs targets, `l1` removes channels only (global ranking); "
        "`smof-kernels` first shrinks kernels by whole rings (smallest ring norm "
        "first, no training) while the MACs stay above the target, then removes "
        "channels with `l1` until the target is met. Original and both pruned "
        "models are exported with `tflite_export.convert` (float32 or full "
        "int8) and timed interleaved in one process (LiteRT interpreter, "
        "XNNPACK, batch 1). `latency_ratio`: median against the original's "
        "median in the same run; `quotient` = latency ratio / MACs ratio (below "
        "1: time fell more than the MACs); `kernels`: convolutions per kernel "
        "size; `load_avg`: the machine's 1-minute load average while timing.",
        order=_smof_latency_order, derive=_smof_latency_derive,
        names={"input_shape": "input"}),
)


def fmt(v):
    """A table cell: 4 decimals below 10, 1 decimal above, thousands separators."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.4f}"
    if isinstance(v, int) and abs(v) >= 10000:
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt(x)}" for k, x in v.items())
    return str(v)


def commit_cell(row):
    """The short commit a row was measured at; rows from before provenance say so."""
    commit = row.get("commit")
    if not commit:
        return "before provenance was recorded"
    return commit[:7] + (" (dirty)" if row.get("dirty") else "")


def provenance_note(rows):
    """One sentence: the commits the rows come from, with counts."""
    measured = collections.Counter(commit_cell(r) for r in rows if r.get("commit"))
    legacy = [r for r in rows if not r.get("commit")]
    parts = []
    if measured:
        commits = ", ".join(f"`{c}` ({n} row{'s' * (n > 1)})" for c, n in measured.items())
        parts.append(f"Figures from commit{'s' * (len(measured) > 1)} {commits}; "
                     f"`(dirty)`: the tree had uncommitted changes to tracked files.")
    if legacy:
        first = results.first_commits(legacy)
        where = f", first committed in {', '.join(f'`{c}`' for c in first)}" if first else ""
        n = len(legacy)
        parts.append(f"{n} row{'s' * (n > 1)} measured before provenance was recorded "
                     f"(no commit, date or versions{where}).")
    return " ".join(parts)


def _table(section, rows):
    names = {**NAMES, **section.names}
    columns = section.columns + ("commit",)
    shown = [section.derive(dict(r)) if section.derive else dict(r) for r in rows]
    header = [names.get(c, c.replace("_", " ")) for c in columns]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    for r in shown:
        cells = [commit_cell(r) if c == "commit" else fmt(results.value(r, c))
                 for c in columns]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render(rows, figures=None):
    """BENCHMARKS.md's text from the log's rows.

    Args:
        rows: every row of the log, oldest first (the latest per
            configuration is shown).
        figures: {figure name: (relative path, caption)} to link.
    """
    figures = figures or {}
    shown = results.latest(rows)
    out = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.report` (and after every row a benchmark "
        "appends) from `benchmarks/results.jsonl`; do not edit by hand. The log is "
        "append-only: every row records the commit it was measured at, whether the "
        "tree had uncommitted changes, the UTC date, the machine and the versions of "
        "tfprune, Keras, TensorFlow, LiteRT and NumPy. Each table shows the latest "
        "row of each configuration; its `commit` column says where each figure "
        "comes from. Protocol: `../shared/BENCHMARK_PROTOCOL.md` (Fashion-MNIST, "
        "8-epoch baselines, 3-epoch fine-tuning, SGD Nesterov, one-cycle LR).",
    ]
    covered = set()
    for section in SECTIONS:
        chosen = [r for r in shown if results.value(r, "kind") == section.kind
                  and (section.where is None or section.where(r))]
        covered.add(section.kind)
        if not chosen:
            continue
        if section.order:
            chosen = sorted(chosen, key=section.order)
        used, table = (section.table(chosen) if section.table
                       else (chosen, _table(section, chosen)))
        out += ["", f"## {section.title}", "", section.text, "",
                provenance_note(used), ""]
        if section.figure in figures:
            path, caption = figures[section.figure]
            out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
        out += table
    others = collections.Counter(results.value(r, "kind") for r in shown
                                 if results.value(r, "kind") not in covered)
    if others:
        listed = ", ".join(f"{n} of kind `{k}`" for k, n in sorted(others.items()))
        out += ["", "## Rows without a section", "",
                f"The log holds rows no section shows: {listed}. Add a `Section` to "
                f"`benchmarks/report.py` to show them."]
    return "\n".join(out) + "\n"


def write(rows=None, path=REPORT, figures_dir=plots.FIGURES_DIR):
    """Rewrites BENCHMARKS.md and its figures from the log.

    Args:
        rows: the log's rows (default: `results.load()`).
        path: the markdown file.
        figures_dir: where the PNGs go (linked relative to `path`).

    Returns:
        The paths of the figures written.
    """
    rows = results.load() if rows is None else rows
    drawn = plots.write_all(results.latest(rows), figures_dir)
    base = os.path.dirname(os.path.abspath(path))
    links = {name: (os.path.relpath(file, base), caption)
             for name, (file, caption) in drawn.items()}
    write_atomic(path, render(rows, links))
    return [file for file, _ in drawn.values()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=results.RESULTS, help="the log (JSON lines)")
    p.add_argument("-o", "--output", default=REPORT, help="the markdown file")
    p.add_argument("--figures", default=plots.FIGURES_DIR, help="folder for the PNGs")
    a = p.parse_args(argv)
    for file in write(results.load(a.results), a.output, a.figures):
        print(file)
    print(a.output)


if __name__ == "__main__":
    main()
