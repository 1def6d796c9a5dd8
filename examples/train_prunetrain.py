"""PruneTrain, end to end: train a fresh ResNet-20 from scratch with a group
lasso that drives whole channels to zero, and remove them while it trains,
so the later epochs train (and cost) a smaller network; then export.

    .venv/bin/python examples/train_prunetrain.py            # about 1.5 minutes on 2 cores
    .venv/bin/python examples/train_prunetrain.py --epochs 30 --penalty-ratio 0.2
    .venv/bin/python examples/train_prunetrain.py --quick    # seconds: a smoke test

PruneTrain takes no budget: the penalty's share of the loss
(`--penalty-ratio`) decides how much goes.
`tfprune.get_method("prunetrain").attach(model, None)` returns a
TrainingSession whose model wraps a copy of the network; its callback
(Reconfigure) removes the dead channels before every epoch (here) and when
training ends, and `session.rebuild()` is the trained slim network. The
paper's penalty ratio, 0.2, needs tens of epochs before channels die; this
short run (4 epochs of 10,000 images, batch 32) uses 0.8. There is no
teacher to distil from, so no fine-tuning. Both the dense network
(untrained: no test accuracy) and the slim one are exported to TFLite under
runs/examples/prunetrain/ (`--out`) with the slim .keras file, and a
before/after table is printed.
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
    p.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    p.add_argument("--penalty-ratio", type=float, default=0.8,
                   help="the penalty's share of the first step's loss (default 0.8)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch (default 32: "
                   "more steps, so more of the penalty's proximal steps, per image)")
    p.add_argument("--limit", type=int, help="images of each split to use (default: "
                   "10,000 for training, all 10,000 test images)")
    p.add_argument("--quick", action="store_true", help="a smoke test: --limit 256")
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "examples", "prunetrain"),
                   help="where to write (default runs/examples/prunetrain)")
    args = p.parse_args(argv)
    limit = args.limit or (256 if args.quick else None)
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = tfprune.zoo.resnet20(input_shape=(28, 28, 1), classes=10)
    train = tfprune.datasets.load("fashion_mnist", split="train", augment=True,
                                  batch_size=args.batch_size, limit=limit or 10_000)
    test = tfprune.datasets.load("fashion_mnist", split="test", batch_size=512, limit=limit)
    x_cal, _ = tfprune.datasets.load("fashion_mnist", split="train", as_numpy=True,
                                     limit=min(limit or 2048, 2048))

    session = tfprune.get_method("prunetrain").attach(
        model, None, penalty_ratio=args.penalty_ratio, reconfigure_every=1)
    steps = args.epochs * int(train.cardinality())
    warmup = max(1, steps // 10)  # then a cosine decay from the peak, 0.1
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), warmup_target=0.1, warmup_steps=warmup)
    session.model.compile(
        keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    print(f"Training from scratch for {args.epochs} epoch(s)...")
    session.model.fit(train, epochs=args.epochs, callbacks=session.callbacks, verbose=2,
                      shuffle=False)  # the dataset shuffles itself
    slim = session.rebuild()
    rebuilt_acc = accuracy(slim, test)
    # The penalty moves the weights faster than BatchNorm's moving statistics
    # follow (momentum 0.99): set them from training images.
    tfprune.recalibrate_bn(slim, x_cal)
    accuracies = [("test accuracy", None, accuracy(slim, test)),
                  ("  before BN recal.", None, rebuilt_acc)]
    os.makedirs(args.out, exist_ok=True)
    slim.save(os.path.join(args.out, "pruned.keras"))
    report(model, slim, accuracies, args.out, x_cal[:128])
    print(f"\nPruneTrain, {args.epochs} epoch(s); wrote {args.out}/ "
          f"in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
