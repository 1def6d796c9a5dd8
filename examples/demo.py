"""tfprune in one run: start from a trained ResNet-20, prune it to half its
MACs, re-fit the layers that read pruned channels, fine-tune briefly
(distilling from the original), export both to TFLite, time them, and show what
changed.

    make demo          # or: .venv/bin/python examples/demo.py

The baseline ships with the repository (examples/baseline/, about 1 MB;
examples/train_baseline.py says how it was trained and remakes it), so the
demo spends its time on pruning, not on training a model first. Everything
it writes goes under runs/demo/: the pruned model, both .tflite files and
the `tfprune report` of the pair (widths.png, profile.png, summary.json).
(BENCHMARKS.md has the full-protocol figures.)
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfprune  # noqa: E402
import tfprune.comparison  # noqa: E402
from benchmarks import protocol  # noqa: E402
from tflite_export import convert  # noqa: E402
from tflite_export.report import profile_pair  # noqa: E402

BASELINE = os.path.join(ROOT, "examples", "baseline", "resnet20_fashion_mnist.keras")
OUT_DIR = os.path.join(ROOT, "runs", "demo")
TARGET_MACS = 0.5
FINETUNE_IMAGES = 20_000  # one short epoch: enough to recover most accuracy
FINETUNE_EPOCHS = 1
CALIBRATION = 512


def _accuracy(model, test, what):
    print(f"Testing {what} on the 10,000 test images...")
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return float(model.evaluate(test, verbose=1, return_dict=True)["accuracy"])


def main():
    start = time.perf_counter()
    protocol.set_seed()
    if not os.path.exists(BASELINE):
        sys.exit(f"demo: the baseline {BASELINE} is missing; make it with "
                 "`.venv/bin/python examples/train_baseline.py` (a few minutes)")
    with open(os.path.splitext(BASELINE)[0] + ".json") as f:
        made = json.load(f)
    print(f"Baseline: resnet20 trained on {made['train_images']:,} Fashion-MNIST "
          f"images for {made['epochs']} epochs by examples/train_baseline.py "
          f"({os.path.relpath(BASELINE)}).")
    model = keras.saving.load_model(BASELINE, compile=False)
    train, test = protocol.data(train_images=FINETUNE_IMAGES)
    base_acc = _accuracy(model, test, "the baseline")

    graph = tfprune.analyze(model)
    print(f"Analysed: {len(graph.groups)} channel groups, "
          f"{len(graph.prunable_groups)} prunable, {len(graph.barriers)} barriers.")
    plan = tfprune.prune(graph, tfprune.Budget(macs=TARGET_MACS))  # group_l1
    pruned_acc = _accuracy(tfprune.rebuild(model, plan), test, f"the model pruned to "
                           f"{TARGET_MACS:.0%} of the MACs by group L1 norm")
    print(f"Re-fitting the layers that read pruned channels on {CALIBRATION} "
          "training images (least squares)...")
    x_cal, y_cal = tfprune.datasets.load("fashion_mnist", split="train", as_numpy=True,
                                         limit=FINETUNE_IMAGES)
    pick = np.random.default_rng(0).choice(len(x_cal), CALIBRATION, replace=False)
    plan = tfprune.methods.search.reconstruct(model, plan, (x_cal[pick], y_cal[pick]))
    slim = tfprune.rebuild(model, plan)
    refit_acc = _accuracy(slim, test, "the re-fitted model")
    print(f"Fine-tuning the pruned model for {FINETUNE_EPOCHS} epoch on "
          f"{FINETUNE_IMAGES:,} images, distilling from the original...")
    tfprune.finetune(slim, train, teacher=model, epochs=FINETUNE_EPOCHS,
                     learning_rate=protocol.FINETUNE_PEAK_LR, verbose=1)
    tuned_acc = _accuracy(slim, test, "the fine-tuned model")

    os.makedirs(OUT_DIR, exist_ok=True)
    slim_path = os.path.join(OUT_DIR, "resnet20_slim.keras")
    slim.save(slim_path)
    print("Exporting both to TFLite (float32, builtin ops), checked against Keras...")
    x_check, _ = tfprune.datasets.load("fashion_mnist", split="test", as_numpy=True,
                                       limit=256)
    paths = []
    for name, m in (("original", model), ("slim", slim)):
        path = os.path.join(OUT_DIR, f"resnet20_{name}.tflite")
        convert(m, path, verification_data=x_check)
        paths.append(path)
    print("Timing both with LiteRT (1 thread) and profiling them per op type...")
    result = tfprune.comparison.report(model, slim, os.path.join(OUT_DIR, "report"),
                                       tflite=paths, profiler=profile_pair, threads=1,
                                       runs=100, names=("resnet20", "resnet20 pruned"))

    s, t = result.summary, result.summary["tflite"]
    o, p = s["original"], s["slim"]
    rows = [
        ("params", f"{o['params']:,}", f"{p['params']:,}", f"{s['ratios']['params']:.3f}"),
        ("MACs", f"{o['macs']:,}", f"{p['macs']:,}", f"{s['ratios']['macs']:.3f}"),
        ("test accuracy", f"{base_acc:.4f}", f"{tuned_acc:.4f}",
         f"{tuned_acc - base_acc:+.4f}"),
        ("  as rebuilt", "", f"{pruned_acc:.4f}", ""),
        ("  re-fitted", "", f"{refit_acc:.4f}", ""),
        ("TFLite size (bytes)", f"{t['original']['size_bytes']:,}",
         f"{t['slim']['size_bytes']:,}", f"{t['size_ratio']:.3f}"),
        ("latency, 1 thread (ms)", f"{t['original']['median_ms']:.3f}",
         f"{t['slim']['median_ms']:.3f}", f"{t['latency_ratio']:.3f}"),
    ]
    print()
    print(f"{'':<22}{'original':>14}{'pruned':>14}{'change':>10}")
    for name, a, b, c in rows:
        print(f"{name:<22}{a:>14}{b:>14}{c:>10}")
    rel = os.path.relpath(OUT_DIR)
    print(f"\nWrote, under {rel}/: the pruned model ({os.path.basename(slim_path)}), "
          "both .tflite files with their JSON side files, and report/ "
          "(widths.png: channels and MACs per layer; profile.png: time per op "
          "type; summary.json).")
    print(f"Per-layer detail: .venv/bin/tfprune report {os.path.relpath(BASELINE)} "
          f"{os.path.relpath(slim_path)} -o {rel}/report")
    print(f"Done in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
