"""One benchmark row: prune a cached baseline, fine-tune, test.

Usage:

    python -m benchmarks.run --model resnet20 --method baseline
    python -m benchmarks.run --model resnet20 --method l1 --target-macs 0.5
    python -m benchmarks.run --model resnet20 --method l1+kd --target-macs 0.33 \
        --scope uniform
    python -m benchmarks.run --model resnet20 --method l1+kd --target-macs 0.2 --seed 1

`--seed` varies the pruning and fine-tuning (data order, augmentation); every
seed starts from the one cached baseline, trained with the protocol's seed.

Appends the row to benchmarks/results.jsonl (with its commit, date, machine
and library versions) and regenerates BENCHMARKS.md and its figures.
"""

import argparse
import time

import tfprune
from benchmarks import protocol, results


def run(model_name, method, target_macs=None, scope="global", round_to=1,
        limit=None, finetune_epochs=protocol.FINETUNE_EPOCHS, seed=protocol.SEED):
    protocol.set_seed(seed)
    train_ds, test_ds = protocol.data(limit)
    base, base_acc, base_wall = protocol.baseline(model_name, train_ds, test_ds, limit=limit)
    if seed != protocol.SEED:  # the baseline above trains (if not cached) on seed 0's
        train_ds = protocol.data(limit, seed=seed)[0]
    base_cost = tfprune.cost(base)
    row = {"kind": "accuracy", "model": model_name, "method": method,
           "baseline_acc": round(base_acc, 4), "scope": None, "round_to": None, "target": None,
           "seed": seed}
    if method == "baseline":
        row.update(params=base_cost.params, macs=base_cost.macs, params_ratio=1.0,
                   macs_ratio=1.0, test_acc=round(base_acc, 4),
                   epochs=protocol.BASELINE_EPOCHS, wall_s=round(base_wall, 1))
    else:
        start = time.perf_counter()
        criterion, distill = method.removesuffix("+kd"), method.endswith("+kd")
        if criterion == "unpruned":  # the control: only the fine-tuning epochs
            plan, target_macs, scope, round_to = tfprune.analyze(base).plan(), 1.0, None, None
        else:
            budget = tfprune.Budget(macs=target_macs, round_to=round_to)
            plan = tfprune.get_method(criterion).plan(base, budget, scope=scope)
        slim = tfprune.rebuild(base, plan)
        pruned_acc = protocol.accuracy(slim, test_ds)
        protocol.finetune(slim, base, train_ds, test_ds, distill, finetune_epochs)
        wall = time.perf_counter() - start
        c = tfprune.cost(slim)
        row.update(target=target_macs, scope=scope, round_to=round_to,
                   params=c.params, macs=c.macs,
                   params_ratio=round(c.params / base_cost.params, 4),
                   macs_ratio=round(c.macs / base_cost.macs, 4),
                   acc_before_finetune=round(pruned_acc, 4),
                   test_acc=round(protocol.accuracy(slim, test_ds), 4),
                   epochs=f"{protocol.BASELINE_EPOCHS}+{finetune_epochs}",
                   wall_s=round(wall, 1))
    print(row)
    if limit is None:  # rows come from the full protocol only
        results.append(row)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(protocol.MODELS), required=True)
    p.add_argument("--method", default="l1", help="baseline, l1, l2, bn, or unpruned (a control: "
                   "the baseline fine-tuned as the pruned models are); a +kd suffix "
                   "(l1+kd) distils from the baseline while fine-tuning")
    p.add_argument("--target-macs", type=float, default=None)
    p.add_argument("--scope", default="global", choices=["global", "uniform"])
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    p.add_argument("--finetune-epochs", type=int, default=protocol.FINETUNE_EPOCHS)
    p.add_argument("--seed", type=int, default=protocol.SEED,
                   help="seed of the pruning and fine-tuning (the baseline is always "
                   "the protocol's)")
    a = p.parse_args(argv)
    if a.method not in ("baseline", "unpruned") and a.target_macs is None:
        p.error("--target-macs is required for a pruning method")
    run(a.model, a.method, a.target_macs, a.scope, a.round_to, a.limit,
        a.finetune_epochs, a.seed)


if __name__ == "__main__":
    main()
