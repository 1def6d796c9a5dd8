"""Times a Keras model with LiteRT: the timer behind `tfprune.latency`.

tfprune never imports tflite_export; it finds `time_model` through the
`tfprune.timers` entry point (see setup.py) when a latency table is
measured without an explicit `timer=`.
"""

import functools
import os
import tempfile

import numpy as np

from tflite_export.benchmark import benchmark
from tflite_export.convert import _quiet, convert_saved_model

_CALIBRATION = 8


def time_model(keras_model, threads=1, quantization="none", runs=50):
    """Converts a model to `.tflite` (not verified) and times it with LiteRT.

    Unlike `convert`, the model may have several inputs and outputs (the
    sub-models of a latency table do), batch size 1. For "int8" the ranges
    are calibrated on random normal inputs: enough for timing, not for
    accuracy.

    Args:
        keras_model: a built `keras.Model` with fixed input shapes.
        threads: LiteRT interpreter threads.
        quantization: "none", "float16", "dynamic" or "int8".
        runs: timed runs (after 10 untimed ones).

    Returns:
        The median latency of one inference, in milliseconds.

    Example:

    ```python
    from tflite_export.timing import time_model
    ms = time_model(model, threads=1, runs=20)
    ```
    """
    import keras
    import tensorflow as tf

    specs = [tf.TensorSpec((1,) + tuple(t.shape[1:]), tf.float32, name=f"input_{i}")
             for i, t in enumerate(keras_model.inputs)]
    if any(d is None for s in specs for d in s.shape):
        raise ValueError(f"model '{keras_model.name}' needs fixed input shapes to be "
                         f"timed, got {[tuple(s.shape) for s in specs]}")

    def serve(*xs):
        return keras_model(list(xs) if len(xs) > 1 else xs[0], training=False)

    rep = None
    if quantization == "int8":
        rng = np.random.default_rng(0)
        rep = [[rng.standard_normal(s.shape).astype("float32") for s in specs]
               for _ in range(_CALIBRATION)]
    with tempfile.TemporaryDirectory(prefix="tfprune_timing_") as tmp, _quiet(True):
        saved = os.path.join(tmp, "saved_model")
        archive = keras.export.ExportArchive()
        archive.track(keras_model)
        archive.add_endpoint("serve", functools.partial(serve), input_signature=specs)
        archive.write_out(saved, verbose=False)
        if rep is not None and len(specs) > 1:
            content = _convert_multi_int8(saved, rep)
        else:
            content = convert_saved_model(
                saved, quantization,
                None if rep is None else np.concatenate([r[0] for r in rep]))
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(content)
        return float(benchmark(path, threads=threads, runs=runs).median_ms)


def _convert_multi_int8(saved, rep):
    """Full-int8 conversion of a SavedModel with several inputs."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(rep)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()
