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
    with open(REPORT, "w") as f:
        f.write("\n".join(out) + "\n")
