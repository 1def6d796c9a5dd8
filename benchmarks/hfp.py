"""Holistic Filter Pruning under the benchmark protocol.

For each model and MACs target: gate the cached baseline, train the gates
with the budget loss, plan, rebuild, then fine-tune for the protocol's 3
epochs with and without distillation from the baseline. Also times the
gated model's training step against the plain model's, interleaved in the
same run.

Usage: python -m benchmarks.hfp [--models resnet20 vgg11] [--targets 0.5 0.33]
                                [--parts accuracy steptime]
"""

import argparse
import statistics
import time

import keras
import numpy as np

import tfprune
from benchmarks import protocol, results

GATE_EPOCHS = 2
GATE_PEAK_LR = 0.05


def step_time_ratio(model_name, rounds=7, steps=20):
    """Training step of the gated model against the plain one.

    Both start from the same trained baseline (the plain one is a clone), so
    they differ only by the gates and the budget loss; they are timed in
    turns, `steps` steps per turn, and the medians compared.

    Returns:
        (gated / plain median seconds per step, {"plain": [...], "gated": [...]}).
    """
    protocol.set_seed()
    train, _ = protocol.data()
    base, _, _ = protocol.baseline(model_name)
    plain = keras.models.clone_model(base)
    plain.set_weights(base.get_weights())
    gated = tfprune.methods.hfp.gate(base, tfprune.Budget(macs=0.5))
    x, y = (np.asarray(t) for t in next(iter(train)))
    times = {"plain": [], "gated": []}
    for model in (plain, gated):
        protocol.compile_for_training(model, 0.01, 1, 1000)
        for _ in range(3):  # trace and warm up
            model.train_on_batch(x, y)
    for _ in range(rounds):
        for name, model in (("plain", plain), ("gated", gated)):
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            times[name].append((time.perf_counter() - start) / steps)
    return statistics.median(times["gated"]) / statistics.median(times["plain"]), times


def run(model_name, target, weight, limit=None):
    protocol.set_seed()
    train, test = protocol.data(limit)
    base, base_acc, _ = protocol.baseline(model_name, train, test, limit=limit)
    base_cost = tfprune.cost(base)
    start = time.perf_counter()
    gated = tfprune.methods.hfp.gate(base, tfprune.Budget(macs=target), weight=weight)
    protocol.compile_for_training(gated, GATE_PEAK_LR, GATE_EPOCHS, int(train.cardinality()))
    gated.fit(train, epochs=GATE_EPOCHS, verbose=2,
              callbacks=[tfprune.methods.hfp.HolisticBudget()])
    plan = tfprune.methods.hfp.plan(gated)
    gate_wall = time.perf_counter() - start
    gated_acc = protocol.accuracy(gated, test)  # what "before FT" must equal
    rows = []
    for distill in (False, True):
        t0 = time.perf_counter()
        slim = tfprune.rebuild(gated, plan)
        before_ft = protocol.accuracy(slim, test)
        acc = protocol.finetune(slim, base, train, test, distill)
        c = tfprune.cost(slim)
        row = {"kind": "accuracy", "model": model_name,
               "method": "hfp+kd" if distill else "hfp", "target": target,
               "scope": None, "round_to": None, "params": c.params, "macs": c.macs,
               "params_ratio": round(c.params / base_cost.params, 4),
               "macs_ratio": round(c.macs / base_cost.macs, 4),
               "budget_error": round(abs(c.macs / (target * base_cost.macs) - 1), 4),
               "gated_acc": round(gated_acc, 4),
               "acc_before_finetune": round(before_ft, 4), "test_acc": round(acc, 4),
               "baseline_acc": round(base_acc, 4),
               "epochs": f"{protocol.BASELINE_EPOCHS}+{GATE_EPOCHS}+{protocol.FINETUNE_EPOCHS}",
               "wall_s": round(gate_wall + time.perf_counter() - t0, 1),
               "budget_weight": weight}
        print(row)
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet20", "vgg11"])
    p.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33])
    p.add_argument("--weight", type=float, default=5.0, help="budget loss weight")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    p.add_argument("--parts", nargs="+", default=["accuracy", "steptime"],
                   choices=["accuracy", "steptime"])
    a = p.parse_args(argv)
    for model_name in a.models:
        if "accuracy" in a.parts:
            for target in a.targets:
                for row in run(model_name, target, a.weight, a.limit):
                    if a.limit is None:
                        results.append(row)
        if "steptime" in a.parts:
            ratio, times = step_time_ratio(model_name)
            row = {"kind": "steptime", "model": model_name, "method": "hfp gated vs plain",
                   "ratio": round(ratio, 3),
                   "plain_ms": round(1000 * statistics.median(times["plain"]), 1),
                   "gated_ms": round(1000 * statistics.median(times["gated"]), 1)}
            print(row)
            if a.limit is None:
                results.append(row)


if __name__ == "__main__":
    main()
