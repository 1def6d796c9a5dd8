"""Channel groups and barriers found by tfprune.analyze."""

import keras
import numpy as np
import pytest
from keras import layers

import tfprune


def _model(build, shape=(8, 8, 3), name="m"):
    inputs = keras.Input(shape, name="image")
    return keras.Model(inputs, build(inputs), name=name)


def test_conv_bn_relu_chain_is_one_group_per_conv():
    def build(x):
        x = layers.Conv2D(6, 3, name="c1")(x)
        x = layers.BatchNormalization(name="bn")(x)
        x = layers.ReLU(name="relu")(x)
        x = layers.Conv2D(4, 3, name="c2")(x)
        return layers.Dense(2, name="head")(layers.GlobalAveragePooling2D(name="gap")(x))

    graph = tfprune.analyze(_model(build))
    g1, g2 = graph.group_of("c1"), graph.group_of("c2")
    assert (g1.size, g2.size) == (6, 4)
    assert g1.prunable and g2.prunable
    assert g1.producers == ["c1"] and g1.consumers == ["c2"]
    assert {"c1", "bn", "relu", "c2"} <= set(g1.layers)
    assert graph.group_of("bn") is g1
    assert not graph.group_of("head").prunable  # model output
    inputs = [g for g in graph.groups if g.producers == ["image"]]
    assert inputs and not inputs[0].prunable and "input" in inputs[0].reason


@pytest.mark.parametrize("merge", [layers.Add, layers.Subtract, layers.Multiply,
                                   layers.Average, layers.Maximum, layers.Minimum])
def test_merges_tie_their_inputs(merge):
    def build(x):
        a = layers.Conv2D(5, 1, name="a")(x)
        b = layers.Conv2D(5, 1, name="b")(x)
        y = merge(name="merge")([a, b])
        return layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(y))

    graph = tfprune.analyze(_model(build))
    assert graph.group_of("a") is graph.group_of("b")
    assert graph.group_of("a").producers == ["a", "b"]


def test_concatenate_places_groups_side_by_side():
    def build(x):
        a = layers.Conv2D(3, 1, name="a")(x)
        b = layers.Conv2D(4, 1, name="b")(x)
        y = layers.Concatenate(name="cat")([a, b])
        return layers.Conv2D(2, 1, name="out")(y)

    graph = tfprune.analyze(_model(build))
    ga, gb = graph.group_of("a"), graph.group_of("b")
    assert ga is not gb
    assert [g.id for g in graph.groups_of("cat")] == sorted([ga.id, gb.id])
    with pytest.raises(ValueError, match="several groups"):
        graph.group_of("cat")
    assert sorted(graph.group_of("out").producers) == ["out"]


def test_flatten_repeats_channels_over_positions():
    def build(x):
        x = layers.Conv2D(3, 3, name="c")(x)  # 6x6x3
        return layers.Dense(2, name="head")(layers.Flatten(name="flat")(x))

    graph = tfprune.analyze(_model(build))
    key = graph.node("flat").outputs[0]
    group = graph.group_of("c")
    assert len(graph.channels[key]) == 6 * 6 * 3
    np.testing.assert_array_equal(graph.channels[key][:6] - group.offset, [0, 1, 2, 0, 1, 2])


def test_squeeze_excite_shares_the_group():
    def build(x):
        x = layers.Conv2D(8, 3, name="c")(x)
        s = layers.GlobalAveragePooling2D(name="gap")(x)
        s = layers.Dense(2, activation="relu", name="squeeze")(s)
        s = layers.Dense(8, activation="sigmoid", name="excite")(s)
        s = layers.Reshape((1, 1, 8), name="reshape")(s)
        x = layers.Multiply(name="scale")([x, s])
        return layers.Conv2D(2, 1, name="out")(x)

    graph = tfprune.analyze(_model(build))
    assert graph.group_of("c") is graph.group_of("excite")
    assert graph.group_of("squeeze").prunable
    assert not graph.barriers


def test_depthwise_keeps_its_input_group_and_grouped_conv_is_fixed():
    def build(x):
        x = layers.Conv2D(8, 1, name="c")(x)
        x = layers.DepthwiseConv2D(3, name="dw")(x)
        x = layers.Conv2D(4, 1, groups=2, name="grouped")(x)
        return layers.Conv2D(2, 1, name="out")(x)

    graph = tfprune.analyze(_model(build))
    assert graph.group_of("c") is graph.group_of("dw")
    assert not graph.group_of("c").prunable
    assert "grouped" in graph.group_of("c").reason
    assert not graph.group_of("grouped").prunable


def test_unknown_layer_is_a_barrier_and_the_rest_is_still_pruned():
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    def build(x):
        a = layers.Conv2D(6, 3, name="before")(x)
        y = Twice(name="custom")(a)
        y = layers.Conv2D(5, 3, name="after")(y)
        y = layers.LayerNormalization(name="ln")(y)
        z = layers.Conv2D(4, 1, name="free")(y)
        return layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(z))

    graph = tfprune.analyze(_model(build))
    reasons = {b.layer: b.reason for b in graph.barriers}
    assert "custom" in reasons and "custom layer" in reasons["custom"]
    assert "ln" in reasons and "across channels" in reasons["ln"]
    assert not graph.group_of("before").prunable
    assert not graph.group_of("after").prunable
    assert graph.group_of("free").prunable
    assert "custom" in graph.summary()


def test_softmax_on_channels_and_channel_moving_reshape_are_barriers():
    def build(x):
        x = layers.Conv2D(4, 3, name="c")(x)
        x = layers.Softmax(name="sm")(x)
        y = layers.Conv2D(4, 3, name="d")(x)
        y = layers.Reshape((4, 4 * 4), name="mix")(y)
        return y

    graph = tfprune.analyze(_model(build))
    layers_ = {b.layer for b in graph.barriers}
    assert {"sm", "mix"} <= layers_
    assert not graph.group_of("c").prunable and not graph.group_of("d").prunable


def test_subclassed_model_gets_a_clear_error():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(tfprune.UnsupportedModelError, match="functional API"):
        tfprune.analyze(net)


def test_not_a_model_and_unbuilt_model():
    with pytest.raises(tfprune.UnsupportedModelError, match="keras.Model"):
        tfprune.analyze("model.keras")
    with pytest.raises(tfprune.UnsupportedModelError, match="not built"):
        tfprune.analyze(keras.Sequential([layers.Dense(3)]))


def test_keras_ops_in_the_graph():
    def build(x):
        x = layers.Conv2D(4, 3, name="c")(x)
        x = keras.ops.relu(x + 3.0) * 0.5
        return layers.Conv2D(2, 1, name="out")(x)

    graph = tfprune.analyze(_model(build))
    assert graph.group_of("c").prunable
    assert not graph.barriers


def test_unknown_layer_name():
    graph = tfprune.analyze(_model(lambda x: layers.Conv2D(2, 1, name="c")(x)))
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        graph.group_of("nope")
