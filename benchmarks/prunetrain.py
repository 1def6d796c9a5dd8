"""PruneTrain against dense training: same model, epochs, schedule and seed.

For each model, trains the dense model under the protocol (SGD Nesterov,
weight decay 5e-4, one-cycle peaking at 0.1, batch 128), then PruneTrain at
each penalty ratio with the same optimiser, schedule and initial weights,
back to back in the same process, and reports per row: final test accuracy,
final params and MACs, training FLOPs (6 × MACs × samples per epoch, at the
width trained that epoch; `tfprune.methods.prunetrain`'s convention) and wall-clock
training time, each as a ratio to the dense run of the same invocation.
Times include everything PruneTrain does (reconfigurations, re-tracing the
training step). Wall seconds compare only on an otherwise idle machine; the
process's CPU seconds (all threads) are reported beside them, because they
are much less disturbed by other jobs sharing the cores.

Group lasso needs many steps before channels fall under the threshold, so
a run has to be long (the paper trains CIFAR for 182 epochs). On 2 cores the
full protocol at 30 epochs would take about 5 hours for the four runs; the
reduced protocol trains on a fixed subset of the training images with a
smaller batch, which keeps the number of steps per epoch of the full
protocol (15,000 images at batch 32: 469 steps) at a quarter of the cost.
Test accuracy is always on the full test set. Rows record the subset and
the batch, and the group-lasso step (`--lasso`: proximal, the default, or
subgradient; rows from before the proximal step existed are subgradient).

Usage:

    python -m benchmarks.prunetrain                          # resnet20 + vgg11, r = 0.1 0.2 0.4
    python -m benchmarks.prunetrain --models resnet20 --ratios 0.4 0.2 0.1 \
        --epochs 30 --reconfigure-every 5 --train-images 15000 --batch-size 32
    python -m benchmarks.prunetrain --models resnet20 --ratios 0.4 --lasso proximal subgradient
    python -m benchmarks.prunetrain --limit 512 --epochs 2   # smoke test: prints, writes no row

Rows (kind "prunetrain") are appended to benchmarks/results.jsonl.
"""

import argparse
import itertools
import json
import time

import tfprune
from benchmarks import protocol, results
from tfprune import datasets
from tfprune.methods import prunetrain

DEFAULT_RATIOS = (0.1, 0.2, 0.4)
DEFAULT_RECONFIGURE_EVERY = 2


class _Clock:
    """Wall and process CPU seconds since it was made."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run(model_name, ratios=DEFAULT_RATIOS, epochs=protocol.BASELINE_EPOCHS,
        reconfigure_every=DEFAULT_RECONFIGURE_EVERY, threshold=1e-4,
        dynamic_batch=False, limit=None, train_images=None,
        batch_size=protocol.BATCH, verbose=2, on_row=print, lassos=("proximal",)):
    """Dense, then PruneTrain at each ratio; returns the rows.

    `on_row` gets each row as soon as it is measured.
    """
    train_ds, test_ds = protocol.data(limit, train_images, batch_size)
    steps = int(train_ds.cardinality())
    samples = (limit or train_images
               or datasets.info("fashion_mnist")["num_examples"]["train"])
    common = {"kind": "prunetrain", "model": model_name, "epochs": epochs,
              "train_images": samples, "batch_size": batch_size}

    protocol.set_seed()
    dense = protocol.MODELS[model_name]()
    clock = _Clock()
    protocol.train(dense, train_ds, epochs, protocol.BASELINE_PEAK_LR, verbose=verbose)
    dense_wall, dense_cpu = clock.read()
    dense_acc = protocol.accuracy(dense, test_ds)
    base = tfprune.cost(dense)
    dense_flops = (prunetrain.FLOPS_PER_MAC * prunetrain.PASSES_PER_SAMPLE
                   * base.macs * samples * epochs)
    rows = [{**common, "method": "dense", "penalty_ratio": None,
             "reconfigure_every": None, "dynamic_batch": None, "params": base.params,
             "macs": base.macs, "params_ratio": 1.0, "macs_ratio": 1.0,
             "test_acc": round(dense_acc, 4), "dense_acc": round(dense_acc, 4),
             "acc_drop": 0.0, "train_flops": float(dense_flops),
             "train_flops_ratio": 1.0, "wall_s": round(dense_wall, 1), "wall_ratio": 1.0,
             "cpu_s": round(dense_cpu, 1), "cpu_ratio": 1.0}]
    on_row(rows[-1])

    for lasso, ratio in itertools.product(lassos, ratios):
        protocol.set_seed()  # the dense run's initial weights
        model = protocol.MODELS[model_name]()
        clock = _Clock()
        result = prunetrain.fit(
            model, train_ds, epochs=epochs, optimizer=protocol.optimizer(protocol.BASELINE_PEAK_LR, epochs, steps),
            penalty_ratio=ratio, reconfigure_every=reconfigure_every,
            threshold=threshold, dynamic_batch=dynamic_batch, verbose=verbose, mode=lasso)
        wall, cpu = clock.read()
        acc = protocol.accuracy(result.model, test_ds)
        c = tfprune.cost(result.model)
        rows.append({
            **common, "method": "prunetrain", "lasso": lasso, "penalty_ratio": ratio,
            "reconfigure_every": reconfigure_every, "dynamic_batch": bool(dynamic_batch),
            "params": c.params, "macs": c.macs,
            "params_ratio": round(c.params / base.params, 4),
            "macs_ratio": round(c.macs / base.macs, 4),
            "test_acc": round(acc, 4), "dense_acc": round(dense_acc, 4),
            "acc_drop": round(dense_acc - acc, 4),
            "train_flops": float(result.train_flops),
            "train_flops_ratio": round(result.train_flops / dense_flops, 4),
            "wall_s": round(wall, 1), "wall_ratio": round(wall / dense_wall, 4),
            "cpu_s": round(cpu, 1), "cpu_ratio": round(cpu / dense_cpu, 4),
            "penalty_weight": result.penalty_weight,
            "macs_per_epoch": [int(m) for m in result.history["macs"]],
            "reconfigurations": json.loads(json.dumps(result.reconfigurations,
                                                      default=int))})
        on_row(rows[-1])
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet20", "vgg11"],
                   choices=sorted(protocol.MODELS))
    p.add_argument("--ratios", nargs="+", type=float, default=list(DEFAULT_RATIOS),
                   help="penalty ratios r (default: 0.1 0.2 0.4)")
    p.add_argument("--epochs", type=int, default=protocol.BASELINE_EPOCHS,
                   help=f"epochs of every run (default {protocol.BASELINE_EPOCHS})")
    p.add_argument("--reconfigure-every", type=int, default=DEFAULT_RECONFIGURE_EVERY,
                   help=f"epochs between reconfigurations (default "
                   f"{DEFAULT_RECONFIGURE_EVERY})")
    p.add_argument("--threshold", type=float, default=1e-4)
    p.add_argument("--dynamic-batch", action="store_true",
                   help="grow the batch as the model shrinks")
    p.add_argument("--train-images", type=int, default=None,
                   help="train on a fixed subset of N training images (reduced "
                   "protocol; recorded in the rows)")
    p.add_argument("--batch-size", type=int, default=protocol.BATCH,
                   help=f"training batch (default {protocol.BATCH})")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per split (smoke test; writes no row)")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2])
    p.add_argument("--lasso", nargs="+", default=["proximal"],
                   choices=["proximal", "subgradient"],
                   help="group-lasso step(s) to run, each at every ratio (default proximal)")
    a = p.parse_args(argv)

    def on_row(row):
        print(row, flush=True)
        if a.limit is None:  # a killed run keeps the rows already measured
            results.append(row)

    rows = []
    for name in a.models:
        rows += run(name, a.ratios, a.epochs, a.reconfigure_every, a.threshold,
                    a.dynamic_batch, a.limit, a.train_images, a.batch_size,
                    a.verbose, on_row, a.lasso)
    print(f"{'model':<10} {'method':<11} {'lasso':<11} {'r':>4} {'acc':>7} {'MACs':>6} "
          f"{'FLOPs':>6} {'wall':>6} {'CPU':>6}  (ratios to dense)")
    for r in rows:
        ratio = "" if r["penalty_ratio"] is None else f"{r['penalty_ratio']:.2f}"
        print(f"{r['model']:<10} {r['method']:<11} {r.get('lasso') or '':<11} {ratio:>4} {r['test_acc']:>7.4f} "
              f"{r['macs_ratio']:>6.3f} {r['train_flops_ratio']:>6.3f} "
              f"{r['wall_ratio']:>6.3f} {r['cpu_ratio']:>6.3f}")

if __name__ == "__main__":
    main()
