"""How fast tfprune itself is: analyze + rebuild of keras.applications ResNet50.

Usage: python -m benchmarks.tool [--runs 5]
"""

import argparse
import statistics
import time

import keras

import tfprune
from benchmarks import results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args(argv)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    times = {"analyze": [], "prune l1 0.5": [], "rebuild": []}
    for _ in range(a.runs):
        t0 = time.perf_counter()
        graph = tfprune.analyze(model)
        t1 = time.perf_counter()
        plan = tfprune.prune(graph, tfprune.Budget(macs=0.5), criterion="l1")
        t2 = time.perf_counter()
        tfprune.rebuild(model, plan)
        t3 = time.perf_counter()
        times["analyze"].append(t1 - t0)
        times["prune l1 0.5"].append(t2 - t1)
        times["rebuild"].append(t3 - t2)
    totals = [a_ + r for a_, r in zip(times["analyze"], times["rebuild"])]
    times["analyze + rebuild"] = totals
    for step, ts in times.items():
        row = {"kind": "tool", "model": "ResNet50 (224x224)", "method": step,
               "median_s": statistics.median(ts), "runs": a.runs}
        print(row)
        results.append(row)


if __name__ == "__main__":
    main()
