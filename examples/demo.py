"""tfprune in one run: train (or reuse) a baseline, prune it to half its MACs,
fine-tune briefly, export both to TFLite, and print what changed.

    make demo          # or: .venv/bin/python examples/demo.py

The baseline is a ResNet-20 trained for 2 epochs on Fashion-MNIST and cached
under benchmarks/cache/, so a second run skips training. (BENCHMARKS.md has
the full 8-epoch protocol figures.)
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tfprune  # noqa: E402
from benchmarks import protocol  # noqa: E402
from tflite_export import compare, convert  # noqa: E402

BASELINE_EPOCHS = 2
FINETUNE_EPOCHS = 1
TARGET_MACS = 0.5


def main():
    start = time.perf_counter()
    protocol.set_seed()
    train, test = protocol.data()
    print(f"Baseline: resnet20 on Fashion-MNIST ({BASELINE_EPOCHS} epochs, cached after "
          "the first run)...")
    model, base_acc, _ = protocol.baseline("resnet20", train, test, epochs=BASELINE_EPOCHS)

    graph = tfprune.analyze(model)
    print(f"Analysed: {len(graph.groups)} channel groups, "
          f"{len(graph.prunable_groups)} prunable, {len(graph.barriers)} barriers.")
    plan = tfprune.prune(graph, criterion="l1", target_macs=TARGET_MACS)
    slim = tfprune.rebuild(model, plan)
    pruned_acc = protocol.accuracy(slim, test)
    print(f"Pruned to {TARGET_MACS:.0%} of the MACs by L1 norm; fine-tuning "
          f"{FINETUNE_EPOCHS} epoch...")
    protocol.train(slim, train, FINETUNE_EPOCHS, protocol.FINETUNE_PEAK_LR)
    tuned_acc = protocol.accuracy(slim, test)

    print("Exporting both to TFLite (float32, builtin ops) and timing them with LiteRT...")
    x_test, _ = tfprune.datasets.load("fashion_mnist", split="test", as_numpy=True, limit=256)
    paths = []
    for name, m in (("original", model), ("pruned", slim)):
        path = os.path.join(protocol.CACHE_DIR, f"resnet20_demo_{name}.tflite")
        convert(m, path, verification_data=x_test)
        paths.append(path)
    base_run, slim_run = compare(paths, threads=1, runs=50)

    before, after = tfprune.cost(model), tfprune.cost(slim)
    rows = [
        ("params", f"{before.params:,}", f"{after.params:,}",
         f"{after.params / before.params:.3f}"),
        ("MACs", f"{before.macs:,}", f"{after.macs:,}", f"{after.macs / before.macs:.3f}"),
        ("test accuracy", f"{base_acc:.4f}", f"{tuned_acc:.4f}",
         f"{tuned_acc - base_acc:+.4f}"),
        ("  before fine-tuning", "", f"{pruned_acc:.4f}", ""),
        ("TFLite size (bytes)", f"{base_run.size_bytes:,}", f"{slim_run.size_bytes:,}",
         f"{slim_run.size_bytes / base_run.size_bytes:.3f}"),
        ("latency, 1 thread (ms)", f"{base_run.median_ms:.3f}", f"{slim_run.median_ms:.3f}",
         f"{slim_run.median_ms / base_run.median_ms:.3f}"),
    ]
    print()
    print(f"{'':<22}{'original':>14}{'pruned':>14}{'change':>10}")
    for name, a, b, c in rows:
        print(f"{name:<22}{a:>14}{b:>14}{c:>10}")
    path = os.path.join(protocol.CACHE_DIR, "resnet20_demo_slim.keras")
    slim.save(path)
    print(f"\nSaved the pruned model to {path} and the .tflite files beside it "
          f"({time.perf_counter() - start:.0f} s).")


if __name__ == "__main__":
    main()
