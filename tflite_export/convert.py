"""`convert`: a Keras 3 model to a `.tflite` file an Android app can load.

The path that works for Keras 3 on TensorFlow 2.21 is the one Keras's own
`model.export(format="litert")` takes: a SavedModel written by
`keras.export.ExportArchive`, then `tf.lite.TFLiteConverter.from_saved_model`.
(`TFLiteConverter.from_keras_model` expects a `tf_keras` model, and
`from_concrete_functions` on a Keras 3 model keeps the weights as resource
variables: the file then holds VAR_HANDLE/READ_VARIABLE nodes, BatchNorm is
not folded, and int8 calibration fails.) Unlike `model.export`, the op set is
restricted to TFLite builtins, so the file runs on the stock LiteRT runtime
without the Flex delegate.

Every export is verified before the file is written: the converted model is
run with the LiteRT interpreter on sample inputs and compared with the Keras
model.
"""

import contextlib
import dataclasses
import functools
import json
import os
import re
import tempfile
import warnings

import numpy as np

from tflite_export import tflite_model
from tfprune.errors import TfpruneError, UnsupportedOpError, VerificationError  # noqa: F401
from tfprune.fileio import write_atomic

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")

# Largest |tflite - keras| accepted, relative to max(1, max |keras output|).
# Float32 differs only by BatchNorm folding and summation order; float16
# rounds every weight to an 11-bit mantissa.
DEFAULT_TOLERANCE = {"none": 1e-4, "float16": 2e-2}

_RANDOM_SAMPLES = 8


@dataclasses.dataclass
class ExportInfo:
    """What `convert` wrote, and how well the file matches the model.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size.
        quantization: "none", "float16", "dynamic" or "int8".
        input: `TensorInfo` of the model input (shape, dtype, scale/zero
            point when quantized).
        output: `TensorInfo` of the model output.
        ops: dict op name -> count, e.g. `{"CONV_2D": 21, "ADD": 9}`.
        samples: number of inputs the verification ran on.
        max_abs_error: max |tflite - keras| over those inputs (float
            outputs after dequantization).
        tolerance: the bound `max_abs_error` was checked against (the
            relative tolerance times max(1, max |keras output|)), or None
            for the quantized modes, which are not checked this way.
        top1_agreement: fraction of inputs where the argmax of the last
            axis agrees.
        float_ops: for "int8", ops that have no int8 kernel and still run
            in float inside the file (e.g. `["SIN"]`); empty when the model
            is integer end to end.
        accuracy: top-1 accuracy of the `.tflite` model when labels of the
            verification data were given, else None.
        keras_accuracy: the same for the Keras model.
        labels_path: `labels.txt` next to the model, or None.
        metadata_path: the JSON side file.
    """

    path: str
    size_bytes: int
    quantization: str
    input: tflite_model.TensorInfo
    output: tflite_model.TensorInfo
    ops: dict
    samples: int
    max_abs_error: float
    tolerance: float
    top1_agreement: float
    float_ops: list = dataclasses.field(default_factory=list)
    accuracy: float = None
    keras_accuracy: float = None
    labels_path: str = None
    metadata_path: str = None

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["input"], d["output"] = self.input.as_dict(), self.output.as_dict()
        return d

    def summary(self):
        """A few lines for people: size, ops, verification figures."""
        lines = [f"{self.path}: {self.size_bytes:,} bytes, quantization "
                 f"{self.quantization}, input {list(self.input.shape)} "
                 f"{self.input.dtype}",
                 "ops: " + ", ".join(f"{k} x{v}" for k, v in self.ops.items())]
        check = f"max |tflite - keras| = {self.max_abs_error:.3g}"
        if self.tolerance is not None:
            check += f" (tolerance {self.tolerance:.3g})"
        check += f", top-1 agreement {self.top1_agreement:.4f} on {self.samples} inputs"
        lines.append(check)
        if self.accuracy is not None:
            lines.append(f"accuracy: tflite {self.accuracy:.4f}, keras "
                         f"{self.keras_accuracy:.4f}")
        if self.float_ops:
            lines.append("still float in the int8 model: " + ", ".join(self.float_ops))
        return "\n".join(lines)


def convert(model, path, quantization="none", representative_data=None,
            labels=None, verification_data=None, normalization=None,
            int8_io=False, batch_size=1, tolerance=None, verify_samples=256,
            verbose=False, overwrite_side_files=True):
    """Converts a Keras 3 model to a verified `.tflite` file.

    Only TFLite builtin ops are allowed (no Flex / SELECT_TF_OPS), so the
    file runs on the plain LiteRT runtime. After conversion the file is run
    with the LiteRT interpreter and compared with the Keras model; then it
    is written atomically (a temporary file renamed into place), together
    with the side files an app needs: `labels.txt` (when `labels` are
    given) and `<name>.json` (input shape and dtype, normalisation,
    quantization scale and zero point).

    Args:
        model: a built `keras.Model` with one input and one output. It is
            not modified.
        path: where to write the `.tflite` file.
        quantization: "none" (float32), "float16" (float16 weights),
            "dynamic" (int8 weights, float activations; the converter keeps
            weight tensors of fewer than 1024 values in float) or "int8"
            (full integer: int8 weights and activations; needs
            `representative_data`).
        representative_data: model inputs (array of shape
            `(n, *input_shape)`), or a tuple `(x, y)` with integer labels.
            Calibrates int8 and, without `verification_data`, is what the
            verification runs on.
        labels: class names, one per output unit; written to `labels.txt`.
        verification_data: inputs, or `(x, y)`, to verify on; defaults to
            `representative_data`, else a few random inputs.
        normalization: how the app must prepare pixels, as
            `{"mean": [...], "std": [...]}` per channel in [0, 1] units
            (the input is `(pixel / 255 - mean) / std`); recorded in the
            JSON side file. None records nothing.
        int8_io: for "int8", make the model's input and output int8 too
            (the app quantizes with the scale and zero point in the JSON
            file); by default they stay float32.
        batch_size: the fixed batch dimension of the file (1 for an app);
            None keeps it dynamic.
        tolerance: for "none" and "float16", the largest accepted
            max |tflite - keras| relative to max(1, max |keras output|)
            (defaults 1e-4 and 2e-2). Quantized modes are reported, not
            checked.
        verify_samples: at most this many inputs are used to verify.
        verbose: show the converter's own log.
        overwrite_side_files: False to refuse (before converting) when
            `labels.txt` or the JSON side file already exists next to
            `path`; the `.tflite` file itself is always replaced.

    A mixed-precision model (e.g. `dtype="mixed_float16"`, which computes
    in float16) is converted from a float32 copy of itself, because the
    TFLite builtins take float32 graphs: the file is float32, or float16
    weights with `quantization="float16"`. The copy is checked against the
    original within float16 rounding, and the file against the copy.

    Returns:
        An `ExportInfo`.

    Raises:
        UnsupportedOpError: the model needs non-builtin ops; the message
            lists them and the layers they came from.
        VerificationError: the float or float16 file differs from the
            Keras model by more than the tolerance (nothing is written).
        ValueError: bad arguments, e.g. "int8" without representative data.
        FileExistsError: a side file exists and `overwrite_side_files` is
            False.
        TfpruneError: Keras runs on another backend than TensorFlow.

    Example:

    ```python
    from tflite_export import convert
    info = convert(model, "model.tflite", quantization="int8",
                   representative_data=x, labels=["a", "b", "c", "d"])
    print(info.summary())  # also wrote labels.txt and model.json
    ```
    """
    import keras

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of "
                         f"{', '.join(QUANTIZATIONS)}.")
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a keras.Model, got {type(model).__name__}.")
    _require_tensorflow_backend(model)
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(f"model '{model.name}' has no defined inputs; build it "
                         "(e.g. call it on a batch or use keras.Input) before "
                         "converting.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model '{model.name}' has {len(model.inputs)} inputs "
                         f"and {len(model.outputs)} outputs; convert supports "
                         "one of each.")
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"{path}: the file name must end with '.tflite'.")
    rep_x, rep_y = _split_data(representative_data, "representative_data")
    ver_x, ver_y = _split_data(verification_data, "verification_data")
    if quantization == "int8" and rep_x is None:
        raise ValueError("quantization='int8' needs representative_data: a few "
                         "hundred typical inputs to calibrate the int8 ranges, "
                         "e.g. representative_data=x_train[:256].")
    input_shape = _input_shape(model, rep_x if rep_x is not None else ver_x, batch_size)
    for name, x in (("representative_data", rep_x), ("verification_data", ver_x)):
        if x is not None and tuple(x.shape[1:]) != input_shape[1:]:
            raise ValueError(f"{name} has examples of shape {tuple(x.shape[1:])}, "
                             f"but the model expects {input_shape[1:]}.")
    n_out = model.outputs[0].shape[-1]
    if labels is not None:
        labels = [str(v) for v in labels]
        if n_out is not None and len(labels) != n_out:
            raise ValueError(f"{len(labels)} labels given, but the model has "
                             f"{n_out} outputs.")
        if any("\n" in v or "\r" in v for v in labels):
            raise ValueError("a label contains a line break; labels.txt has "
                             "one label per line.")
    labels_path, metadata_path = side_files(path, labels=labels is not None)
    if not overwrite_side_files:
        for side in (labels_path, metadata_path):
            if side and os.path.lexists(side):
                raise FileExistsError(
                    f"{side} already exists next to {path}; remove it, choose "
                    "another directory, or allow overwriting it.")
    if ver_x is None:
        ver_x, ver_y = rep_x, rep_y
    if ver_x is None:
        rng = np.random.default_rng(0)
        ver_x = rng.standard_normal((_RANDOM_SAMPLES,) + input_shape[1:]).astype("float32")
    ver_x, ver_y = ver_x[:verify_samples], (None if ver_y is None else ver_y[:verify_samples])

    original, model = model, float32_model(model)
    if model is not original:
        _check_cast(original, model, ver_x)
    content = _convert(model, input_shape, quantization, rep_x, int8_io, verbose)
    details = tflite_model.model_info(content)
    figures = _verify(model, content, ver_x, ver_y)
    if quantization in DEFAULT_TOLERANCE:
        relative = DEFAULT_TOLERANCE[quantization] if tolerance is None else float(tolerance)
        tol = relative * max(1.0, figures["scale"])
        if not figures["max_abs_error"] <= tol:  # also catches NaN
            raise VerificationError(
                f"the {quantization} .tflite model differs from the Keras model "
                f"by up to {figures['max_abs_error']:.3g} on {len(ver_x)} inputs "
                f"(tolerance {tol:.3g}); nothing was written. A layer may be "
                "converted differently from how Keras runs it; pass a larger "
                "`tolerance` to write the file anyway.")
    else:
        tol = None
    if details.float_ops:
        warnings.warn(
            f"{len(details.float_ops)} node(s) of the int8 model still compute in "
            f"float ({', '.join(sorted({o.op for o in details.float_ops}))}): the "
            "op has no int8 kernel, so the file converts to float and back "
            "around it. Replace the layer if the app needs integer-only "
            "execution (e.g. on an NPU).", stacklevel=2)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    info = ExportInfo(
        path=path, size_bytes=len(content), quantization=quantization,
        input=details.inputs[0], output=details.outputs[0], ops=details.op_counts,
        samples=len(ver_x), max_abs_error=figures["max_abs_error"], tolerance=tol,
        top1_agreement=figures["top1_agreement"],
        float_ops=sorted({o.op for o in details.float_ops}),
        accuracy=figures.get("accuracy"),
        keras_accuracy=figures.get("keras_accuracy"), labels_path=labels_path,
        metadata_path=metadata_path)
    if labels is not None:
        write_atomic(labels_path, ("\n".join(labels) + "\n").encode())
    write_atomic(metadata_path, json.dumps(
        _metadata(info, model, normalization, labels_path, details.macs),
        indent=1).encode())
    # The model file goes last: once it exists, its side files do too.
    write_atomic(path, content)
    return info


def side_files(path, labels=True):
    """The side files `convert` writes next to `path`.

    Returns:
        `(labels_path or None, metadata_path)`: `labels.txt` in the same
        directory (when `labels`), and `<name>.json`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    return (os.path.join(directory, "labels.txt") if labels else None,
            os.path.join(directory, stem + ".json"))


def _is_mixed(layer):
    policy = getattr(layer, "dtype_policy", None)
    compute = getattr(policy, "compute_dtype", "float32")
    variable = getattr(policy, "variable_dtype", "float32")
    return compute != variable or compute in ("float16", "bfloat16")


def _float32_config(config):
    """`config` with every layer's dtype policy replaced by "float32"."""
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "dtype" and isinstance(value, dict) and value.get(
                "class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            out[key] = "float32"
        elif key == "dtype" and value in ("mixed_float16", "mixed_bfloat16",
                                          "float16", "bfloat16"):
            out[key] = "float32"
        else:
            out[key] = _float32_config(value)
    return out


def float32_model(model):
    """`model` itself, or a float32 copy when any layer computes in lower
    precision (a `mixed_float16` / `mixed_bfloat16` / float16 policy).

    The copy has the same layers, names and weights (cast to float32); the
    original is not modified.

    Example:

    ```python
    from tflite_export.convert import float32_model
    mixed = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, dtype="mixed_float16")])
    exportable = float32_model(mixed)  # computes in float32
    ```
    """
    import keras

    stack, mixed = [model], False
    while stack and not mixed:
        layer = stack.pop()
        mixed = _is_mixed(layer)
        stack.extend(getattr(layer, "layers", ()))
    if not mixed:
        return model
    config = keras.saving.serialize_keras_object(model)
    try:
        copy = keras.saving.deserialize_keras_object(_float32_config(config))
        # Mixed-precision variables are float32 already.
        copy.set_weights(model.get_weights())
    except Exception as e:  # a layer whose config cannot be re-created
        raise ValueError(
            f"model '{model.name}' computes in reduced precision and could not "
            f"be copied to float32 for export ({type(e).__name__}: {e}); "
            "rebuild it with the float32 policy and copy its weights, then "
            "export that.") from None
    return copy


def _check_cast(original, copy, x):
    """The float32 copy computes what the mixed-precision model computes,
    up to float16 rounding."""
    sample = x[:64]
    ref = np.asarray(original(sample, training=False), dtype="float32")
    got = np.asarray(copy(sample, training=False), dtype="float32")
    err = float(np.max(np.abs(got - ref)))
    tol = DEFAULT_TOLERANCE["float16"] * max(1.0, float(np.max(np.abs(ref))))
    if not err <= tol:
        raise VerificationError(
            f"the float32 copy of mixed-precision model '{original.name}' "
            f"differs from it by up to {err:.3g} (tolerance {tol:.3g}); nothing "
            "was written. The model may rely on float16 overflow or on a layer "
            "that depends on its dtype policy.")
def _require_tensorflow_backend(model):
    """TFLite conversion traces the model with TensorFlow ops."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise TfpruneError(
            f"tflite_export needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
            f"model '{getattr(model, 'name', model)}' was built with {backend!r}. "
            "Save it as .keras and convert it in a TensorFlow process.")


def _split_data(data, name):
    """(x, y) arrays from `x` or `(x, y)`; (None, None) for None."""
    if data is None:
        return None, None
    y = None
    # Only a tuple means (inputs, labels); a list is a list of inputs.
    if isinstance(data, tuple) and len(data) == 2 and not np.isscalar(data[0]):
        data, y = data
    try:
        x = np.asarray(data, dtype="float32")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array of model inputs (or a tuple "
                         f"(x, y)); could not read it as float32: {e}") from None
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name} is empty; give at least one input example "
                         "(a few hundred for int8 calibration).")
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"{name}: {len(x)} inputs but {len(y)} labels.")
    return x, y


def _input_shape(model, sample, batch_size):
    shape = tuple(model.inputs[0].shape)[1:]
    if any(d is None for d in shape):
        if sample is None:
            raise ValueError(f"model '{model.name}' has input shape "
                             f"{(None,) + shape} with unknown sizes; give "
                             "representative_data or verification_data of "
                             "the size the app will feed.")
        shape = tuple(sample.shape[1:])
    return (batch_size,) + tuple(int(d) for d in shape)


@contextlib.contextmanager
def _quiet(enabled):
    """Silences the converter, which logs through C++ straight to fd 2."""
    if not enabled:
        yield
        return
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _convert(model, input_shape, quantization, rep_x, int8_io, verbose):
    import keras
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    spec = tf.TensorSpec(input_shape, tf.float32, name=_signature_name(model))
    with tempfile.TemporaryDirectory(prefix="tflite_export_") as saved_model, \
            _quiet(not verbose):
        archive = keras.export.ExportArchive()
        archive.track(model)
        # training=False: Dropout off, BatchNorm on its moving statistics.
        archive.add_endpoint("serve", functools.partial(model.__call__, training=False),
                             input_signature=[spec])
        archive.write_out(saved_model, verbose=False)
        try:
            return convert_saved_model(saved_model, quantization, rep_x,
                                       batch=input_shape[0] or 1, int8_io=int8_io)
        except ConverterError as e:
            missing = _missing_ops(e, model)
            if missing:
                raise UnsupportedOpError(missing) from None
            raise


def convert_saved_model(saved_model_dir, quantization="none", representative_data=None,
                        batch=1, int8_io=False):
    """The converter settings of `convert`, applied to a SavedModel.

    `convert` calls this for Keras 3 models; it is public so that a model
    from elsewhere (e.g. a `tf_keras` model saved with
    `tf.saved_model.save`) can be converted with exactly the same settings,
    for a fair comparison. No verification, no side files.

    Args:
        saved_model_dir: a SavedModel with a single-input serving signature.
        quantization: "none", "float16", "dynamic" or "int8".
        representative_data: float32 inputs, needed for "int8".
        batch: batch size of the signature's input.
        int8_io: for "int8", int8 input and output.

    Returns:
        The `.tflite` file's bytes.

    Example:

    ```python
    from tflite_export import convert_saved_model
    model.export("sm")  # a SavedModel with a serving signature
    content = convert_saved_model("sm", "int8", x)
    open("model.tflite", "wb").write(content)
    ```
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of "
                         f"{', '.join(QUANTIZATIONS)}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if representative_data is None or len(representative_data) == 0:
            raise ValueError("quantization='int8' needs representative_data.")
        x = np.asarray(representative_data, dtype="float32")

        def calibration():
            for i in range(0, len(x) - batch + 1, batch):
                yield [x[i:i + batch]]

        converter.representative_dataset = calibration
        # Int8 kernels wherever they exist; an op without one stays float
        # between QUANTIZE/DEQUANTIZE nodes, which `convert` reports.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def _signature_name(model):
    """The input's name in the file's signature: the Input layer's name."""
    name = getattr(model.inputs[0], "name", "") or ""
    # Sequential models name their input tensor "keras_tensor..." instead.
    if not name or name.startswith("keras_tensor"):
        name = "input"
    return re.sub(r"\W", "_", name)


def _layer_names(model):
    names, stack = set(), [model]
    while stack:
        m = stack.pop()
        for layer in getattr(m, "layers", ()):
            names.add(layer.name)
            stack.append(layer)
    return names


def _missing_ops(error, model):
    """(op, layer) for each op the converter could not map to a builtin."""
    names = _layer_names(model)
    found = []
    for item in getattr(error, "errors", ()) or ():
        op = item.operator.name if item.HasField("operator") else ""
        if not op:
            continue
        op = op.split(".", 1)[-1]  # "tf.Cumprod" -> "Cumprod"
        layer = None
        for call in item.location.call:
            layer = _layer_from_scope(call.name, names)
            if layer:
                break
        if (op, layer) not in found:
            found.append((op, layer))
    return found


def _layer_from_scope(scope, names):
    """The deepest layer named in a TF name scope such as
    "functional_1/cumulative_1/Cumprod@__inference_function_75"."""
    best = None
    for part in scope.split("@", 1)[0].split("/"):
        # TF makes scopes unique by appending "_1", "_2", ...
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                best = candidate
                break
    return best


def _run_tflite(content, x):
    """Float outputs of the `.tflite` model on inputs `x`, one call each."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    batch = int(inp["shape"][0]) or 1
    if len(x) % batch:
        x = x[:len(x) - len(x) % batch]
    results = []
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            chunk = np.clip(np.round(chunk / scale + zero), info.min, info.max)
        interpreter.set_tensor(inp["index"], chunk.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        results.append(np.array(y, dtype="float32"))
    return np.concatenate(results), len(x)


def _verify(model, content, x, y):
    got, n = _run_tflite(content, x)
    x = x[:n]
    ref = np.concatenate([
        np.asarray(model(x[i:i + 64], training=False), dtype="float32")
        for i in range(0, len(x), 64)])
    figures = {
        "max_abs_error": float(np.max(np.abs(got - ref))),
        "scale": float(np.max(np.abs(ref))),
        "top1_agreement": float(np.mean(
            np.argmax(got.reshape(len(got), -1, got.shape[-1]), -1)
            == np.argmax(ref.reshape(len(ref), -1, ref.shape[-1]), -1))),
    }
    if y is not None and ref.ndim == 2:
        y = y[:n]
        figures["accuracy"] = float(np.mean(np.argmax(got, -1) == y))
        figures["keras_accuracy"] = float(np.mean(np.argmax(ref, -1) == y))
    return figures


def _metadata(info, model, normalization, labels_path, macs):
    if normalization is not None:
        normalization = {
            "mean": [float(v) for v in np.ravel(normalization["mean"])],
            "std": [float(v) for v in np.ravel(normalization["std"])],
            "formula": "input = (pixel / 255 - mean) / std, per channel",
        }
    inp = info.input.as_dict()
    inp["normalization"] = normalization
    return {
        "format": "tfprune.tflite_export/1",
        "model": os.path.basename(info.path),
        "keras_model": model.name,
        "quantization": info.quantization,
        "signature": "serving_default",
        "input": inp,
        "output": info.output.as_dict(),
        "labels": os.path.basename(labels_path) if labels_path else None,
        "macs": int(macs),
        "verification": {
            "samples": info.samples,
            "max_abs_error": info.max_abs_error,
            "tolerance": info.tolerance,
            "top1_agreement": info.top1_agreement,
            "float_ops": info.float_ops,
            "accuracy": info.accuracy,
            "keras_accuracy": info.keras_accuracy,
        },
    }
