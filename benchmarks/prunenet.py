"""PruneNet under the benchmark protocol.

Parts:
- accuracy: the cached resnet20 baseline pruned at 50%, 33% and 20% of its
  MACs by `prunenet` (global loss-based importance from 512 training
  images) and by `l1` (global, and uniform), accuracy before fine-tuning,
  then after the protocol's 3 epochs; `prunenet+kd` also distils from the
  baseline while fine-tuning.
- claim: the PruneNet paper's "a pruned deeper network beats the shallower
  one": resnet56 (8 epochs) pruned by `prunenet` to resnet20's MACs and
  fine-tuned 3 epochs, against resnet20 trained from scratch for the same
  11 epochs. One row each.
- before: only the accuracy before fine-tuning, on an already trained model
  given with --baseline (a quick check; no training at all).

Usage: python -m benchmarks.prunenet [--parts accuracy claim]
                                     [--targets 0.5 0.33 0.2]
       python -m benchmarks.prunenet --parts before --baseline model.keras
       python -m benchmarks.prunenet --limit 256   # smoke test, writes no row
"""

import argparse
import time

import keras
import numpy as np

import tfprune
from benchmarks import protocol, results
from benchmarks.hfp import finetune
from tfprune import zoo
from tfprune.datasets import load

protocol.MODELS.setdefault(
    "resnet56", lambda: zoo.resnet56(input_shape=(28, 28, 1), classes=10))
CALIBRATION = 512


def calibration(n=CALIBRATION, limit=None):
    x, y = load("fashion_mnist", split="train", as_numpy=True, limit=limit)
    idx = np.random.default_rng(protocol.SEED).choice(len(x), min(n, len(x)), replace=False)
    return x[idx], y[idx]


def plans(base, calib, target):
    """method -> (plan, seconds to make it)."""
    out = {}
    for method, make in (
            ("prunenet", lambda: tfprune.prunenet.prune(base, calib, target_macs=target,
                                                        verbose=0)),
            ("l1", lambda: tfprune.prune(base, "l1", target_macs=target, scope="global")),
            ("l1 uniform", lambda: tfprune.prune(base, "l1", target_macs=target,
                                                 scope="uniform"))):
        start = time.perf_counter()
        plan = make()
        out[method] = (plan, time.perf_counter() - start)
    return out


def row(model_name, method, target, base, base_acc, slim, before, acc, epochs, wall,
        scope=None):
    c, b = tfprune.cost(slim), tfprune.cost(base)
    return {"kind": "accuracy", "model": model_name, "method": method, "target": target,
            "scope": scope, "round_to": None, "framework": "tfprune",
            "params": c.params, "macs": c.macs,
            "params_ratio": round(c.params / b.params, 4),
            "macs_ratio": round(c.macs / b.macs, 4),
            "acc_before_finetune": None if before is None else round(before, 4),
            "test_acc": None if acc is None else round(acc, 4),
            "baseline_acc": round(base_acc, 4), "epochs": epochs,
            "seed": protocol.SEED, "wall_s": round(wall, 1), "machine": protocol.machine()}


def accuracy_part(targets, limit):
    protocol.set_seed()
    train, test = protocol.data(limit)
    base, base_acc, _ = protocol.baseline("resnet20", train, test, limit=limit)
    calib = calibration(limit=limit)
    rows = []
    epochs = f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}"
    for target in targets:
        for method, (plan, plan_s) in plans(base, calib, target).items():
            variants = [(method, False)] + ([("prunenet+kd", True)]
                                            if method == "prunenet" else [])
            for name, distill in variants:
                protocol.set_seed()
                start = time.perf_counter()
                slim = tfprune.rebuild(base, plan)
                before = protocol.accuracy(slim, test)
                acc = finetune(slim, base, train, test, distill)
                scope = "uniform" if method == "l1 uniform" else "global"
                rows.append(row("resnet20", name.split(" ")[0], target, base, base_acc, slim,
                                before, acc, epochs,
                                plan_s + time.perf_counter() - start, scope))
                print(rows[-1])
    return rows


def claim_part(limit):
    """resnet56 pruned to resnet20's MACs vs resnet20 from scratch, equal epochs."""
    protocol.set_seed()
    train, test = protocol.data(limit)
    deep, deep_acc, deep_wall = protocol.baseline("resnet56", train, test, limit=limit)
    small = protocol.MODELS["resnet20"]()
    target = tfprune.cost(small).macs  # absolute MACs of resnet20
    start = time.perf_counter()
    plan = tfprune.prunenet.prune(deep, calibration(limit=limit), target_macs=target,
                                  verbose=0)
    slim = tfprune.rebuild(deep, plan)
    before = protocol.accuracy(slim, test)
    acc = finetune(slim, deep, train, test, distill=False)
    total = protocol.BASELINE_EPOCHS + protocol.FINETUNE_EPOCHS
    rows = [row("resnet56", "prunenet", target, deep, deep_acc, slim, before, acc,
                f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}",
                deep_wall + time.perf_counter() - start)]
    rows[-1]["claim"] = "resnet56 -> resnet20 MACs"
    protocol.set_seed()
    scratch, scratch_acc, scratch_wall = protocol.baseline("resnet20", train, test,
                                                           epochs=total, limit=limit)
    rows.append(row("resnet20", "from scratch", target, scratch, scratch_acc, scratch,
                    None, scratch_acc, str(total), scratch_wall))
    rows[-1]["claim"] = "resnet56 -> resnet20 MACs"
    for r in rows:
        print(r)
    return rows


def before_part(path, targets, limit):
    """Accuracy before fine-tuning of a trained model (no training)."""
    base = keras.saving.load_model(path, compile=False)
    _, test = protocol.data(limit)
    base_acc = protocol.accuracy(base, test)
    calib = calibration(limit=limit)
    rows = []
    for target in targets:
        for method, (plan, plan_s) in plans(base, calib, target).items():
            slim = tfprune.rebuild(base, plan)
            r = row(path, method.split(" ")[0], target, base, base_acc, slim,
                    protocol.accuracy(slim, test), None, "as given", plan_s,
                    "uniform" if method == "l1 uniform" else "global")
            print({k: r[k] for k in ("method", "scope", "target", "macs_ratio",
                                     "acc_before_finetune", "baseline_acc", "wall_s")})
            rows.append(r)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["accuracy", "claim"],
                   choices=["accuracy", "claim", "before"])
    p.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33, 0.2])
    p.add_argument("--baseline", help="--parts before: a trained .keras model")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    a = p.parse_args(argv)
    rows = []
    if "before" in a.parts:
        if not a.baseline:
            p.error("--parts before needs --baseline model.keras")
        before_part(a.baseline, a.targets, a.limit)  # a check, never a table row
    if "accuracy" in a.parts:
        rows += accuracy_part(a.targets, a.limit)
    if "claim" in a.parts:
        rows += claim_part(a.limit)
    if a.limit is None:
        for r in rows:
            results.append(r, replace_keys=("kind", "model", "method", "target", "scope",
                                            "framework"))


if __name__ == "__main__":
    main()
