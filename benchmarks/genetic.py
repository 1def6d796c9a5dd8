"""The genetic channel search under the benchmark protocol.

Rows:
- selection quality at equal widths (same allocation): GA vs L1 vs random
  subsets, reconstruction error and accuracy before fine-tuning;
- fitness cost: two-step fitness vs real loss for every candidate, search
  wall time (same run) and accuracy;
- resnet20 at 50% / 33% MACs and the seed paper's claim on VGG (<= 1/8 of
  the params and <= 1/3 of the MACs), fine-tuned 3 epochs with distillation.

Usage: python -m benchmarks.genetic [--parts selection cost accuracy]
                                    [--models resnet20 vgg11] [--seed 0]
                                    [--targets 0.5 0.33]

`--seed` varies the calibration images, the search and the fine-tuning;
every seed starts from the one cached baseline. Rows are written for the
parts asked for only (`--parts accuracy` writes no selection rows).
"""

import argparse
import time

import numpy as np

import tfprune
from benchmarks import protocol, results
from tfprune.datasets import load
from tfprune.methods import search

# The seed paper's VGG claim: at most 1/8 of the params (and 1/3 of the MACs).
CLAIM_PARAMS = 0.125


def calibration(n=512, seed=protocol.SEED):
    x, y = load("fashion_mnist", split="train", as_numpy=True)
    idx = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[idx], y[idx]


def row(model_name, method, target, base, base_acc, slim, acc, extra):
    c, b = tfprune.cost(slim), tfprune.cost(base)
    return {"kind": "accuracy", "model": model_name, "method": method, "target": target,
            "scope": None, "round_to": None, "params": c.params, "macs": c.macs,
            "params_ratio": round(c.params / b.params, 4),
            "macs_ratio": round(c.macs / b.macs, 4), "test_acc": round(acc, 4),
            "baseline_acc": round(base_acc, 4), **extra}


def selection(model_name, target, calib, test, limit, target_params=None,
              seed=protocol.SEED):
    """GA vs L1 vs random subsets at the same widths."""
    base, base_acc, _ = protocol.baseline(model_name, limit=limit)
    graph = tfprune.analyze(base)
    sens = search.sensitivity(base, calib, limit=512)
    ga = search.GeneticChannelSearch(base, calib,
                                     tfprune.Budget(macs=target, params=target_params),
                                     sensitivity=sens, population=32, generations=30,
                                     seed=seed)
    start = time.perf_counter()
    ga_plan = ga.run()
    wall = time.perf_counter() - start
    scores = tfprune.ranking.importance.magnitude(graph)
    rng = np.random.default_rng(seed)
    plans = {"ga": ga_plan}
    l1, rand = {}, {}
    for gid, n in ga.counts.items():
        size = graph.groups[gid].size
        if n < size:
            l1[gid] = tfprune.ranking.importance.top_channels(scores[gid], n)
            rand[gid] = np.sort(rng.choice(size, n, replace=False))
    errors = {"ga": sum(ga.reconstruction_errors.values())}
    for name, keep in (("l1", l1), ("random", rand)):
        plans[name] = ga.refit(keep)
        errors[name] = sum(ga.reconstruction_errors.values())
    rows = []
    for name, plan in plans.items():
        slim = tfprune.rebuild(base, plan)
        acc = protocol.accuracy(slim, test)
        err = errors[name]
        rows.append({"kind": "selection", "model": model_name, "method": name,
                     "target": target, "target_params": target_params,
                     "reconstruction_error": round(err, 4),
                     "acc_before_finetune": round(acc, 4),
                     "search_s": round(wall, 1) if name == "ga" else None,
                     "seed": seed})
        print(rows[-1])
    return rows, ga_plan, base, base_acc, sens


def fitness_cost(model_name, target, calib, test, sens, base):
    """Two-step fitness against the real loss for every candidate."""
    out = []
    for fitness in ("two_step", "real_loss"):
        s = search.GeneticChannelSearch(base, calib, tfprune.Budget(macs=target),
                                        sensitivity=sens, population=16, generations=8, seed=0,
                                        fitness=fitness, verbose=False)
        start = time.perf_counter()
        plan = s.run()
        wall = time.perf_counter() - start
        acc = protocol.accuracy(tfprune.rebuild(base, plan), test)
        out.append({"kind": "fitness", "model": model_name, "method": fitness,
                    "target": target, "search_s": round(wall, 1),
                    "acc_before_finetune": round(acc, 4),
                    "calls": dict(s.fitness_calls)})
    for r in out:
        r["time_ratio_vs_real_loss"] = round(r["search_s"] / out[1]["search_s"], 3)
        print(r)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["selection", "cost", "accuracy"],
                   choices=["selection", "cost", "accuracy"])
    p.add_argument("--models", nargs="+", default=["resnet20", "vgg11"],
                   choices=["resnet20", "vgg11"])
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    p.add_argument("--seed", type=int, default=protocol.SEED)
    p.add_argument("--targets", nargs="+", type=float,
                   help="resnet20's MACs kept (default 0.5 0.33)")
    a = p.parse_args(argv)
    protocol.set_seed(a.seed)
    train, test = protocol.data(a.limit, seed=a.seed)
    calib = calibration(512 if a.limit is None else min(a.limit, 256), a.seed)
    write = a.limit is None

    def save(r):
        if write:
            results.append(r)

    targets_of = {"resnet20": tuple(a.targets or (0.5, 0.33)), "vgg11": (0.33,)}
    for model_name in a.models:
        for target in targets_of[model_name]:
            sel, plan, base, base_acc, sens = selection(
                model_name, target, calib, test, a.limit,
                target_params=CLAIM_PARAMS if model_name == "vgg11" else None,
                seed=a.seed)
            if "selection" in a.parts:
                for r in sel:
                    save(r)
            if "cost" in a.parts and model_name == "resnet20" and target == 0.5:
                for r in fitness_cost(model_name, target, calib, test, sens, base):
                    save(r)
            if "accuracy" in a.parts:
                search_s = sel[0]["search_s"]  # the GA's row
                start = time.perf_counter()
                slim = tfprune.rebuild(base, plan)
                before = protocol.accuracy(slim, test)
                acc = protocol.finetune(slim, base, train, test, distill=True)
                r = row(model_name, "ga+kd", target, base, base_acc, slim, acc,
                        {"acc_before_finetune": round(before, 4),
                         "epochs": f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}",
                         "search_s": search_s, "seed": a.seed,
                         "wall_s": round(search_s + time.perf_counter() - start, 1)})
                print(r)
                save(r)


if __name__ == "__main__":
    main()
