import re

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfprune import zoo

ALL_MODELS = (
    "vgg11",
    "vgg16",
    "resnet20",
    "resnet32",
    "resnet56",
    "mobilenet_v2",
)

# Every layer name must come from the documented schemes, never from Keras's
# auto-numbering (e.g. "conv2d_3").
NAME_PATTERN = re.compile(
    r"^(input|avg_pool|predictions"
    r"|(stem|head)_(conv|bn|relu)"
    r"|stage\d+_(conv|bn|relu)\d+|stage\d+_pool"
    r"|stage\d+_block\d+_("
    r"conv[12]|bn[12]|relu[12]|add|shortcut_conv|shortcut_bn"
    r"|expand_conv|expand_bn|expand_relu|dw_conv|dw_bn|dw_relu"
    r"|project_conv|project_bn))$"
)


def _names(model):
    return [layer.name for layer in model.layers]


def _count(model, cls):
    return sum(type(layer) is cls for layer in model.layers)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize(
    "input_shape,classes", [((28, 28, 1), 10), ((32, 32, 3), 7)]
)
def test_builds_and_runs(name, input_shape, classes):
    model = zoo.get(name, input_shape=input_shape, classes=classes)
    assert model.output_shape == (None, classes)
    x = np.random.default_rng(0).random((2,) + input_shape, dtype=np.float32)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, classes)
    assert np.all(np.isfinite(y))
    names = _names(model)
    assert len(names) == len(set(names))
    bad = [n for n in names if not NAME_PATTERN.match(n)]
    assert not bad, bad


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2", "vgg11"])
def test_names_are_stable(name):
    first = _names(zoo.get(name, input_shape=(28, 28, 1)))
    second = _names(zoo.get(name, input_shape=(28, 28, 1)))
    assert first == second


def test_resnet20_parameter_count():
    model = zoo.resnet20(input_shape=(32, 32, 3), classes=10)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # He et al. report 0.27M; option-B projections add ~3k.
    assert trainable == 272_474


@pytest.mark.parametrize("depth,blocks", [(20, 3), (32, 5), (56, 9)])
def test_resnet_structure(depth, blocks):
    model = zoo.resnet(depth, input_shape=(32, 32, 3))
    names = set(_names(model))
    assert _count(model, keras.layers.Add) == 3 * blocks
    # 2 convs per block, the stem, and 2 projection shortcuts.
    assert _count(model, keras.layers.Conv2D) == 6 * blocks + 3
    for expected in (
        "stage1_block0_conv1",
        "stage1_block0_bn1",
        "stage1_block0_add",
        f"stage3_block{blocks - 1}_relu2",
        "stage2_block0_shortcut_conv",
        "stage3_block0_shortcut_bn",
    ):
        assert expected in names
    # Only the shape-changing blocks project.
    assert "stage1_block0_shortcut_conv" not in names
    assert "stage2_block1_shortcut_conv" not in names
    assert model.get_layer("stage2_block0_conv1").strides == (2, 2)
    assert model.get_layer("stage2_block0_shortcut_conv").kernel_size == (1, 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert not layer.use_bias
            assert layer.kernel_regularizer is None
    assert model.get_layer("stage3_block0_conv2").filters == 64


def test_resnet_width():
    model = zoo.resnet20(width=8)
    assert model.get_layer("stem_conv").filters == 8
    assert model.get_layer("stage3_block2_conv2").filters == 32


@pytest.mark.parametrize(
    "input_shape,pools", [((32, 32, 3), 5), ((28, 28, 1), 4), ((8, 8, 3), 3)]
)
def test_vgg_pooling_stops_at_one_pixel(input_shape, pools):
    model = zoo.vgg11(input_shape=input_shape, width=0.125)
    assert _count(model, keras.layers.MaxPooling2D) == pools
    assert model.get_layer("avg_pool").input.shape[1:3] == (1, 1)


@pytest.mark.parametrize("depth,convs", [(11, 8), (16, 13)])
def test_vgg_structure(depth, convs):
    model = zoo.vgg(depth, width=0.5)
    assert _count(model, keras.layers.Conv2D) == convs
    assert _count(model, keras.layers.BatchNormalization) == convs
    assert model.get_layer("stage1_conv1").filters == 32
    assert model.get_layer("stage5_conv1").filters == 256
    tiny = zoo.vgg(depth, width=0.001)
    assert tiny.get_layer("stage1_conv1").filters == 1


def test_mobilenet_v2_structure():
    model = zoo.mobilenet_v2(input_shape=(32, 32, 3), alpha=0.75)
    names = set(_names(model))
    # t == 1 has no expansion; residual only at stride 1 with equal widths.
    assert "stage1_block0_expand_conv" not in names
    assert "stage1_block0_add" not in names
    assert "stage2_block0_add" not in names
    residual = {"stage2_block1_add", "stage3_block2_add", "stage4_block1_add"}
    assert residual <= names
    assert _count(model, keras.layers.Add) == 4
    assert _count(model, keras.layers.DepthwiseConv2D) == 9
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(
            layer, keras.layers.DepthwiseConv2D
        ):
            assert layer.filters % 8 == 0, layer.name
    assert model.get_layer("stage3_block0_dw_conv").strides == (2, 2)
    assert model.get_layer("head_relu").output.shape[1:3] == (8, 8)


@given(st.floats(min_value=0.5, max_value=4096.0))
def test_make_divisible(value):
    result = zoo._make_divisible(value)
    assert result % 8 == 0
    assert result >= 8
    assert result >= 0.9 * value


def test_classifier_activation():
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    logits_model = zoo.resnet20(input_shape=(28, 28, 1), width=4)
    assert logits_model.get_layer("predictions").activation is (
        keras.activations.linear
    )
    model = zoo.resnet20(
        input_shape=(28, 28, 1), width=4, classifier_activation="softmax"
    )
    probs = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# Keras's own saving code trips a numpy 2 DeprecationWarning (not ours).
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)
@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("resnet20", {"width": 8}),
        ("vgg11", {"width": 0.125}),
        ("mobilenet_v2", {"alpha": 0.35}),
    ],
)
def test_save_and_load_roundtrip(tmp_path, name, kwargs):
    model = zoo.get(name, input_shape=(28, 28, 1), classes=5, **kwargs)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert _names(loaded) == _names(model)
    x = np.random.default_rng(2).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_get_names_and_errors():
    assert zoo.get("ResNet20", input_shape=(28, 28, 1)).name == "resnet20"
    assert zoo.get("mobilenet-v2", name="mnv2").name == "mnv2"
    with pytest.raises(ValueError, match="resnet20.*mobilenet_v2"):
        zoo.get("resnet18")


@pytest.mark.parametrize(
    "build",
    [
        lambda: zoo.resnet(21),
        lambda: zoo.vgg(12),
        lambda: zoo.resnet20(input_shape=(32, 32)),
        lambda: zoo.vgg11(classes=0),
        lambda: zoo.mobilenet_v2(alpha=0),
        lambda: zoo.resnet20(width=0),
    ],
)
def test_invalid_arguments(build):
    with pytest.raises(ValueError):
        build()
