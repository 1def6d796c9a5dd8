"""Trains the small ResNet-20 baseline that `examples/demo.py` starts from.

    .venv/bin/python examples/train_baseline.py        # writes examples/baseline/

How it is made, so anyone can remake it: `tfprune.zoo.resnet20` for 28x28x1
inputs and 10 classes, trained under the benchmark protocol
(`benchmarks/protocol.py`: standardised Fashion-MNIST, random flip and
2-pixel shift, SGD with Nesterov momentum 0.9, weight decay 5e-4, one-cycle
learning rate peaking at 0.1, batch 128, seed 0) on the first 30,000
training images for 2 epochs, then tested on all 10,000 test images. It is
saved without optimizer state (about 1 MB), with a JSON side file holding
the accuracy, the settings and the time it took.

This is a short schedule: the model is a reasonable starting point for a
demonstration, not a converged baseline (BENCHMARKS.md uses 8 epochs on all
60,000 images). Training takes a few minutes on 2 CPU cores.
"""

import json
import os
import platform
import subprocess
import sys
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import keras  # noqa: E402

from benchmarks import protocol  # noqa: E402

TRAIN_IMAGES = 30_000
EPOCHS = 2
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline")
PATH = os.path.join(OUT_DIR, "resnet20_fashion_mnist.keras")


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_small(model, path):
    """Saves `model` as a compact `.keras` file that loads without tfprune.

    A fresh, uncompiled copy goes in (no optimizer state, no custom
    learning-rate schedule needed to load it), and the archive is rewritten
    with deflate compression: Keras stores the weights uncompressed, and
    HDF5's padding makes that twice the size of the weights.
    """
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".partial.keras"
    clean.save(tmp)
    packed = path + ".packed.keras"
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(
            packed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    os.remove(tmp)
    os.replace(packed, path)  # a killed run never leaves a half-written file


def main():
    protocol.set_seed()
    train, test = protocol.data(train_images=TRAIN_IMAGES)
    model = protocol.MODELS["resnet20"]()
    print(f"Training resnet20 on {TRAIN_IMAGES:,} Fashion-MNIST images for {EPOCHS} "
          "epochs...")
    wall = protocol.train(model, train, EPOCHS, protocol.BASELINE_PEAK_LR, verbose=1)
    acc = protocol.accuracy(model, test)
    save_small(model, PATH)
    meta = {
        "model": "tfprune.zoo.resnet20(input_shape=(28, 28, 1), classes=10)",
        "data": "fashion_mnist", "train_images": TRAIN_IMAGES, "epochs": EPOCHS,
        "batch_size": protocol.BATCH, "peak_lr": protocol.BASELINE_PEAK_LR,
        "seed": protocol.SEED, "test_accuracy": round(acc, 4),
        "train_seconds": round(wall, 1), "machine": protocol.machine(),
        "keras": keras.__version__, "python": platform.python_version(),
        "commit": _commit(), "script": "examples/train_baseline.py",
    }
    with open(os.path.splitext(PATH)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"test accuracy {acc:.4f} after {wall:.0f} s; wrote {PATH} "
          f"({os.path.getsize(PATH) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
