"""tflite_export: conversion, verification, side files, timing, CLI."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import randomize_bn
from keras import layers

import tfprune
from tflite_export import (
    UnsupportedOpError,
    VerificationError,
    benchmark,
    compare,
    convert,
    model_info,
    profile,
)
from tfprune import TfpruneError, cli

SHAPE = (16, 16, 3)
CLASSES = 5


def residual_model():
    inputs = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(8, 3, padding="same", name="conv1")(x)
    y = layers.ReLU(name="relu1")(y)
    y = layers.Conv2D(8, 3, padding="same", name="conv2")(y)
    y = layers.BatchNormalization(name="bn2")(y)
    x = layers.Add(name="add")([x, y])
    x = layers.ReLU(name="relu2")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(CLASSES, name="predictions")(x)
    return randomize_bn(keras.Model(inputs, outputs, name="residual"))


def concat_model():
    inputs = keras.Input(SHAPE, name="image")
    a = layers.Conv2D(4, 1, activation="relu", name="branch_a")(inputs)
    b = layers.Conv2D(6, 3, padding="same", activation="relu", name="branch_b")(inputs)
    x = layers.Concatenate(name="cat")([a, b])
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="concat")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (48,) + SHAPE).astype("float32")
    y = rng.integers(0, CLASSES, 48)
    return x, y


@pytest.fixture(scope="module")
def residual():
    keras.utils.set_random_seed(0)
    model = residual_model()
    # The real use: export the slim model tfprune rebuilt.
    plan = tfprune.prune(model, tfprune.Budget(macs=0.6), criterion="l1")
    return tfprune.rebuild(model, plan)


@pytest.fixture(scope="module")
def float_export(residual, data, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float") / "slim.tflite")
    weights = [w.copy() for w in residual.get_weights()]
    info = convert(residual, path, representative_data=data,
                   labels=[f"class {i}" for i in range(CLASSES)],
                   normalization={"mean": [0.5] * 3, "std": [0.25] * 3})
    return info, weights


def test_float_export_is_verified_and_has_side_files(float_export, residual):
    info, weights = float_export
    assert os.path.getsize(info.path) == info.size_bytes
    assert info.quantization == "none" and info.samples == 48
    assert info.max_abs_error <= info.tolerance
    assert info.top1_agreement == 1.0 and info.accuracy == info.keras_accuracy
    assert info.ops["CONV_2D"] == 3 and info.ops["ADD"] == 1
    assert not any(op.startswith("CUSTOM") for op in info.ops)  # no Flex ops
    # BatchNorm is folded into the convolutions.
    assert not any("BATCH" in op or "MUL" == op for op in info.ops)
    # The user's model is untouched.
    for before, after in zip(weights, residual.get_weights()):
        np.testing.assert_array_equal(before, after)
    with open(info.labels_path) as f:
        assert f.read().splitlines() == [f"class {i}" for i in range(CLASSES)]
    meta = json.load(open(info.metadata_path))
    assert info.metadata_path.endswith("slim.json")
    assert meta["model"] == "slim.tflite" and meta["labels"] == "labels.txt"
    assert meta["input"]["shape"] == [1, *SHAPE] and meta["input"]["dtype"] == "float32"
    assert meta["input"]["normalization"]["std"] == [0.25] * 3
    assert meta["input"]["quantization"] is None
    assert meta["output"]["shape"] == [1, CLASSES]
    assert meta["macs"] == tfprune.cost(residual).macs
    # No temporary file is left behind.
    assert sorted(os.listdir(os.path.dirname(info.path))) == [
        "labels.txt", "slim.json", "slim.tflite"]


def test_dynamic_range_on_concat(data, tmp_path):
    keras.utils.set_random_seed(1)
    # The converter leaves weight tensors under 1024 values in float; the
    # Dense after Flatten here is larger, so it gets int8 weights.
    info = convert(concat_model(), tmp_path / "dyn.tflite", quantization="dynamic",
                   representative_data=data[0])
    assert info.quantization == "dynamic" and info.tolerance is None
    # int8 weights, float activations: the top-1 class rarely changes
    assert info.accuracy is None and info.top1_agreement >= 0.75
    assert model_info(info.path).quantization == "dynamic"
    assert not (tmp_path / "labels.txt").exists()


def test_int8_with_int8_io(residual, data, tmp_path):
    info = convert(residual, tmp_path / "q.tflite", quantization="int8",
                   representative_data=data, int8_io=True)
    assert info.input.dtype == "int8" and info.output.dtype == "int8"
    assert info.input.scale > 0 and -128 <= info.input.zero_point <= 127
    assert info.top1_agreement >= 0.75  # reported, not enforced by convert
    assert info.accuracy is not None and info.float_ops == []
    meta = json.load(open(info.metadata_path))
    assert meta["input"]["quantization"] == {"scale": info.input.scale,
                                             "zero_point": info.input.zero_point}
    assert meta["quantization"] == "int8"
    assert model_info(info.path).quantization == "int8"


@pytest.mark.parametrize("quantization", ["float16", "int8"])
def test_concat_model(quantization, data, tmp_path):
    keras.utils.set_random_seed(1)
    model = concat_model()
    info = convert(model, tmp_path / "cat.tflite", quantization=quantization,
                   representative_data=data[0])
    assert "CONCATENATION" in info.ops
    assert info.input.dtype == "float32"  # float I/O unless int8_io
    if quantization == "float16":
        assert info.max_abs_error <= info.tolerance
        assert info.size_bytes < 0.7 * sum(w.nbytes for w in model.get_weights()) + 20000
        # The DEQUANTIZE of float16 weights is timed with the node it feeds.
        nodes = profile(info.path, runs=2, warmup=0).nodes
        assert "DEQUANTIZE" not in [n.op for n in nodes] and len(nodes) >= 5
    else:
        assert info.top1_agreement >= 0.75


def flex_model():
    inputs = keras.Input((8, 8, 2), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    # Cumprod has no TFLite builtin: it would need the Flex delegate.
    x = layers.Lambda(lambda t: keras.ops.cumprod(t, axis=1), name="running_product")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, layers.Dense(3, name="predictions")(x))


def test_flex_op_gives_clear_error_and_no_file(tmp_path):
    path = tmp_path / "flex.tflite"
    with pytest.raises(UnsupportedOpError) as err:
        convert(flex_model(), path)
    assert isinstance(err.value, TfpruneError)
    assert err.value.ops == [("Cumprod", "running_product")]
    message = str(err.value)
    assert "Cumprod" in message and "'running_product'" in message
    assert "Flex" in message and "Replace" in message
    assert os.listdir(tmp_path) == []


def test_int8_reports_ops_left_in_float(tmp_path):
    inputs = keras.Input((8, 8, 2), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    # SIN has a float kernel but no int8 one.
    x = layers.Lambda(keras.ops.sin, name="wave")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, layers.Dense(3, name="predictions")(x))
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 2)).astype("float32")
    with pytest.warns(UserWarning, match="SIN"):
        info = convert(model, tmp_path / "s.tflite", quantization="int8",
                       representative_data=x)
    assert info.float_ops == ["SIN"]
    assert json.load(open(info.metadata_path))["verification"]["float_ops"] == ["SIN"]


def test_failed_verification_writes_nothing(residual, tmp_path):
    with pytest.raises(VerificationError, match="nothing was written"):
        convert(residual, tmp_path / "x.tflite", quantization="float16", tolerance=0.0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"quantization": "int8"}, "needs representative_data"),
    ({"quantization": "int8", "representative_data": np.zeros((0,) + SHAPE)}, "empty"),
    ({"representative_data": np.zeros((0,) + SHAPE)}, "empty"),
    ({"representative_data": np.zeros((4, 8, 8, 3))}, "expects"),
    ({"quantization": "int4"}, "unknown quantization"),
    ({"labels": ["a", "b"]}, "2 labels"),
])
def test_bad_arguments(residual, kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        convert(residual, tmp_path / "m.tflite", **kwargs)
    assert os.listdir(tmp_path) == []


def test_benchmark_report(float_export):
    info, _ = float_export
    report = benchmark(info.path, threads=1, runs=5, warmup=1)
    assert report.size_bytes == info.size_bytes and report.runs == 5
    assert 0 < report.min_ms <= report.median_ms <= report.p90_ms
    assert len(report.latencies_ms) == 5 and report.xnnpack
    assert report.ops == info.ops and report.quantization == "none"
    assert report.macs == json.load(open(info.metadata_path))["macs"]
    two = compare([info.path, info.path], threads=2, runs=3, warmup=0)
    assert [r.threads for r in two] == [2, 2]
    with pytest.raises(ValueError, match="threads"):
        benchmark(info.path, threads=0)


def test_profile_covers_every_node(float_export):
    info, _ = float_export
    prof = profile(info.path, runs=3, warmup=1)
    assert [n.op for n in prof.nodes] == [o.op for o in model_info(info.path).ops]
    assert prof.by_op()["CONV_2D"]["count"] == 3
    assert sum(n.macs for n in prof.nodes) == model_info(info.path).macs
    assert "CONV_2D" in prof.summary()


def test_cli_export_and_bench(float_export, tmp_path, capsys):
    keras.utils.set_random_seed(2)
    model = tfprune.zoo.vgg11(input_shape=(28, 28, 1), width=0.0625)
    model_file = str(tmp_path / "net.keras")
    model.save(model_file)
    out = str(tmp_path / "net.tflite")
    assert cli.main(["export", model_file, "-o", out, "--quantize", "int8",
                     "--data", "fashion_mnist", "--calibration-samples", "32",
                     "--verify-samples", "64"]) == 0
    printed = capsys.readouterr().out
    assert "top-1 agreement" in printed and "accuracy" in printed and out in printed
    assert open(tmp_path / "labels.txt").read().splitlines()[0] == "T-shirt/top"
    meta = json.load(open(tmp_path / "net.json"))
    assert len(meta["input"]["normalization"]["mean"]) == 1
    assert meta["verification"]["samples"] == 64

    info, _ = float_export
    assert cli.main(["bench", info.path, out, "--runs", "3", "--warmup", "1",
                     "--profile"]) == 0
    printed = capsys.readouterr().out
    assert "latency ratio" in printed and "MACs ratio" in printed
    assert "int8" in printed and "median ms" in printed
    assert "slowest nodes" in printed and "GMAC/s" in printed


@pytest.mark.parametrize("argv, message", [
    (["export", "MODEL", "--quantize", "int8"], "needs --data"),
    (["export", "MODEL", "-o", "x.onnx"], ".tflite"),
    (["export", "missing.keras"], "no such file"),
    (["bench", "missing.tflite"], "no such file"),
    (["bench", "MODEL"], "not a TFLite model"),
])
def test_cli_bad_input_is_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model_file = tmp_path / "m.keras"
    model_file.write_bytes(b"not a model")
    argv = [str(model_file) if a == "MODEL" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def mixed_model(policy="mixed_float16"):
    """A residual model whose layers compute in float16 (set per layer, so
    the global dtype policy is left alone); float32 logits."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", name="stem", dtype=policy)(inputs)
    x = layers.BatchNormalization(name="stem_bn", dtype=policy)(x)
    x = layers.ReLU(name="stem_relu", dtype=policy)(x)
    y = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1",
                      dtype=policy)(x)
    x = layers.Add(name="add", dtype=policy)([x, y])
    x = layers.GlobalAveragePooling2D(name="avg_pool", dtype=policy)(x)
    outputs = layers.Dense(CLASSES, name="predictions", dtype="float32")(x)
    return randomize_bn(keras.Model(inputs, outputs, name="mixed"))


@pytest.mark.parametrize("quantization", ["none", "float16"])
def test_mixed_precision_model_exports(quantization, data, tmp_path):
    model = mixed_model()
    assert model.get_layer("stem").compute_dtype == "float16"
    weights = [w.copy() for w in model.get_weights()]
    x, y = data
    path = str(tmp_path / "mixed.tflite")
    info = convert(model, path, quantization=quantization, verification_data=(x, y))
    assert os.path.exists(path) and info.quantization == quantization
    # Verified against the float32 copy; the file also agrees with the
    # float16-computing original within float16 rounding.
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    interpreter.set_tensor(inp["index"], x[:1])
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])
    ref = np.asarray(model(x[:1]), dtype="float32")
    assert np.max(np.abs(got - ref)) <= 2e-2 * max(1.0, float(np.max(np.abs(ref))))
    # The original is untouched and still mixed precision.
    assert model.get_layer("stem").compute_dtype == "float16"
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert keras.config.dtype_policy().name == "float32"


def test_float32_model_is_not_copied():
    from tflite_export.convert import float32_model

    model = residual_model()
    assert float32_model(model) is model
    copy = float32_model(mixed_model())
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)


def test_side_files_are_not_replaced_unless_allowed(residual, data, tmp_path):
    (tmp_path / "labels.txt").write_text("mine\n")
    path = str(tmp_path / "r.tflite")
    with pytest.raises(FileExistsError, match="labels.txt already exists"):
        convert(residual, path, labels=list("abcde"), overwrite_side_files=False)
    assert os.listdir(tmp_path) == ["labels.txt"]
    # Without labels no labels.txt is written, so it does not matter.
    convert(residual, path, overwrite_side_files=False)
    assert (tmp_path / "labels.txt").read_text() == "mine\n"
    with pytest.raises(FileExistsError, match="r.json already exists"):
        convert(residual, path, overwrite_side_files=False)
    convert(residual, path, labels=list("abcde"))  # the default replaces them
    assert (tmp_path / "labels.txt").read_text() == "a\nb\nc\nd\ne\n"
