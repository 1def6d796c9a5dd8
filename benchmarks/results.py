"""benchmarks/results.json (the rows) and BENCHMARKS.md (made from them)."""

import fcntl
import json
import os

from tfprune.core.fileio import write_atomic

HERE = os.path.dirname(__file__)
RESULTS = os.path.join(HERE, "results.json")
REPORT = os.path.join(os.path.dirname(HERE), "BENCHMARKS.md")


def load():
    if not os.path.exists(RESULTS):
        return []
    with open(RESULTS) as f:
        return json.load(f)


def append(row, replace_keys=("kind", "model", "method", "target", "scope", "round_to")):
    """Adds a row, replacing an earlier row of the same configuration.

    Benchmarks run side by side append to one file: the read-modify-write
    happens under an exclusive lock, so no process drops another's row.
    """
    with open(RESULTS + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in load()
                if any(r.get(k) != row.get(k) for k in replace_keys)]
        rows.append(row)
        write_atomic(RESULTS, json.dumps(rows, indent=1))
        write_report(rows)


def _fmt(v, digits=4):
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    if isinstance(v, int) and abs(v) >= 10000:
        return f"{v:,}"
    return "" if v is None else str(v)


_ACC_COLUMNS = ("model", "method", "target", "scope", "params", "macs", "params_ratio",
                "macs_ratio", "acc_before_finetune", "test_acc", "baseline_acc",
                "budget_error", "epochs", "wall_s", "machine")
_NAMES = {"acc_before_finetune": "before FT", "target": "target MACs",
          "budget_error": "budget err", "acc_drop": "Δacc"}
_SECTIONS = (
    ("selection", "Genetic search: which channels, at equal widths",
     "Same widths for every row (the GA's sensitivity allocation); only the "
     "choice of channels differs, and every row's next layers are re-fitted "
     "by least squares the same way. Reconstruction error: summed normalised "
     "residual of the consumers on calibration activations. Accuracy before "
     "fine-tuning. `search s`: the GA's search time on 2 cores (population 32, "
     "30 generations).",
     ("model", "method", "target", "target_params", "reconstruction_error",
      "acc_before_finetune", "search_s", "machine")),
    ("fitness", "Genetic search: two-step fitness against real loss",
     "Population 16, 8 generations, same seed; `two_step` evaluates the "
     "reconstruction error for every candidate and the real loss for the 2 "
     "best per generation, `real_loss` the real loss for every candidate. "
     "Same run, one after the other.",
     ("model", "method", "target", "search_s", "time_ratio_vs_real_loss",
      "acc_before_finetune", "calls", "machine")),
    ("steptime", "Training step: gated against plain",
     "Median seconds per training step (batch 128) of the gated model (gates "
     "and budget loss) against a plain clone of the same trained baseline, "
     "timed in turns in one run (`benchmarks.hfp --parts steptime`).",
     ("model", "method", "plain_ms", "gated_ms", "ratio", "machine")),
    ("prunetrain", "PruneTrain against dense training",
     "Same model, initial weights, epochs and one-cycle schedule (peak 0.1), "
     "trained from scratch in one run, dense first. `train images` / `batch`: "
     "the reduced protocol of `benchmarks.prunetrain` (a fixed subset, with the "
     "batch that keeps the full protocol's 469 steps per epoch); test accuracy "
     "on the full test set. Training FLOPs: 6 x MACs x samples per epoch at "
     "the width trained. Wall ratios hold only on an otherwise idle machine; "
     "CPU seconds (the process, all threads) are less disturbed by other jobs. "
     "A row that removed nothing (macs ratio 1) did the dense run's work: its "
     "wall ratio measures the noise and the difference between the two "
     "training paths, so read the other rows' wall ratios against it.",
     ("model", "method", "penalty_ratio", "epochs", "reconfigure_every",
      "train_images", "batch_size", "test_acc", "dense_acc", "acc_drop", "macs_ratio",
      "params_ratio", "train_flops_ratio", "wall_s", "wall_ratio", "cpu_s",
      "cpu_ratio", "machine")),
)


def _header(columns):
    names = [_NAMES.get(c, c.replace("_", " ")) for c in columns]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(columns)


def _line(row, columns):
    return "| " + " | ".join(_fmt(row.get(k)) for k in columns) + " |"


def write_report(rows=None):
    rows = load() if rows is None else rows
    acc_rows = [r for r in rows if r.get("kind", "accuracy") == "accuracy"]
    tool_rows = [r for r in rows if r.get("kind") == "tool"]
    latency_rows = [r for r in rows if r.get("kind") == "latency"]
    out = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.run` from `benchmarks/results.json`; "
        "do not edit by hand. Protocol: `../shared/BENCHMARK_PROTOCOL.md` "
        "(Fashion-MNIST, 8-epoch baselines, 3-epoch fine-tuning, SGD Nesterov, "
        "one-cycle LR).",
        "",
        "## Accuracy against MACs",
        "",
        "Methods: `l1` (global L1 ranking, `benchmarks.run`), `hfp` / `hfp+kd` "
        "(Holistic Filter Pruning, fine-tuned without / with distillation, "
        "`benchmarks.hfp`), `ga+kd` (genetic channel search, distillation, "
        "`benchmarks.genetic`). `before FT`: test accuracy right after "
        "pruning; `budget err`: |achieved / target - 1| for HFP. Epochs: "
        "baseline + pruning-time training + fine-tuning.",
        "",
        _header(_ACC_COLUMNS),
    ]
    for r in sorted(acc_rows, key=lambda r: (r["model"], r["method"] != "baseline",
                                             -float(r.get("target") or 1), r["method"])):
        out.append(_line(r, _ACC_COLUMNS))
    for kind, title, note, columns in _SECTIONS:
        chosen = [r for r in rows if r.get("kind") == kind]
        if chosen:
            out += ["", f"## {title}", "", note, "", _header(columns)]
            out += [_line(r, columns) for r in chosen]
    if tool_rows:
        out += ["", "## The tool itself", "",
                "| model | step | median s | runs | machine |", "|---|---|---|---|---|"]
        for r in tool_rows:
            out.append(f"| {r['model']} | {r['method']} | {r['median_s']:.3f} | "
                       f"{r['runs']} | {r['machine']} |")
    if latency_rows:
        out += _latency_section(latency_rows)
    write_atomic(REPORT, "\n".join(out) + "\n")


_LATENCY_COLUMNS = (
    "model", "method", "target", "scope", "round_to", "quantization", "threads",
    "latency_ms", "p90_ms", "latency_ratio", "min_ratio", "macs_ratio", "time_per_mac",
    "size_bytes", "gzip_bytes", "top1_agreement", "weights", "load_avg",
    "machine")


def _latency_section(rows):
    """Latency of original vs pruned .tflite files (benchmarks/latency.py)."""
    order = {"original": 0, "l1": 1}

    def key(r):
        return (r["model"], r["quantization"], r["threads"],
                order.get(r["method"], 2), -float(r.get("target") or 1),
                r.get("scope") or "", r.get("round_to") or 0)

    out = ["", "## Latency on LiteRT (XNNPACK)", "",
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
           "pruning see the table above. tfmot rows are unstructured 50% sparsity on a `tf_keras` "
           "twin with the same weights, converted with the same settings. "
           "Where the time goes, op by op: `benchmarks/profiles.md`.", "",
           "| " + " | ".join(c.replace("_", " ") for c in _LATENCY_COLUMNS) + " |",
           "|" + "---|" * len(_LATENCY_COLUMNS)]
    for r in sorted(rows, key=key):
        r = dict(r)
        if r.get("sparsity") is not None:
            r["method"] = f"{r['method']} ({r['sparsity']:.0%} zeros)"
        if r.get("macs_ratio"):
            r["time_per_mac"] = round(r["latency_ratio"] / r["macs_ratio"], 3)
        out.append("| " + " | ".join(_fmt(r.get(k)) for k in _LATENCY_COLUMNS) + " |")
    return out
