"""Exports the cached Keras resnet20 baseline's weights for the PyTorch peer.

`python -m benchmarks.peers.torch_pruning --keras-baseline` prunes and
fine-tunes these weights instead of its own PyTorch-trained baseline: the
same starting network in both frameworks, so what is left of a gap between
them comes from the pruning and fine-tuning, not from the baselines.

Usage (with tfprune's environment, where Keras is):

    python -m benchmarks.peers.keras_weights   # writes benchmarks/cache/*.npz

It exports the baseline `benchmarks.run` uses; where none is cached it
trains one first (about 27 minutes on 2 cores).
"""

import os

import keras
import numpy as np

from benchmarks import protocol
from tfprune.fileio import atomic_path


def path(name="resnet20"):
    """Where the exported weights of the cached baseline `name` go."""
    return os.path.splitext(protocol.baseline_path(name))[0] + ".weights.npz"


def export(name="resnet20"):
    """Writes {layer/weight: array} of the cached baseline (Keras layouts);
    returns the path."""
    model, acc, _ = protocol.baseline(name)
    arrays = {f"{layer.name}/{w.name}": keras.ops.convert_to_numpy(w)
              for layer in model.layers for w in layer.weights}
    arrays["test_acc"] = np.float64(acc)
    out = path(name)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return out


if __name__ == "__main__":
    print(export())
