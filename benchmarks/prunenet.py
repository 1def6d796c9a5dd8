"""PruneNet under the benchmark protocol.

Parts:
- accuracy: the cached resnet20 baseline pruned at 50%, 33% and 20% of its
  MACs by `prunenet` (global loss-based importance from 512 training
  images) and by `l1` (global, and uniform), accuracy before fine-tuning,
  then after the protocol's 3 epochs; `prunenet+kd` also distils from the
  baseline while fine-tuning; `+refit` rows re-fit the consumers of the
  pruned channels by least squares first (`tfprune.methods.search.reconstruct`).
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
from tfprune import zoo
from tfprune.datasets import load

protocol.MODELS.setdefault(
    "resnet56", lambda: zoo.resnet56(input_shape=(28, 28, 1), classes=10))
CALIBRATION = 512
# Cut in 4 re-scored steps: on a 2-epoch resnet20 (benchmarks/cache/
# resnet20_e2.keras), before fine-tuning and after BN re-estimation, 4 steps
# kept 0.758 / 0.420 / 0.261 accuracy at 50 / 33 / 20% MACs, one-shot 0.504 /
# 0.226 / 0.173. Scoring costs 4 x 8 forward/backward passes of 64 images.
ITERATIVE_STEPS = 4
BN_SAMPLES = 2048


def calibration(n=CALIBRATION, limit=None):
    x, y = load("fashion_mnist", split="train", as_numpy=True, limit=limit)
    idx = np.random.default_rng(protocol.SEED).choice(len(x), min(n, len(x)), replace=False)
    return x[idx], y[idx]


def plans(base, calib, target):
    """method -> (plan, seconds to make it)."""
    out = {}
    budget = tfprune.Budget(macs=target)
    for method, make in (
            ("prunenet", lambda: tfprune.methods.prunenet.plan(
                base, budget, calib, iterative_steps=ITERATIVE_STEPS, verbose=0)),
            ("l1", lambda: tfprune.prune(base, budget, criterion="l1", scope="global")),
            ("l1 uniform", lambda: tfprune.prune(base, budget, criterion="l1",
                                                 scope="uniform"))):
        start = time.perf_counter()
        plan = make()
        out[method] = (plan, time.perf_counter() - start)
    return out


def before_finetuning(slim, test, calib_x):
    """(accuracy as rebuilt, accuracy after `recalibrate_bn`) of a slim model.

    The recalibrated copy is only measured: fine-tuning runs BN in training
    mode (batch statistics), so stale moving statistics do not change it.
    """
    raw = protocol.accuracy(slim, test)
    copy = keras.models.clone_model(slim)
    copy.set_weights(slim.get_weights())
    tfprune.recalibrate_bn(copy, calib_x, num_samples=BN_SAMPLES)
    return raw, protocol.accuracy(copy, test)


def row(model_name, method, target, base, base_acc, slim, before, acc, epochs, wall,
        scope=None, before_bn=None):
    c, b = tfprune.cost(slim), tfprune.cost(base)
    return {"kind": "accuracy", "model": model_name, "method": method, "target": target,
            "scope": scope, "round_to": None, "framework": "tfprune",
            "params": c.params, "macs": c.macs,
            "params_ratio": round(c.params / b.params, 4),
            "macs_ratio": round(c.macs / b.macs, 4),
            "acc_before_finetune": None if before is None else round(before, 4),
            "acc_before_finetune_bn": None if before_bn is None else round(before_bn, 4),
            "test_acc": None if acc is None else round(acc, 4),
            "baseline_acc": round(base_acc, 4), "epochs": epochs,
            "seed": protocol.SEED, "wall_s": round(wall, 1)}


# plan -> the rows made from it: (method, re-fit the consumers, distil)
VARIANTS = {
    "prunenet": (("prunenet", False, False), ("prunenet+kd", False, True),
                 ("prunenet+refit+kd", True, True)),
    "l1": (("l1", False, False), ("l1+refit+kd", True, True)),
    "l1 uniform": (("l1 uniform", False, False),),
}
METHODS = [name for variants in VARIANTS.values() for name, _, _ in variants]


def accuracy_part(targets, limit, methods=None):
    protocol.set_seed()
    train, test = protocol.data(limit)
    base, base_acc, _ = protocol.baseline("resnet20", train, test, limit=limit)
    calib = calibration(limit=limit)
    bn_x = calibration(BN_SAMPLES, limit=limit)[0]
    rows = []
    epochs = f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}"
    for target in targets:
        for method, (plan, plan_s) in plans(base, calib, target).items():
            for name, refit, distill in VARIANTS[method]:
                if methods is not None and name not in methods:
                    continue
                protocol.set_seed()
                start = time.perf_counter()
                chosen = tfprune.methods.search.reconstruct(base, plan, calib) if refit else plan
                slim = tfprune.rebuild(base, chosen)
                before, before_bn = before_finetuning(slim, test, bn_x)
                acc = protocol.finetune(slim, base, train, test, distill)
                scope = "uniform" if method == "l1 uniform" else "global"
                rows.append(row("resnet20", name.split(" ")[0], target, base, base_acc, slim,
                                before, acc, epochs,
                                plan_s + time.perf_counter() - start, scope, before_bn))
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
    plan = tfprune.methods.prunenet.plan(deep, tfprune.Budget(macs=target),
                                         calibration(limit=limit),
                                         iterative_steps=ITERATIVE_STEPS, verbose=0)
    slim = tfprune.rebuild(deep, plan)
    before, before_bn = before_finetuning(slim, test,
                                          calibration(BN_SAMPLES, limit=limit)[0])
    acc = protocol.finetune(slim, deep, train, test, distill=False)
    total = protocol.BASELINE_EPOCHS + protocol.FINETUNE_EPOCHS
    rows = [row("resnet56", "prunenet", target, deep, deep_acc, slim, before, acc,
                f"{protocol.BASELINE_EPOCHS}+{protocol.FINETUNE_EPOCHS}",
                deep_wall + time.perf_counter() - start, "global", before_bn)]
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
    bn_x = calibration(BN_SAMPLES, limit=limit)[0]
    rows = []
    for target in targets:
        for method, (plan, plan_s) in plans(base, calib, target).items():
            slim = tfprune.rebuild(base, plan)
            before, before_bn = before_finetuning(slim, test, bn_x)
            r = row(path, method.split(" ")[0], target, base, base_acc, slim,
                    before, None, "as given", plan_s,
                    "uniform" if method == "l1 uniform" else "global", before_bn)
            print({k: r[k] for k in ("method", "scope", "target", "macs_ratio",
                                     "acc_before_finetune", "acc_before_finetune_bn",
                                     "baseline_acc", "wall_s")})
            rows.append(r)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["accuracy", "claim"],
                   choices=["accuracy", "claim", "before"])
    p.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33, 0.2])
    p.add_argument("--baseline", help="--parts before: a trained .keras model")
    p.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                   help="--parts accuracy: only these (default: all)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    a = p.parse_args(argv)
    rows = []
    if "before" in a.parts:
        if not a.baseline:
            p.error("--parts before needs --baseline model.keras")
        before_part(a.baseline, a.targets, a.limit)  # a check, never a table row
    if "accuracy" in a.parts:
        rows += accuracy_part(a.targets, a.limit, a.methods)
    if "claim" in a.parts:
        rows += claim_part(a.limit)
    if a.limit is None:
        for r in rows:
            results.append(r)


if __name__ == "__main__":
    main()
