"""How well does a latency table predict measured LiteRT latency?

Usage:

    python -m benchmarks.latency_table                  # resnet20 at 28x28x1
    python -m benchmarks.latency_table --model vgg11 --plans 8 --runs 30

Measures a `tfprune.latency.LatencyTable` for a zoo model (random weights;
latency does not depend on them) with the LiteRT timer of tflite_export,
then for random plans (every group kept at a random width between the
narrowest measured width and full, channels chosen at random) rebuilds the
model, converts and times it, and prints the predicted and measured
milliseconds, the relative errors, the mean absolute error and the commit,
as one JSON line at the end. Timing on a busy machine is noisy; the figures
are those of the machine the script runs on.
"""

import argparse
import json
import subprocess
import time

import numpy as np

import tfprune
from tflite_export.timing import time_model
from tfprune.latency import LatencyTable


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20", choices=["resnet20", "vgg11"])
    p.add_argument("--plans", type=int, default=6)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    model = getattr(tfprune.zoo, args.model)(input_shape=(28, 28, 1))
    graph = tfprune.analyze(model)
    start = time.time()
    table = LatencyTable.measure(model, threads=args.threads, timer=time_model,
                                 runs=args.runs)
    measure_s = time.time() - start
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.plans):
        keep = {}
        for group in graph.prunable_groups:
            n = int(rng.integers(table.steps(group.id)[0], group.size + 1))
            kept = set(rng.choice(group.size, n, replace=False).tolist())
            for part in group.segments:
                if not kept.intersection(part.tolist()):
                    kept.add(int(part[0]))
            keep[group.id] = sorted(kept)
        plan = graph.plan(keep)
        slim = tfprune.rebuild(model, plan)
        measured = time_model(slim, threads=args.threads, runs=args.runs)
        base = time_model(model, threads=args.threads, runs=args.runs)
        predicted = table.predict(plan)
        # Relative to the original timed next to it: drift of a busy machine
        # between the table and this plan cancels out.
        row = {"plan": i, "predicted_ms": predicted, "measured_ms": measured,
               "base_now_ms": base, "predicted_ratio": predicted / table.base_ms,
               "measured_ratio": measured / base,
               "macs_ratio": tfprune.cost(graph, plan).macs / tfprune.cost(graph).macs}
        row["ratio_error"] = row["predicted_ratio"] / row["measured_ratio"] - 1
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in row.items()}), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    errors = np.abs([r["ratio_error"] for r in rows])
    print(json.dumps({"model": args.model, "threads": args.threads,
                      "groups": len(table.groups), "base_ms": table.base_ms,
                      "measure_s": round(measure_s, 1), "plans": len(rows),
                      "mean_abs_ratio_error": round(float(errors.mean()), 4),
                      "max_abs_ratio_error": round(float(errors.max()), 4),
                      "cpu": table.cpu, "litert": table.litert, "commit": commit}))


if __name__ == "__main__":
    main()
