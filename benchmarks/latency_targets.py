"""Pruning to a measured latency: does the table's target hold, and does it beat l1?

Usage:

    python -m benchmarks.latency_targets                       # MobileNetV2 and ResNet-50 at 224
    python -m benchmarks.latency_targets --models mobilenet_v2 --runs 30

For each model (keras.applications MobileNetV2 and ResNet-50 at 224x224x3,
random weights: latency does not depend on them), one thread, float32:

1. A `tfprune.latency.LatencyTable` is measured with LiteRT (cached in
   benchmarks/cache/latency_tables/, keyed by the model's config hash and
   the thread count).
2. Plans are made with no training:
   - `l1+table` at `target_latency` 0.5 and 0.33 of the table's predicted
     original latency (`round_to="auto"`: widths the table measured);
   - `l1+table` at `target_macs` 0.5 with `round_to="auto"` (the latency /
     MACs quotient the table's widths give at half the MACs);
   - plain `l1` (global and uniform, `round_to` 1, 8 and 16) on a grid of
     MACs targets, to find the MACs that plain l1 keeps at the *measured*
     latency of each `l1+table` model (linear interpolation on the grid).
3. All models are exported (float32) and timed in one process,
   interleaved (`tflite_export.compare`), so ratios against the original
   are free of the machine's drift.

Rows (`kind: "latency_target"`) go to benchmarks/results.jsonl, one per
exported plan, and one `kind: "latency_equal"` row per `l1+table` target
that names the best plain-l1 variant at the same measured latency and the
MACs it keeps there (more MACs at equal latency: more of the network kept).

`--parts accuracy` (resnet20 / vgg11 under the benchmark protocol): the
cached trained baseline is pruned with the table to `target_latency`, and
with plain `l1` (global, `round_to=1`, the default) to the MACs at which it
runs as fast as the measured table-pruned model (found on a grid, then
confirmed by timing both again, interleaved); both are fine-tuned for the
protocol's 3 epochs and tested (`kind: "accuracy"`, methods `l1+table@latency`
and `l1@latency`, `target` = the latency target).
"""

import argparse
import json
import os
import tempfile
import time

import keras
import numpy as np

import tflite_export
import tfprune
from benchmarks import protocol, results
from tflite_export.timing import time_model
from tfprune.latency import LatencyTable, model_hash

TABLES = os.path.join(protocol.CACHE_DIR, "latency_tables")
LATENCY_TARGETS = (0.5, 0.33)
MACS_GRID = (0.15, 0.22, 0.3, 0.4, 0.5, 0.62)
L1_VARIANTS = (("global", 1), ("global", 8), ("global", 16),
               ("uniform", 1), ("uniform", 8), ("uniform", 16))


def _applications(name):
    protocol.set_seed()
    build = {"mobilenet_v2": keras.applications.MobileNetV2,
             "resnet50": keras.applications.ResNet50}[name]
    return build(input_shape=(224, 224, 3), weights=None, classifier_activation=None)


MODELS = {
    "mobilenet_v2": lambda: _applications("mobilenet_v2"),
    "resnet50": lambda: _applications("resnet50"),
    "resnet20": lambda: protocol.MODELS["resnet20"](),
    "vgg11": lambda: protocol.MODELS["vgg11"](),
}


def table_for(name, model, threads, runs):
    """The model's latency table, from the cache or measured now."""
    os.makedirs(TABLES, exist_ok=True)
    path = os.path.join(TABLES, f"{name}_{model_hash(model)}_t{threads}.json")
    if os.path.exists(path):
        print(f"{name}: latency table from {path}", flush=True)
        table = LatencyTable.load(path, model)
        if _calibrated(path):
            return table, path
        # measured before tables were calibrated: fit the scale now
        table.calibrate(model, timer=time_model, runs=runs)
    else:
        table = LatencyTable.measure(model, threads=threads, timer=time_model, runs=runs)
    table.save(path)
    print(f"{name}: table scale {table.scale:.3f} ({table.calibration})", flush=True)
    return table, path


def _calibrated(path):
    with open(path) as f:
        return "scale" in json.load(f)


def plans(graph, table, targets, macs_grid, variants):
    """(method, settings, plan) of every model to export."""
    out = []
    for t in targets:
        out.append(("l1+table", {"target_latency": t, "target_macs": None,
                                 "scope": "global", "round_to": "auto"},
                    tfprune.prune(graph, tfprune.Budget(latency=t, table=table,
                                                 round_to="auto"), criterion="l1")))
    out.append(("l1+table", {"target_latency": None, "target_macs": 0.5,
                             "scope": "global", "round_to": "auto"},
                tfprune.prune(graph, tfprune.Budget(macs=0.5, table=table, round_to="auto"),
                              criterion="l1")))
    for scope, round_to in variants:
        for m in macs_grid:
            try:
                plan = tfprune.prune(graph, tfprune.Budget(macs=m, round_to=round_to),
                                     criterion="l1", scope=scope)
            except tfprune.TargetUnreachableError as e:
                print(f"  skip l1 {m} {scope} round_to={round_to}: {e}", flush=True)
                continue
            out.append(("l1", {"target_latency": None, "target_macs": m,
                               "scope": scope, "round_to": round_to}, plan))
    return out


def macs_at_latency(points, latency):
    """MACs ratio at `latency` on a variant's (latency ratio, MACs ratio) grid.

    None when `latency` lies outside the measured latencies (no
    extrapolation).
    """
    pts = sorted(points)
    lat = [p[0] for p in pts]
    if not pts or latency < lat[0] or latency > lat[-1]:
        return None
    # Measured latency is not strictly monotone in the MACs target on a
    # noisy machine: make it so before interpolating.
    lat = np.maximum.accumulate(lat)
    return float(np.interp(latency, lat, [p[1] for p in pts]))


def run_model(name, threads, runs, table_runs, targets, macs_grid, variants, dry):
    model = MODELS[name]()
    graph = tfprune.analyze(model)
    base = tfprune.cost(graph)
    table, table_path = table_for(name, model, threads, table_runs)
    made = plans(graph, table, targets, macs_grid, variants)
    with tempfile.TemporaryDirectory() as work:
        paths = [os.path.join(work, "original.tflite")]
        tflite_export.convert(model, paths[0], verify_samples=2)
        for i, (method, _, plan) in enumerate(made):
            path = os.path.join(work, f"{i}_{method}.tflite")
            tflite_export.convert(tfprune.rebuild(model, plan), path, verify_samples=2)
            paths.append(path)
            print(f"  exported {i + 1}/{len(made)}", flush=True)
        reports = tflite_export.compare(paths, threads=threads, runs=runs)
    base_ms = reports[0].median_ms
    rows = []
    for (method, settings, plan), report in zip(made, reports[1:]):
        macs = tfprune.cost(graph, plan).macs / base.macs
        measured = report.median_ms / base_ms
        predicted = float(table.predict(plan)) / table.base_ms
        row = {"kind": "latency_target", "model": name, "method": method, **settings,
               "threads": threads, "quantization": "none",
               "macs_ratio": round(macs, 4), "predicted_ratio": round(predicted, 4),
               "latency_ratio": round(measured, 4),
               "quotient": round(measured / macs, 4),
               "original_ms": round(base_ms, 3), "ms": round(report.median_ms, 3),
               "runs": runs, "table_base_ms": round(table.base_ms, 3)}
        if settings["target_latency"] is not None:
            row["target_error"] = round(measured / settings["target_latency"] - 1, 4)
        rows.append(row)
        print(row, flush=True)
    summary = []
    for row in rows:
        if row["method"] != "l1+table" or row["target_latency"] is None:
            continue
        best = None
        for scope, round_to in variants:
            pts = [(r["latency_ratio"], r["macs_ratio"]) for r in rows
                   if r["method"] == "l1" and r["scope"] == scope
                   and r["round_to"] == round_to]
            m = macs_at_latency(pts, row["latency_ratio"])
            if m is not None and (best is None or m > best[0]):
                best = (m, scope, round_to)
        summary.append({
            "kind": "latency_equal", "model": name, "method": "l1+table",
            "target_latency": row["target_latency"], "threads": threads,
            "quantization": "none", "latency_ratio": row["latency_ratio"],
            "macs_ratio": row["macs_ratio"],
            "l1_macs_ratio": None if best is None else round(best[0], 4),
            "l1_scope": None if best is None else best[1],
            "l1_round_to": None if best is None else best[2]})
        print(summary[-1], flush=True)
    if not dry:
        results.extend(rows + summary)
    return rows, summary


def _timed(models, threads, runs):
    """Median ms of each Keras model, exported and timed interleaved."""
    with tempfile.TemporaryDirectory() as work:
        paths = []
        for i, m in enumerate(models):
            paths.append(os.path.join(work, f"{i}.tflite"))
            tflite_export.convert(m, paths[-1], verify_samples=2)
        return [r.median_ms for r in tflite_export.compare(paths, threads=threads,
                                                           runs=runs)]


def accuracy_part(name, threads, runs, table_runs, targets, macs_grid, dry):
    protocol.set_seed()
    train, test = protocol.data()
    base, base_acc, _ = protocol.baseline(name, train, test)
    graph = tfprune.analyze(base)
    full = tfprune.cost(graph)
    table, _ = table_for(name, base, threads, table_runs)
    rows = []
    for target in targets:
        aware = tfprune.prune(graph, tfprune.Budget(latency=target, table=table,
                                                    round_to="auto"), criterion="l1")
        grid = [tfprune.prune(graph, tfprune.Budget(macs=m), criterion="l1")
                for m in macs_grid]
        ms = _timed([base, tfprune.rebuild(base, aware)]
                    + [tfprune.rebuild(base, p) for p in grid], threads, runs)
        goal = ms[1] / ms[0]
        points = [(t / ms[0], tfprune.cost(graph, p).macs / full.macs)
                  for t, p in zip(ms[2:], grid)]
        macs = macs_at_latency(points, goal)
        if macs is None:
            print(f"{name} {target}: plain l1 never runs at {goal:.3f} of the original "
                  f"on the grid {points}; skipped", flush=True)
            continue
        plain = tfprune.prune(graph, tfprune.Budget(macs=macs), criterion="l1")
        ms = _timed([base, tfprune.rebuild(base, aware), tfprune.rebuild(base, plain)],
                    threads, runs)
        for method, plan, t in (("l1+table@latency", aware, ms[1]),
                                ("l1@latency", plain, ms[2])):
            start = time.perf_counter()
            slim = tfprune.rebuild(base, plan)
            before = protocol.accuracy(slim, test)
            protocol.train(slim, train, protocol.FINETUNE_EPOCHS,
                           protocol.FINETUNE_PEAK_LR)
            c = tfprune.cost(slim)
            row = {"kind": "accuracy", "model": name, "method": method,
                   "target": target, "scope": "global",
                   "round_to": "auto" if plan is aware else 1,
                   "baseline_acc": round(base_acc, 4), "params": c.params,
                   "macs": c.macs, "params_ratio": round(c.params / full.params, 4),
                   "macs_ratio": round(c.macs / full.macs, 4),
                   "latency_ratio": round(t / ms[0], 4),
                   "predicted_ratio": round(float(table.predict(plan)) / table.base_ms, 4),
                   "threads": threads, "acc_before_finetune": round(before, 4),
                   "test_acc": round(protocol.accuracy(slim, test), 4),
                   "epochs": f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}",
                   "wall_s": round(time.perf_counter() - start, 1)}
            print(row, flush=True)
            rows.append(row)
            if not dry:
                results.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"],
                   choices=sorted(MODELS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30, help="timed runs per exported model")
    p.add_argument("--table-runs", type=int, default=20,
                   help="timed runs per sub-model of the latency table")
    p.add_argument("--targets", nargs="+", type=float, default=list(LATENCY_TARGETS))
    p.add_argument("--macs-grid", nargs="+", type=float, default=list(MACS_GRID))
    p.add_argument("--variants", nargs="+", default=None,
                   help="l1 variants as scope:round_to, e.g. global:1 uniform:16")
    p.add_argument("--parts", nargs="+", default=["latency"],
                   choices=["latency", "accuracy"])
    p.add_argument("--dry-run", action="store_true", help="print, write no rows")
    args = p.parse_args(argv)
    variants = L1_VARIANTS if args.variants is None else [
        (v.split(":")[0], int(v.split(":")[1])) for v in args.variants]
    for name in args.models:
        if "accuracy" in args.parts:
            accuracy_part(name, args.threads, args.runs, args.table_runs, args.targets,
                          args.macs_grid, args.dry_run)
        if "latency" not in args.parts:
            continue
        run_model(name, args.threads, args.runs, args.table_runs, args.targets,
                  args.macs_grid, variants, args.dry_run)


if __name__ == "__main__":
    main()
