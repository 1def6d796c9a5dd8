"""Re-estimating BatchNormalization statistics after pruning.

A pruned network's BatchNormalization layers keep the moving mean and
variance of the unpruned one; but a convolution that lost some of its input
channels produces differently distributed outputs, so inference-mode BN
mis-normalises them, and the error grows layer after layer. Re-estimating
the statistics on a few hundred training images (no weight changes, no
labels) repairs most of that before any fine-tuning.
"""

import keras
import numpy as np

from tfprune.core.data import as_arrays


def _batchnorms(model):
    """Every BatchNormalization layer, nested models included."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append(layer)
        elif isinstance(layer, keras.Model):
            out.extend(_batchnorms(layer))
    return out


def recalibrate_bn(model, data, num_samples=2048, batch_size=128, seed=0):
    """Sets every BatchNormalization's moving statistics from `data`, in place.

    Runs the model in training mode over `num_samples` samples and makes
    each BN layer's moving mean and variance the average of its batch
    statistics (a running average with momentum k/(k+1) at batch k, so the
    old statistics are forgotten). Nothing else changes: weights, momentum
    and trainable flags are as before. Like `model.fit`, this updates the
    model it is given; call it on the slim model from `tfprune.rebuild`.

    Args:
        model: a `keras.Model` with BatchNormalization layers.
        data: images `x`, `(x, y)` arrays, or a batched `tf.data` dataset of
            `(x, y)` batches; labels are not used.
        num_samples: samples drawn from `data` (all when it has fewer).
        batch_size: samples per forward pass (the last, partial batch is
            dropped when there are several).
        seed: which samples are drawn.

    Returns:
        `model`.

    Example:

    ```python
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    tfprune.recalibrate_bn(slim, x)  # training images; labels are not needed
    ```
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if isinstance(data, np.ndarray):
        x = data
        if len(x) == 0:
            raise ValueError("the data set is empty; give at least one sample.")
    else:
        x, _ = as_arrays(data)
    x = x[np.random.default_rng(seed).permutation(len(x))[:num_samples]]
    starts = list(range(0, len(x), batch_size))
    if len(starts) > 1 and len(x) % batch_size:
        starts = starts[:-1]  # equal batches weigh equally
    layers = _batchnorms(model)
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    try:
        for layer in layers:
            layer.trainable = True  # frozen BN would ignore training=True
        for k, start in enumerate(starts):
            for layer in layers:
                layer.momentum = k / (k + 1.0)
            model(x[start:start + batch_size], training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    return model
