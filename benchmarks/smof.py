"""SMOF (kernel sizes and channels): latency on LiteRT and accuracy.

Usage:

    python -m benchmarks.smof                                  # latency, resnet20, float, 1 thread
    python -m benchmarks.smof --models mobilenet_v2 --quantization none int8 \\
        --threads 1 2 --runs 200
    python -m benchmarks.smof --parts accuracy                 # resnet20 and vgg11
    python -m benchmarks.smof --parts accuracy --limit 512 --mask-epochs 1 \\
        --finetune-epochs 1                                     # smoke test, writes nothing

Latency (`--parts latency`, the default). For each model and MACs target,
two plans are made with no training (the latency of a plan depends on its
shapes, not on its weights):

- `l1`: channel-only, `tfprune.prune(..., criterion="l1")` (global ranking).
- `smof-kernels`: SMOF's structure without its training: kernels shrunk
  by one ring at a time (the ring with the smallest share of its kernel's
  L1 norm first) while the MACs stay above the target, then channels
  (`l1`) removed until the plan, with those kernel sizes, meets the target.
  A trained `tfprune.methods.smof` model makes its own choice; this part asks only
  whether smaller kernels run faster per MAC than thinner layers.

Both are exported (float32 and/or full int8) and timed with the original,
interleaved in one process (`tflite_export.compare`). One row per model,
target, quantization, threads and method (`kind: "smof_latency"`): MACs
ratio, latency ratio (median against the original's median of the same
run) and their quotient (below 1: the time fell more than the MACs). The
28x28 models carry the protocol's trained baseline when it is cached,
else random weights; MobileNetV2 (224x224x3) has random weights.

Accuracy (`--parts accuracy`), under the benchmark protocol: for each model
and target, `tfprune.methods.smof.mask` on the cached baseline, the masks trained
for `--mask-epochs` with `SMOFSchedule` (as `benchmarks.hfp` trains HFP's
gates), plan, rebuild, then the protocol's fine-tuning without (`smof`) and
with distillation from the baseline (`smof+kd`); and `l1+kd` (global l1,
the same fine-tuning with distillation) at the same targets. Rows are
`kind: "accuracy"` with a `kernels` field: convolutions per kernel size.
"""

import argparse
import collections
import os
import tempfile
import time

import numpy as np

import tflite_export
import tfprune
from benchmarks import latency, protocol, results
from tfprune.core.kernels import geometry, spatial_kernel

MASK_EPOCHS = 2
MASK_PEAK_LR = 0.05
METHODS = ("smof", "smof+kd", "l1+kd")


def _ring_share(node, size):
    """Share of the kernel's L1 norm in the ring that shrinking to `size` drops."""
    kernel = np.abs(np.asarray(getattr(node.layer, spatial_kernel(node))))
    total = kernel.sum() + 1e-12
    inner = tuple(slice((k - s) // 2, (k + s) // 2) for k, s in zip(kernel.shape, size))
    return (total - kernel[inner].sum()) / total


def _kernel_size(node):
    return geometry(node.config, node.spec.kernel_size_key)[0]


def kernel_plan(model, target_macs):
    """The SMOF-structured plan at `target_macs` (fraction), no training."""
    graph = tfprune.analyze(model)
    base = tfprune.cost(graph).macs
    goal = target_macs * base
    kernels = {}
    while True:
        current = tfprune.cost(graph, graph.plan(kernels=kernels)).macs
        if current <= goal:
            break
        options = []
        for node in graph.nodes:
            if spatial_kernel(node) is None or len(node.path) != 1:
                continue
            size = kernels.get(node.name, _kernel_size(node))
            if max(size) <= 1:
                continue
            smaller = tuple(max(1, s - 2) for s in size)
            try:
                trial = graph.plan(kernels={**kernels, node.name: smaller})
            except tfprune.InvalidPlanError:
                continue
            if tfprune.cost(graph, trial).macs < goal:
                continue  # would overshoot: leave the rest to channels
            options.append((_ring_share(node, smaller), node.name, smaller))
        if not options:
            break
        _, name, smaller = min(options)
        kernels[name] = smaller
    lo, hi = 0.0, 1.0  # channel fraction: bisect until the combined plan fits
    best = None
    for _ in range(20):
        mid = (lo + hi) / 2
        try:
            channels = tfprune.prune(graph, tfprune.Budget(macs=mid), criterion="l1")
        except tfprune.TargetUnreachableError:
            lo = mid
            continue
        plan = tfprune.PruningPlan(graph, channels.keep, kernels=kernels)
        if tfprune.cost(graph, plan).macs <= goal:
            best, lo = plan, mid
        else:
            hi = mid
    if best is None:
        best = graph.plan(kernels=kernels)
    return best


def kernel_summary(model):
    """Convolutions of `model` whose kernel size can be pruned, counted per
    kernel size: {"3x3": 12, "1x1": 7}, largest first."""
    counts = collections.Counter()
    for node in tfprune.analyze(model).nodes:
        if spatial_kernel(node) is not None and node.first_call:
            counts[_kernel_size(node)] += 1
    return {"x".join(map(str, size)): n
            for size, n in sorted(counts.items(), key=lambda kv: (-max(kv[0]), kv[0]))}


def latency_rows(name, targets, quantizations, threads, runs):
    """Times l1 and smof-kernels plans of model `name` against the original."""
    model, weights = latency.MODELS[name]()
    calib = latency._data(name, model)[0]
    input_shape = list(model.input_shape[1:])
    base = tfprune.cost(model).macs
    variants = [("original", None, model)]
    for target in targets:
        graph = tfprune.analyze(model)
        l1 = tfprune.prune(graph, tfprune.Budget(macs=target), criterion="l1")
        variants.append(("l1", target, tfprune.rebuild(model, l1)))
        smof = kernel_plan(model, target)
        print(f"{name} {target}: kernels {smof.kernels}", flush=True)
        variants.append(("smof-kernels", target, tfprune.rebuild(model, smof)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quantization in quantizations:
            paths = []
            for method, target, m in variants:
                path = os.path.join(tmp, f"{name}_{method}_{target}_{quantization}.tflite")
                tflite_export.convert(m, path, quantization=quantization,
                                      representative_data=calib, verify_samples=8)
                paths.append(path)
            for t in threads:
                reports = tflite_export.compare(paths, threads=t, runs=runs,
                                                warmup=max(10, runs // 10))
                original_ms = reports[0].median_ms
                for (method, target, m), rep in zip(variants[1:], reports[1:]):
                    cost = tfprune.cost(m)
                    macs_ratio = cost.macs / base
                    latency_ratio = rep.median_ms / original_ms
                    rows.append({
                        "kind": "smof_latency", "model": name, "input_shape": input_shape,
                        "method": method, "target": target, "quantization": quantization,
                        "threads": t, "macs": cost.macs, "macs_ratio": round(macs_ratio, 4),
                        "latency_ratio": round(latency_ratio, 4),
                        "quotient": round(latency_ratio / macs_ratio, 4),
                        "original_ms": round(original_ms, 4),
                        "pruned_ms": round(rep.median_ms, 4),
                        "kernels": kernel_summary(m), "runs": runs, "weights": weights,
                        "xnnpack": rep.xnnpack, "load_avg": round(os.getloadavg()[0], 2)})
    return rows


def _accuracy_row(model_name, method, target, slim, base_cost, before, acc, base_acc,
                  epochs, wall, **extra):
    c = tfprune.cost(slim)
    row = {"kind": "accuracy", "model": model_name, "method": method, "target": target,
           "scope": None, "round_to": None, "params": c.params, "macs": c.macs,
           "params_ratio": round(c.params / base_cost.params, 4),
           "macs_ratio": round(c.macs / base_cost.macs, 4),
           "budget_error": round(abs(c.macs / (target * base_cost.macs) - 1), 4),
           "acc_before_finetune": round(before, 4), "test_acc": round(acc, 4),
           "baseline_acc": round(base_acc, 4), "epochs": epochs, "wall_s": round(wall, 1),
           "kernels": kernel_summary(slim), **extra}
    print(row, flush=True)
    return row


def accuracy_rows(model_name, target, methods=METHODS, mask_epochs=MASK_EPOCHS,
                  finetune_epochs=protocol.FINETUNE_EPOCHS, weight=5.0, limit=None):
    """SMOF (with and without distillation) and l1+kd under the protocol."""
    protocol.set_seed()
    train, test = protocol.data(limit)
    base, base_acc, _ = protocol.baseline(model_name, train, test, limit=limit)
    base_cost = tfprune.cost(base)
    rows = []
    smof_methods = [m for m in ("smof", "smof+kd") if m in methods]
    if smof_methods:
        start = time.perf_counter()
        masked = tfprune.methods.smof.mask(base, tfprune.Budget(macs=target), weight=weight)
        protocol.compile_for_training(masked, MASK_PEAK_LR, mask_epochs,
                                      int(train.cardinality()))
        masked.fit(train, epochs=mask_epochs, verbose=2,
                   callbacks=[tfprune.methods.smof.SMOFSchedule()])
        plan = tfprune.methods.smof.plan(masked)
        mask_wall = time.perf_counter() - start
        for method in smof_methods:
            t0 = time.perf_counter()
            slim = tfprune.rebuild(masked, plan)
            before = protocol.accuracy(slim, test)
            acc = protocol.finetune(slim, base, train, test, method == "smof+kd", finetune_epochs)
            rows.append(_accuracy_row(
                model_name, method, target, slim, base_cost, before, acc, base_acc,
                f"{protocol.BASELINE_EPOCHS}+{mask_epochs}+{finetune_epochs}",
                mask_wall + time.perf_counter() - t0, budget_weight=weight,
                kernels_shrunk=len(plan.kernels)))
    if "l1+kd" in methods:
        start = time.perf_counter()
        plan = tfprune.prune(base, tfprune.Budget(macs=target), criterion="l1", scope="global")
        slim = tfprune.rebuild(base, plan)
        before = protocol.accuracy(slim, test)
        acc = protocol.finetune(slim, base, train, test, True, finetune_epochs)
        row = _accuracy_row(model_name, "l1+kd", target, slim, base_cost, before, acc,
                            base_acc, f"{protocol.BASELINE_EPOCHS}+{finetune_epochs}",
                            time.perf_counter() - start)
        row.update(scope="global", round_to=1)
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["latency"], choices=["latency", "accuracy"])
    p.add_argument("--models", nargs="+", default=None,
                   help="latency: resnet20, vgg11, mobilenet_v2 (default resnet20); "
                        "accuracy: resnet20, vgg11 (default both)")
    p.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33])
    p.add_argument("--quantization", nargs="+", default=["none"], choices=["none", "int8"])
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--runs", type=int, default=50, help="timed runs per file (latency)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="accuracy rows to make")
    p.add_argument("--mask-epochs", type=int, default=MASK_EPOCHS)
    p.add_argument("--finetune-epochs", type=int, default=protocol.FINETUNE_EPOCHS)
    p.add_argument("--weight", type=float, default=5.0, help="SMOF budget loss weight")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    p.add_argument("--no-write", action="store_true", help="print only; write no rows")
    a = p.parse_args(argv)
    write = a.limit is None and not a.no_write
    known = {"latency": sorted(latency.MODELS), "accuracy": sorted(protocol.MODELS)}
    defaults = {"latency": ["resnet20"], "accuracy": ["resnet20", "vgg11"]}
    all_rows = []
    for part in a.parts:
        models = a.models or defaults[part]
        unknown = [m for m in models if m not in known[part]]
        if unknown:
            p.error(f"--models {unknown[0]} has no {part} part; choose from "
                    f"{', '.join(known[part])}")
        for name in models:
            if part == "latency":
                rows = latency_rows(name, a.targets, a.quantization, a.threads, a.runs)
                _print_latency(rows)
            else:
                rows = []
                for target in a.targets:
                    rows += accuracy_rows(name, target, a.methods, a.mask_epochs,
                                          a.finetune_epochs, a.weight, a.limit)
            if write and rows:
                results.extend(rows)
            all_rows += rows
    return all_rows


def _print_latency(rows):
    print("| model | method | target | quant | threads | original ms | pruned ms | "
          "MACs ratio | latency ratio | quotient | kernels |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        kernels = ", ".join(f"{k} {n}" for k, n in r["kernels"].items())
        print(f"| {r['model']} | {r['method']} | {r['target']} | {r['quantization']} | "
              f"{r['threads']} | {r['original_ms']:.3f} | {r['pruned_ms']:.3f} | "
              f"{r['macs_ratio']:.3f} | {r['latency_ratio']:.3f} | {r['quotient']:.3f} | "
              f"{kernels} |", flush=True)


if __name__ == "__main__":
    main()
