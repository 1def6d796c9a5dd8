"""The cost model against an independent count."""

import math

import keras
import numpy as np
from keras import layers

import tfprune
from tfprune import zoo


def independent_macs(model):
    """MACs of Conv2D/Depthwise/Dense from the built layers' own shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            h, w = layer.output.shape[1:3]
            total += h * w * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Conv2D):  # includes no depthwise here
            h, w = layer.output.shape[1:3]
            total += h * w * math.prod(layer.kernel.shape) // layer.groups
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.kernel.shape)
    return total


def test_macs_and_params_of_zoo_models():
    for model in (zoo.resnet20(input_shape=(28, 28, 1)),
                  zoo.vgg11(input_shape=(28, 28, 1), width=0.25),
                  zoo.mobilenet_v2(input_shape=(32, 32, 3))):
        c = tfprune.cost(model)
        assert c.macs == independent_macs(model), model.name
        assert c.params == model.count_params()
        assert sum(lc.params for lc in c.per_layer.values()) == c.params


def test_resnet20_cifar_macs_match_the_published_figure():
    # He et al.'s ResNet-20 on 32x32 is quoted at ~41M FLOPs (multiply-adds).
    c = tfprune.cost(zoo.resnet20(input_shape=(32, 32, 3)))
    assert 40e6 < c.macs < 42e6


def test_cost_of_a_plan_counts_kept_channels():
    inputs = keras.Input((10, 10, 3))
    x = layers.Conv2D(8, 3, use_bias=False, name="c1")(inputs)  # 8x8x8
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(4, 3, name="c2")(x)  # 6x6x4
    outputs = layers.Dense(2, name="head")(layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("c1").id: [0, 1, 2], graph.group_of("c2").id: [3]})
    c = tfprune.cost(model, plan)
    assert c.per_layer["c1"].macs == 8 * 8 * 9 * 3 * 3
    assert c.per_layer["c1"].params == 9 * 3 * 3
    assert c.per_layer["bn"].params == 4 * 3
    assert c.per_layer["c2"].macs == 6 * 6 * 9 * 3 * 1
    assert c.per_layer["head"].params == 36 * 1 * 2 + 2
    assert c.params == tfprune.rebuild(model, plan).count_params()


def test_soft_counts_are_differentiable_arithmetic():
    from tfprune.core.cost import node_cost

    model = zoo.resnet20(input_shape=(16, 16, 1))
    graph = tfprune.analyze(model)
    half = {k: len(v) / 2 for k, v in graph.channels.items()}
    macs = sum(node_cost(graph, n, lambda k: half[k])[1] for n in graph.nodes)
    assert np.isclose(macs, tfprune.cost(model).macs / 4, rtol=0.05)
