"""The rebuilder's contract: a slim model computes what the original computes
with the removed channels zeroed where they are consumed."""

import keras
import numpy as np
import pytest
from conftest import assert_close, random_plan, randomize_bn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers
from models import cnns
from oracle import masked_reference

import tfprune

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _inputs(model, seed=0, n=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + tuple(model.input_shape[1:])).astype("float32")


def _equivalent(model, plan, x):
    slim = tfprune.rebuild(model, plan)
    assert_close(masked_reference(model, plan, x), slim(x, training=False))
    return slim


@PROPERTY
@given(model=cnns(), seed=st.integers(0, 2**16))
def test_rebuild_matches_masked_activations(model, seed):
    randomize_bn(model, seed)
    graph = tfprune.analyze(model)
    plan = random_plan(graph, np.random.default_rng(seed))
    slim = _equivalent(model, plan, _inputs(model, seed))
    assert tfprune.cost(model, plan).params == slim.count_params()


@PROPERTY
@given(model=cnns(max_blocks=3), seed=st.integers(0, 2**16))
def test_zero_out_matches_masked_activations(model, seed):
    randomize_bn(model, seed)
    plan = random_plan(tfprune.analyze(model), np.random.default_rng(seed))
    x = _inputs(model, seed)
    zeroed = tfprune.core.rebuild.zero_out(model, plan)
    assert zeroed.count_params() == model.count_params()
    assert_close(masked_reference(model, plan, x), zeroed(x, training=False))


@PROPERTY
@given(model=cnns())
def test_keep_everything_reproduces_original_exactly(model):
    randomize_bn(model)
    graph = tfprune.analyze(model)
    slim = tfprune.rebuild(model, graph.plan())
    x = _inputs(model)
    np.testing.assert_array_equal(model(x, training=False), slim(x, training=False))
    assert slim.count_params() == model.count_params()
    assert tfprune.cost(model).params == model.count_params()


@PROPERTY
@given(model=cnns(max_blocks=3), seed=st.integers(0, 2**16))
def test_original_model_is_never_modified(model, seed):
    before = [w.copy() for w in model.get_weights()]
    config = model.get_config()
    plan = random_plan(tfprune.analyze(model), np.random.default_rng(seed))
    tfprune.rebuild(model, plan)
    tfprune.core.rebuild.zero_out(model, plan)
    assert model.get_config() == config
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


APPLICATIONS = {
    "ResNet50": lambda: keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3)),
    "MobileNetV2": lambda: keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3)),
    "DenseNet121": lambda: keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3)),
    "EfficientNetB0": lambda: keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3)),
    "MobileNetV3Small": lambda: keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3)),
}
_MIXING = (layers.Conv1D, layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D,
           layers.Dense)


@pytest.mark.slow_on_jax
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications(name):
    model = randomize_bn(APPLICATIONS[name]())
    graph = tfprune.analyze(model)
    mixing = [layer.name for layer in model.layers if isinstance(layer, _MIXING)]
    prunable = [n for n in mixing if graph.group_of(n).prunable]
    # The classifier's outputs are the model's outputs: never prunable.
    assert len(prunable) / len(mixing) >= 0.85, graph.summary()
    plan = random_plan(graph, np.random.default_rng(1))
    slim = _equivalent(model, plan, _inputs(model))
    assert tfprune.cost(model, plan).params == slim.count_params()
    assert tfprune.cost(model).params == model.count_params()


@pytest.mark.slow_on_jax
def test_weights_without_names_of_their_own_are_copied_by_position():
    """ConvNeXt's layer-scale weights get generated names ("variable_18")
    that differ between the model and its rebuilt copy."""
    model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3),
                                            classes=10)
    graph = tfprune.analyze(model)
    assert len(graph.prunable_groups) > 10
    plan = random_plan(graph, np.random.default_rng(2))
    slim = _equivalent(model, plan, _inputs(model))
    assert tfprune.cost(model, plan).params == slim.count_params()


def test_names_dtype_policy_and_trainable_flags_survive(tmp_path, rng):
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(6, 3, name="first", dtype="mixed_float16")(inputs)
    x = layers.BatchNormalization(name="bn", trainable=False)(x)
    x = layers.Conv2D(5, 3, name="second")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(2, name="head", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="mixed")
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("first").id: [0, 2, 3],
                       graph.group_of("second").id: [1, 4]})
    slim = tfprune.rebuild(model, plan)
    assert [l.name for l in slim.layers] == [l.name for l in model.layers]
    assert slim.get_layer("first").dtype_policy.name == "mixed_float16"
    assert slim.get_layer("bn").trainable is False
    assert slim.get_layer("first").filters == 3
    assert slim.get_layer("second").filters == 2
    path = tmp_path / "slim.keras"
    slim.save(path)
    loaded = keras.saving.load_model(path)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), slim(x), rtol=1e-6)


def test_sequential_model(rng):
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, name="c1"),
        layers.ReLU(name="r1"),
        layers.Conv2D(6, 3, name="c2"),
        layers.Flatten(name="flat"),
        layers.Dense(3, name="out"),
    ])
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("c1").id: [1, 3], graph.group_of("c2").id: [0, 5]})
    slim = _equivalent(model, plan, rng.normal(size=(2, 8, 8, 1)).astype("float32"))
    assert isinstance(slim, keras.Sequential)
    assert slim.get_layer("out").kernel.shape == (4 * 4 * 2, 3)


def test_nested_functional_model(rng):
    inner_in = keras.Input((8, 8, 4), name="inner_in")
    y = layers.Conv2D(5, 3, padding="same", name="inner_conv")(inner_in)
    y = layers.BatchNormalization(name="inner_bn")(y)
    inner = keras.Model(inner_in, y, name="block")
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="outer_conv")(inputs)
    x = inner(x)
    x = layers.Conv2D(3, 1, name="after")(x)
    outputs = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(x))
    model = randomize_bn(keras.Model(inputs, outputs))
    graph = tfprune.analyze(model)
    assert graph.group_of("block/inner_conv").prunable
    plan = graph.plan({graph.group_of("outer_conv").id: [0, 3],
                       graph.group_of("block/inner_conv").id: [1, 2, 4]})
    slim = _equivalent(model, plan, rng.normal(size=(2, 8, 8, 3)).astype("float32"))
    assert slim.get_layer("block").get_layer("inner_conv").kernel.shape == (3, 3, 2, 3)


def test_shared_layer_is_sliced_once(rng):
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    shared = layers.Conv2D(5, 1, name="shared")
    x = layers.Add(name="add")([shared(a), shared(b)])
    outputs = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    graph = tfprune.analyze(model)
    assert graph.group_of("a") is graph.group_of("b")  # both feed one kernel
    plan = graph.plan({graph.group_of("a").id: [0, 2], graph.group_of("shared").id: [1, 4]})
    _equivalent(model, plan, rng.normal(size=(2, 8, 8, 3)).astype("float32"))


def test_plan_from_another_instance_of_the_same_model(rng):
    def make():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((6, 6, 2))
        x = layers.Conv2D(4, 3, name="c")(inputs)
        return keras.Model(inputs, layers.Dense(2, name="d")(layers.Flatten()(x)))

    a, b = make(), make()
    plan = tfprune.analyze(a).plan({tfprune.analyze(a).group_of("c").id: [0, 1]})
    assert tfprune.rebuild(b, plan).get_layer("c").filters == 2


def test_other_supported_layers(rng):
    inputs = keras.Input((10, 10, 3))
    x = layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    norm = layers.Normalization(name="norm")
    norm.adapt(rng.normal(size=(16, 10, 10, 3)).astype("float32"))
    x = norm(x)
    x = layers.Conv2D(6, 3, name="c1")(x)
    x = layers.ZeroPadding2D(1, name="pad")(x)
    x = layers.Cropping2D(1, name="crop")(x)
    x = layers.UpSampling2D(2, name="up")(x)
    x = layers.Dropout(0.3, name="drop")(x)
    x = layers.SpatialDropout2D(0.3, name="sdrop")(x)
    x = layers.ELU(name="elu")(x)
    x = layers.Softmax(axis=1, name="spatial_softmax")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.Dense(5, name="dense4d")(x)  # acts on the last axis
    x = layers.Conv2DTranspose(4, 3, strides=2, name="tconv")(x)
    x = layers.GlobalMaxPooling2D(keepdims=True, name="gmax")(x)
    x = layers.Flatten(name="flat")(x)
    outputs = layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    graph = tfprune.analyze(model)
    assert not graph.barriers, graph.summary()
    for name in ("c1", "dense4d", "tconv"):
        assert graph.group_of(name).prunable
    plan = random_plan(graph, rng)
    slim = _equivalent(model, plan, rng.normal(size=(2, 10, 10, 3)).astype("float32"))
    assert tfprune.cost(model, plan).params == slim.count_params()


def test_conv1d_sequence_model(rng):
    inputs = keras.Input((20, 4))
    x = layers.Conv1D(8, 3, name="c1")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.SeparableConv1D(6, 3, name="sep")(x)
    x = layers.MaxPooling1D(2, name="pool")(x)
    x = layers.DepthwiseConv1D(3, name="dw")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = layers.Dense(3, name="head")(x)
    model = randomize_bn(keras.Model(inputs, outputs))
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("c1").id: [0, 4, 5], graph.group_of("sep").id: [1, 2]})
    slim = _equivalent(model, plan, rng.normal(size=(2, 20, 4)).astype("float32"))
    assert slim.get_layer("dw").kernel.shape == (3, 2, 1)
