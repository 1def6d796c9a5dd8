"""PruneNet, end to end: rank every channel of the network by one global,
loss-based importance measured on calibration images, keep the least
pruning within a MACs budget, rebuild, fine-tune, export.

    .venv/bin/python examples/prune_prunenet.py            # under a minute on 2 cores
    .venv/bin/python examples/prune_prunenet.py --macs 0.33 --iterative-steps 3
    .venv/bin/python examples/prune_prunenet.py --quick    # seconds: a smoke test

Starts from the trained ResNet-20 shipped in examples/baseline/.
`tfprune.get_method("prunenet").plan(model, budget, (x, y))` scores channels
on 512 training images (`--iterative-steps N` cuts in N steps, re-scoring
after each), and `tfprune.rebuild` gives the slim model, fine-tuned for one
epoch on 10,000 training images, distilling from the original. Both models
are exported to TFLite under runs/examples/prunenet/ (`--out`) with the slim
.keras file, and a before/after table is printed.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import keras  # noqa: E402

import tfprune  # noqa: E402
from tflite_export import convert  # noqa: E402

BASELINE = os.path.join(ROOT, "examples", "baseline", "resnet20_fashion_mnist.keras")


def accuracy(model, test):
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model.evaluate(test, verbose=0, return_dict=True)["accuracy"]


def report(original, slim, accuracies, out_dir, x_check):
    """Exports both models to TFLite; prints params, MACs, sizes, `accuracies`."""
    sizes = [convert(m, os.path.join(out_dir, f"{name}.tflite"),
                     verification_data=x_check).size_bytes
             for name, m in (("original", original), ("pruned", slim))]
    a, b = tfprune.cost(original), tfprune.cost(slim)
    print(f"\n{'':<22}{'original':>14}{'pruned':>14}{'change':>10}")
    for name, x, y in (("params", a.params, b.params), ("MACs", a.macs, b.macs),
                       ("TFLite size (bytes)", *sizes)):
        print(f"{name:<22}{x:>14,}{y:>14,}{y / x:>10.3f}")
    for name, x, y in accuracies:
        change = "" if x is None else f"{y - x:>+10.4f}"
        print(f"{name:<22}{'' if x is None else f'{x:.4f}':>14}{y:>14.4f}{change}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--macs", type=float, default=0.5, help="MACs to keep (default 0.5)")
    p.add_argument("--iterative-steps", type=int, default=1,
                   help="cut in this many steps, re-scoring after each (default 1)")
    p.add_argument("--finetune-epochs", type=int, default=1, help="0: no fine-tuning")
    p.add_argument("--limit", type=int, help="images of each split to use (default: "
                   "10,000 for fine-tuning, all 10,000 test images)")
    p.add_argument("--quick", action="store_true", help="a smoke test: --limit 256")
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "examples", "prunenet"),
                   help="where to write (default runs/examples/prunenet)")
    args = p.parse_args(argv)
    limit = args.limit or (256 if args.quick else None)
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    if not os.path.exists(BASELINE):
        sys.exit(f"{BASELINE} is missing: run examples/train_baseline.py (a few minutes)")
    model = keras.saving.load_model(BASELINE, compile=False)
    train = tfprune.datasets.load("fashion_mnist", split="train", augment=True,
                                  limit=limit or 10_000)
    test = tfprune.datasets.load("fashion_mnist", split="test", batch_size=512, limit=limit)
    x_cal, y_cal = tfprune.datasets.load("fashion_mnist", split="train", as_numpy=True,
                                         limit=min(limit or 2048, 2048))

    budget = tfprune.Budget(macs=args.macs)
    print("Scoring the channels on 512 training images...")
    plan = tfprune.get_method("prunenet").plan(model, budget, (x_cal[:512], y_cal[:512]),
                                               iterative_steps=args.iterative_steps)
    slim = tfprune.rebuild(model, plan)
    rebuilt_acc = accuracy(slim, test)
    if args.finetune_epochs:
        print(f"Fine-tuning for {args.finetune_epochs} epoch(s), distilling from the original...")
        tfprune.finetune(slim, train, teacher=model, epochs=args.finetune_epochs, verbose=2)
    # Pruning and short training leave BatchNorm's moving averages (momentum
    # 0.99) behind the weights: measure them again on training images.
    tfprune.recalibrate_bn(slim, x_cal)
    accuracies = [("test accuracy", accuracy(model, test), accuracy(slim, test)),
                  ("  as rebuilt", None, rebuilt_acc)]
    os.makedirs(args.out, exist_ok=True)
    slim.save(os.path.join(args.out, "pruned.keras"))
    report(model, slim, accuracies, args.out, x_cal[:128])
    print(f"\nPruneNet to {args.macs:.0%} of the MACs; wrote {args.out}/ "
          f"in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
