"""Kernel-size pruning against channel-only pruning, at equal MACs, on LiteRT.

Usage:

    python -m benchmarks.smof                                  # quick: resnet20, float, 1 thread
    python -m benchmarks.smof --models resnet20 vgg11 mobilenet_v2 \\
        --quantization none int8 --threads 1 2 --runs 100

For each model and MACs target, two plans are made with no training (the
latency of a plan depends on its shapes, not on its weights):

- `l1`: channel-only, `tfprune.prune(..., "l1")` (global ranking).
- `smof-kernels`: SMOF's structure without its training: kernels shrunk
  by one ring at a time (the ring with the smallest share of its kernel's
  L1 norm first) while the MACs stay above the target, then channels
  (`l1`) removed until the plan, with those kernel sizes, meets the target.
  A trained `tfprune.smof` model makes its own choice; this benchmark asks
  only whether smaller kernels run faster per MAC than thinner layers.

Both are exported (float32 and/or full int8) and timed with the original,
interleaved in one process (`tflite_export.compare`). Printed per row: MACs
ratio, latency ratio (median against the original) and their quotient
(below 1: the time fell more than the MACs). Models have random weights
unless the benchmark protocol's trained baseline is cached.
"""

import argparse
import os
import tempfile

import numpy as np

import tflite_export
import tfprune
from benchmarks import latency
from tfprune.core.kernels import KERNEL_WEIGHTS


def _ring_share(layer, size):
    """Share of the kernel's L1 norm in the ring that shrinking to `size` drops."""
    kernel = np.abs(np.asarray(getattr(layer, KERNEL_WEIGHTS[type(layer).__name__])))
    total = kernel.sum() + 1e-12
    inner = tuple(slice((k - s) // 2, (k + s) // 2) for k, s in zip(kernel.shape, size))
    return (total - kernel[inner].sum()) / total


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
            if node.class_name not in KERNEL_WEIGHTS or len(node.path) != 1:
                continue
            size = kernels.get(node.name, tuple(node.layer.kernel_size))
            if max(size) <= 1:
                continue
            smaller = tuple(max(1, s - 2) for s in size)
            try:
                trial = graph.plan(kernels={**kernels, node.name: smaller})
            except tfprune.InvalidPlanError:
                continue
            if tfprune.cost(graph, trial).macs < goal:
                continue  # would overshoot: leave the rest to channels
            options.append((_ring_share(node.layer, smaller), node.name, smaller))
        if not options:
            break
        _, name, smaller = min(options)
        kernels[name] = smaller
    lo, hi = 0.0, 1.0  # channel fraction: bisect until the combined plan fits
    best = None
    for _ in range(20):
        mid = (lo + hi) / 2
        try:
            channels = tfprune.prune(graph, "l1", target_macs=mid)
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


def run(models, targets, quantizations, threads, runs):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            model, weights = latency.MODELS[name]()
            calib = np.random.default_rng(0).normal(
                size=(16,) + tuple(model.input_shape[1:])).astype("float32")
            base = tfprune.cost(model).macs
            variants = [("original", None, model)]
            for target in targets:
                graph = tfprune.analyze(model)
                l1 = tfprune.prune(graph, "l1", target_macs=target)
                variants.append(("l1", target, tfprune.rebuild(model, l1)))
                smof = kernel_plan(model, target)
                print(f"{name} {target}: kernels {smof.kernels}", flush=True)
                variants.append(("smof-kernels", target, tfprune.rebuild(model, smof)))
            for quantization in quantizations:
                paths = []
                for method, target, m in variants:
                    path = os.path.join(tmp, f"{name}_{method}_{target}_{quantization}.tflite")
                    tflite_export.convert(m, path, quantization=quantization,
                                          representative_data=calib, verify_samples=8)
                    paths.append(path)
                for t in threads:
                    reports = tflite_export.compare(paths, threads=t, runs=runs)
                    ref = reports[0].median_ms
                    for (method, target, m), rep in zip(variants, reports):
                        macs_ratio = tfprune.cost(m).macs / base
                        time_ratio = rep.median_ms / ref
                        rows.append(dict(model=name, weights=weights, method=method,
                                         target=target, quantization=quantization,
                                         threads=t, median_ms=rep.median_ms,
                                         macs_ratio=macs_ratio, latency_ratio=time_ratio,
                                         quotient=time_ratio / macs_ratio))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20"],
                        choices=sorted(latency.MODELS))
    parser.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33])
    parser.add_argument("--quantization", nargs="+", default=["none"],
                        choices=["none", "int8"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    rows = run(args.models, args.targets, args.quantization, args.threads, args.runs)
    print("| model | weights | method | target | quant | threads | median ms | "
          "MACs ratio | latency ratio | latency/MACs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['weights']} | {r['method']} | {r['target'] or ''} | "
              f"{r['quantization']} | {r['threads']} | {r['median_ms']:.3f} | "
              f"{r['macs_ratio']:.3f} | {r['latency_ratio']:.3f} | {r['quotient']:.3f} |")
    return rows


if __name__ == "__main__":
    main()
