"""benchmarks/results.json (the rows) and BENCHMARKS.md (made from them)."""

import json
import os

HERE = os.path.dirname(__file__)
RESULTS = os.path.join(HERE, "results.json")
REPORT = os.path.join(os.path.dirname(HERE), "BENCHMARKS.md")


def load():
    if not os.path.exists(RESULTS):
        return []
    with open(RESULTS) as f:
        return json.load(f)


def append(row, replace_keys=("model", "method", "target", "scope", "round_to")):
    """Adds a row, replacing an earlier row of the same configuration."""
    rows = [r for r in load()
            if any(r.get(k) != row.get(k) for k in replace_keys)]
    rows.append(row)
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f, indent=1)
    os.replace(tmp, RESULTS)
    write_report(rows)


def _fmt(v, digits=4):
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int) and abs(v) >= 10000:
        return f"{v:,}"
    return "" if v is None else str(v)


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
        "| model | method | target MACs | scope | params | MACs | params ratio | "
        "MACs ratio | test acc | baseline acc | epochs | wall s | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(acc_rows, key=lambda r: (r["model"], r["method"] != "baseline",
                                             -float(r.get("target") or 1))):
        out.append("| " + " | ".join(_fmt(r.get(k)) for k in (
            "model", "method", "target", "scope", "params", "macs",
            "params_ratio", "macs_ratio", "test_acc", "baseline_acc",
            "epochs", "wall_s", "machine")) + " |")
    if tool_rows:
        out += ["", "## The tool itself", "",
                "| model | step | median s | runs | machine |", "|---|---|---|---|---|"]
        for r in tool_rows:
            out.append(f"| {r['model']} | {r['method']} | {r['median_s']:.3f} | "
                       f"{r['runs']} | {r['machine']} |")
    if latency_rows:
        out += _latency_section(latency_rows)
    with open(REPORT, "w") as f:
        f.write("\n".join(out) + "\n")


_LATENCY_COLUMNS = (
    "model", "method", "target", "scope", "round_to", "quantization", "threads",
    "latency_ms", "p90_ms", "latency_ratio", "macs_ratio", "time_per_mac",
    "size_bytes", "gzip_bytes", "top1_agreement", "tflite_acc", "weights",
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
           "original model of the same precision and thread count; "
           "`time_per_mac` is their quotient (1.0: time falls exactly as MACs "
           "do). tfmot rows are unstructured 50% sparsity on a `tf_keras` "
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
