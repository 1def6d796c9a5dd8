"""When do channels die? Proximal against subgradient group lasso, quickly.

A small, CPU-cheap comparison (not the benchmark protocol): resnet20 on a
fixed subset of Fashion-MNIST, a few epochs of the protocol's optimiser
(SGD Nesterov 0.9, weight decay, one-cycle to 0.1), `Reconfigure(every=1)`
inside one `fit` call, once per group-lasso mode with the same initial
weights and data order. Per epoch it prints the dead channels at the end of
the epoch (every tied Conv/Dense weight below 1e-4), the lasso groups that
are exactly zero and the smallest and median group norms, the MACs trained
that epoch (ratio to dense) and the training FLOPs so far (ratio to dense); then
the test accuracy of the final slim model on a test subset.

Usage:

    python -m benchmarks.prunetrain_modes                       # 3000 images, 4 epochs, r 0.2
    python -m benchmarks.prunetrain_modes --train-images 2000 --epochs 3 --ratio 0.4
"""

import argparse
import json

import keras
import numpy as np

import tfprune
from benchmarks import protocol
from tfprune import datasets
from tfprune.methods import prunetrain


class _Dead(keras.callbacks.Callback):
    """Dead channels and lasso group norms at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.per_epoch, self.zero_groups, self.min_norm, self.median_norm = [], [], [], []

    def on_epoch_end(self, epoch, logs=None):
        graph = tfprune.analyze(self.model.network)
        self.per_epoch.append(int(prunetrain.dead_channels(graph, 1e-4).sum()))
        norms = np.concatenate(list(self.model.lasso.group_norms().values()))
        self.zero_groups.append(int((norms == 0).sum()))
        self.min_norm.append(round(float(norms.min()), 4))
        self.median_norm.append(round(float(np.median(norms)), 4))


def run(mode, ratio, epochs, train_images, batch_size, test_images):
    train = datasets.load("fashion_mnist", split="train", batch_size=batch_size,
                          augment=True, seed=protocol.SEED, limit=train_images)
    test = datasets.load("fashion_mnist", split="test", batch_size=512,
                         limit=test_images)
    steps = int(train.cardinality())
    protocol.set_seed()
    model = protocol.MODELS["resnet20"]()
    dense = tfprune.cost(model)
    pt = prunetrain.wrap(model, penalty_ratio=ratio, mode=mode)
    pt.compile(protocol.optimizer(protocol.BASELINE_PEAK_LR, epochs, steps),
               keras.losses.SparseCategoricalCrossentropy(from_logits=True),
               metrics=["accuracy"])
    dead = _Dead()
    history = pt.fit(train, epochs=epochs, verbose=0, shuffle=False,
                     callbacks=[dead, prunetrain.Reconfigure(every=1)])
    h = history.history
    seen = pt.run.samples
    dense_flops = prunetrain.FLOPS_PER_MAC * prunetrain.PASSES_PER_SAMPLE * dense.macs
    per_epoch_samples = seen / epochs
    return {
        "mode": mode, "penalty_ratio": ratio, "epochs": epochs,
        "train_images": train_images, "batch_size": batch_size,
        "dead_channels_per_epoch": dead.per_epoch,
        "zero_groups_per_epoch": dead.zero_groups,
        "min_group_norm_per_epoch": dead.min_norm,
        "median_group_norm_per_epoch": dead.median_norm,
        "penalty_weight": float(keras.ops.convert_to_numpy(pt.penalty_weight)),
        "macs_ratio_per_epoch": [round(m / dense.macs, 4) for m in h["macs"]],
        "train_flops_ratio_per_epoch": [
            round(f / (dense_flops * per_epoch_samples * (i + 1)), 4)
            for i, f in enumerate(h["train_flops"])],
        "final_macs_ratio": round(tfprune.cost(pt.network).macs / dense.macs, 4),
        "train_acc_last_epoch": round(h["accuracy"][-1], 4),
        "test_acc": round(protocol.accuracy(pt.network, test), 4),
        "test_images": test_images,
    }


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--ratio", type=float, default=0.2)
    p.add_argument("--modes", nargs="+", default=["proximal", "subgradient"])
    args = p.parse_args(argv)
    for mode in args.modes:
        row = run(mode, args.ratio, args.epochs, args.train_images, args.batch_size,
                  args.test_images)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
