"""Kernel sizes in plans: a rebuilt model with smaller kernels computes what
the original computes with the removed kernel rings (and channels) zeroed."""

import json

import keras
import numpy as np
import pytest
from conftest import assert_close, random_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers

import tfprune
from tfprune.core import kernels as kernel_plans

PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

CONV_TYPES = {1: ("Conv1D", "DepthwiseConv1D", "SeparableConv1D"),
              2: ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")}


@st.composite
def conv_stacks(draw):
    """Random conv stacks: (model, rank). Kernels 1/3/5, strides 1/2,
    dilations 1/2, same/valid (and causal in 1-D) padding."""
    rank = draw(st.sampled_from([1, 2, 2]))
    size = draw(st.integers(11, 20))
    channels = draw(st.integers(2, 4))
    shape = (size,) * rank + (channels,)
    sequential = draw(st.booleans())
    specs, n = [], size
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(CONV_TYPES[rank]))
        k = draw(st.sampled_from([1, 3, 5]))
        stride = draw(st.sampled_from([1, 2]))
        dilation = 1 if stride > 1 else draw(st.sampled_from([1, 2, 2]))
        paddings = ["same", "valid"] + (["causal"] if kind == "Conv1D" else [])
        padding = draw(st.sampled_from(paddings))
        extent = dilation * (k - 1) + 1
        if padding == "valid" and n < extent + 1:
            padding = "same"
        n = -(-n // stride) if padding != "valid" else (n - extent) // stride + 1
        kwargs = dict(kernel_size=k, strides=stride, dilation_rate=dilation,
                      padding=padding, name=f"{kind.lower()}_{i}")
        if kind.startswith("Depthwise"):
            kwargs["depth_multiplier"] = draw(st.sampled_from([1, 2]))
        else:
            kwargs["filters"] = draw(st.integers(2, 6))
        specs.append((kind, kwargs, draw(st.booleans())))
    built = []
    for kind, kwargs, bn in specs:
        built.append(getattr(layers, kind)(**kwargs))
        if bn:
            built.append(layers.BatchNormalization(name=kwargs["name"] + "_bn"))
            built.append(layers.ReLU(name=kwargs["name"] + "_relu"))
    built.append(layers.Conv1D(3, 1, name="head") if rank == 1
                 else layers.Conv2D(3, 1, name="head"))
    if sequential:
        model = keras.Sequential([keras.Input(shape)] + built, name="stack")
    else:
        x = inputs = keras.Input(shape)
        for layer in built:
            x = layer(x)
        model = keras.Model(inputs, x, name="stack")
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for layer in model.layers:  # non-zero biases and BN statistics
        for w in layer.weights:
            w.assign(rng.normal(0.3, 0.5, tuple(w.shape)).astype("float32")
                     if w.name != "moving_variance"
                     else rng.uniform(0.5, 2.0, tuple(w.shape)).astype("float32"))
    return model, rank


def random_kernels(model, rng):
    out = {}
    for layer in model.layers:
        if kernel_plans.spatial_kernel(layer) and layer.name != "head":
            size = tuple(int(rng.choice(range(1, k + 1, 2))) for k in layer.kernel_size)
            if rng.random() < 0.8:
                out[layer.name] = size
    return out


def ring_zeroed(model, kernels):
    """An independent reference: a copy with each kernel's outer ring zeroed."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, size in kernels.items():
        layer = copy.get_layer(name)
        weight = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        value = keras.ops.convert_to_numpy(weight).copy()
        mask = np.zeros(value.shape[:len(size)], dtype=bool)
        mask[tuple(slice((k - s) // 2, (k + s) // 2) for k, s in zip(mask.shape, size))] = True
        value[~mask] = 0.0
        weight.assign(value)
    return copy


def _x(model, seed=0):
    return np.random.default_rng(seed).normal(
        size=(2,) + tuple(model.input_shape[1:])).astype("float32")


@PROPERTY
@given(stack=conv_stacks(), seed=st.integers(0, 2**16), prune_channels=st.booleans())
def test_rebuilt_kernels_match_zeroed_ring(stack, seed, prune_channels):
    model, _ = stack
    rng = np.random.default_rng(seed)
    graph = tfprune.analyze(model)
    channels = random_plan(graph, rng, keep_all=not prune_channels)
    kernels = random_kernels(model, rng)
    plan = graph.plan(channels.keep, kernels=kernels)
    slim = tfprune.rebuild(model, plan)
    reference = tfprune.core.rebuild.zero_out(ring_zeroed(model, kernels), channels)
    x = _x(model, seed)
    want = reference(x, training=False)
    assert_close(want, slim(x, training=False))
    assert_close(want, tfprune.core.rebuild.zero_out(model, plan)(x, training=False))
    for name, size in plan.kernels.items():
        assert tuple(slim.get_layer(name).kernel_size) == size
    assert tfprune.cost(model, plan).params == slim.count_params()
    assert tfprune.cost(model, plan).macs == tfprune.cost(slim).macs


def test_same_padding_strided_shrink_to_1x1_keeps_values():
    # n = 10, stride 2, 3x3 'same': TF pads (0, 1); the centre tap alone
    # would need padding (-1, 0), i.e. a crop of one row/column in front.
    x = inputs = keras.Input((10, 10, 2))
    y = layers.Conv2D(3, 3, strides=2, padding="same", name="c")(x)
    model = keras.Model(inputs, y)
    plan = tfprune.analyze(model).plan(kernels={"c": (1, 1)})
    slim = tfprune.rebuild(model, plan)
    assert slim.get_layer("c").padding == "valid"
    assert "c_kcrop" in [layer.name for layer in slim.layers]
    x = _x(model)
    assert_close(ring_zeroed(model, {"c": (1, 1)})(x), slim(x))


def test_valid_padding_crops_by_the_ring():
    model = keras.Sequential([keras.Input((12, 12, 2)),
                              layers.Conv2D(3, 5, dilation_rate=2, name="c")])
    plan = tfprune.analyze(model).plan(kernels={"c": (3, 1)})
    slim = tfprune.rebuild(model, plan)
    crop = slim.get_layer("c_kcrop")
    assert tuple(map(tuple, crop.cropping)) == ((2, 2), (4, 4))
    assert slim.output_shape == model.output_shape
    x = _x(model)
    assert_close(ring_zeroed(model, {"c": (3, 1)})(x), slim(x))


def test_rebuilt_model_keras_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((9, 9, 3)),
                              layers.Conv2D(4, 3, strides=2, padding="same", name="a"),
                              layers.DepthwiseConv2D(3, name="b"),
                              layers.Conv2D(2, 1, name="head")])
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("a").id: [1, 3]}, kernels={"a": 1, "b": 1})
    slim = tfprune.rebuild(model, plan)
    path = tmp_path / "slim.keras"
    slim.save(path)
    again = keras.saving.load_model(path)
    x = _x(model)
    np.testing.assert_array_equal(slim(x), again(x))
    assert [layer.name for layer in again.layers] == [layer.name for layer in slim.layers]


def test_json_round_trip_and_identity():
    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 5, name="a"),
                              layers.SeparableConv2D(2, 3, name="b")])
    graph = tfprune.analyze(model)
    plan = graph.plan(kernels={"a": 3, "b": (3, 3)})
    assert plan.kernels == {"a": (3, 3)}  # b keeps its size: not listed
    assert not plan.is_identity
    data = json.loads(plan.to_json())
    assert data["kernels"] == {"a": [3, 3]}
    again = tfprune.PruningPlan.from_json(plan.to_json(), graph)
    assert again.kernels == plan.kernels
    assert tfprune.cost(model, again).macs < tfprune.cost(model).macs
    del data["kernels"]  # plans written before kernel sizes existed
    assert tfprune.PruningPlan.from_dict(data, graph).kernels == {}
    assert graph.plan().is_identity


def test_cost_counts_smaller_kernels():
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              layers.Conv2D(4, 3, padding="same", name="a")])
    plan = tfprune.analyze(model).plan(kernels={"a": 1})
    cost = tfprune.cost(model, plan)
    assert cost.params == 3 * 4 + 4
    assert cost.macs == 64 * 3 * 4


@pytest.mark.parametrize("kernels, message", [
    ({"a": 2}, "not a centred sub-kernel"),
    ({"a": 5}, "not a centred sub-kernel"),
    ({"a": (1, 1, 1)}, "3 sizes"),
    ({"a": "x"}, "not an int"),
    ({"d": 1}, "only"),
    ({"nope": 1}, "no layer named 'nope'"),
])
def test_bad_kernel_plans_are_rejected(kernels, message):
    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, name="a"),
                              layers.Flatten(name="f"), layers.Dense(2, name="d")])
    with pytest.raises(tfprune.InvalidPlanError, match=message):
        tfprune.analyze(model).plan(kernels=kernels)


def test_undefined_size_strided_same_needs_the_input_size():
    model = keras.Sequential([keras.Input((None, None, 3)),
                              layers.Conv2D(4, 3, strides=2, padding="same", name="a")])
    graph = tfprune.analyze(model)
    with pytest.raises(tfprune.InvalidPlanError, match="spatial size"):
        graph.plan(kernels={"a": 1})
    # at stride 1 (or a kernel still as wide as the stride) 'same' stays exact
    model = keras.Sequential([keras.Input((None, None, 3)),
                              layers.Conv2D(4, 5, strides=2, padding="same", name="a")])
    slim = tfprune.rebuild(model, tfprune.analyze(model).plan(kernels={"a": 3}))
    assert slim.get_layer("a").padding == "same"
    x = np.random.default_rng(0).normal(size=(2, 11, 7, 3)).astype("float32")
    assert_close(ring_zeroed(model, {"a": (3, 3)})(x), slim(x))


def test_axis_pads_matches_tf_same_padding():
    # brute force: the positions the original reads with its centre taps
    for n in range(4, 13):
        for k in (1, 3, 5):
            for kn in range(1, k + 1, 2):
                for s, d in ((1, 1), (2, 1), (1, 2), (3, 1)):
                    extent = d * (k - 1) + 1
                    out = -(-n // s)
                    total = max((out - 1) * s + extent - n, 0)
                    left = total // 2
                    r = (k - kn) // 2
                    first = -left + d * r  # first input position read
                    pl, pr = kernel_plans.axis_pads("same", n, k, kn, s, d)
                    assert first == -pl
                    assert (n + pl + pr - (d * (kn - 1) + 1)) // s + 1 == out


def test_weight_slicers_follow_the_kernel_plan():
    from tfprune.core.rebuild import weight_slicers

    model = keras.Sequential([keras.Input((9, 9, 3)),
                              layers.Conv2D(4, 5, padding="same", name="a"),
                              layers.SeparableConv2D(2, 3, name="b")])
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.group_of("a").id: [0, 3]}, kernels={"a": 3, "b": 1})
    slim = tfprune.rebuild(model, plan)
    slicers = weight_slicers(graph, plan.masks(), plan.kernels)
    for name in ("a", "b"):
        for w, new in zip(model.get_layer(name).weights, slim.get_layer(name).weights):
            sliced = slicers[((name,), w.name)](keras.ops.convert_to_numpy(w))
            np.testing.assert_array_equal(sliced, keras.ops.convert_to_numpy(new))
