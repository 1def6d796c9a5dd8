"""The layer registry: a user's layer registered with `tfprune.register_layer`
is analysed, costed, pruned, rebuilt and saved like a built-in one."""

import keras
import numpy as np
import pytest
from conftest import assert_close, random_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers
from oracle import masked_reference

import tfprune
from tfprune.core.registry import spec_for


@keras.saving.register_keras_serializable(package="tfprune_tests")
class ScaledDense(keras.layers.Layer):
    """A dense layer with its own kernel, bias and a fixed output scale."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.scale = float(scale)

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1], self.units),
                                 initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="normal")

    def call(self, inputs):
        return self.scale * (keras.ops.matmul(inputs, self.w) + self.b)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


@keras.saving.register_keras_serializable(package="tfprune_tests")
class ChannelShift(keras.layers.Layer):
    """Adds a learned offset to each channel (elementwise, one weight)."""

    def build(self, input_shape):
        self.offset = self.add_weight(name="offset", shape=(input_shape[-1],),
                                      initializer="normal")

    def call(self, inputs):
        return inputs + self.offset


@keras.saving.register_keras_serializable(package="tfprune_tests")
class Unregistered(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


tfprune.register_layer(ScaledDense, tfprune.LayerSpec(
    kind="mixer", width_key="units",
    weights={"w": {"in": 0, "out": 1}, "b": {"out": 0}}))
tfprune.register_layer(ChannelShift, tfprune.LayerSpec(
    kind="elementwise", weights={"offset": {"in": -1}}))


def _model(width=8):
    inputs = keras.Input((6, 6, 3))
    x = layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = ChannelShift(name="shift")(x)
    x = ScaledDense(width, scale=0.5, name="mine")(x)  # acts on the last axis
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs, name="custom")


def _x(n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 6, 6, 3)).astype("float32")


def test_custom_layer_is_pruned_like_a_builtin(tmp_path):
    keras.utils.set_random_seed(0)
    model = _model()
    graph = tfprune.analyze(model)
    assert not graph.barriers, graph.summary()
    mine = graph.group_of("mine")
    assert mine.prunable and mine.producers == ["mine"] and mine.consumers == ["head"]
    conv = graph.group_of("conv")
    assert conv.prunable and "mine" in conv.consumers and "shift" in conv.layers
    assert graph.node("mine").kind == "mixer" and graph.node("shift").kind == "channelwise"
    # cost counts it: (6 x 8 weights + 8 biases) per layer, 36 positions
    full = tfprune.cost(model)
    assert full.per_layer["mine"].params == 6 * 8 + 8
    assert full.per_layer["mine"].macs == 36 * 6 * 8
    assert full.per_layer["shift"].params == 6
    assert full.params == model.count_params()

    plan = graph.plan({mine.id: [1, 2, 6], conv.id: [0, 4]})
    slim = tfprune.rebuild(model, plan)
    assert slim.get_layer("mine").units == 3
    assert slim.get_layer("mine").w.shape == (2, 3)
    assert slim.get_layer("shift").offset.shape == (2,)
    np.testing.assert_array_equal(
        slim.get_layer("mine").w, model.get_layer("mine").w.numpy()[[0, 4]][:, [1, 2, 6]])
    x = _x()
    assert_close(masked_reference(model, plan, x), slim(x))
    after = tfprune.cost(model, plan)
    assert after.per_layer["mine"].params == 2 * 3 + 3
    assert after.per_layer["mine"].macs == 36 * 2 * 3
    assert after.params == slim.count_params()
    assert tfprune.cost(slim).macs == after.macs

    path = tmp_path / "slim.keras"
    slim.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("mine"), ScaledDense)
    np.testing.assert_allclose(loaded(x), slim(x), rtol=1e-6)


def test_importance_and_group_lasso_read_the_spec():
    keras.utils.set_random_seed(1)
    model = _model()
    graph = tfprune.analyze(model)
    scores = tfprune.ranking.importance.magnitude(graph)
    w = model.get_layer("mine").w.numpy()
    np.testing.assert_allclose(scores[graph.group_of("mine").id], np.abs(w).sum(0),
                               rtol=1e-6)
    lasso = tfprune.methods.regularizers.GroupLasso(graph)
    sides = {(s.layer, s.side) for s in tfprune.methods.regularizers.channel_slices(graph)}
    assert ("mine", "input") in sides and ("mine", "output") in sides
    assert float(lasso()) > 0
    # the prune() front door ranks and removes its channels too
    plan = tfprune.prune(model, target_macs=0.6)
    assert plan.widths()[graph.group_of("mine").id] < 8


PROPERTY = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(width=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_random_plans_match_the_masked_reference(width, seed):
    keras.utils.set_random_seed(seed % 1000)
    model = _model(width)
    graph = tfprune.analyze(model)
    plan = random_plan(graph, np.random.default_rng(seed))
    slim = tfprune.rebuild(model, plan)
    x = _x(seed=seed)
    assert_close(masked_reference(model, plan, x), slim(x))
    assert tfprune.cost(model, plan).params == slim.count_params()


def test_unregistered_custom_layer_is_a_barrier_that_says_how_to_register():
    inputs = keras.Input((6, 6, 3))
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = Unregistered(name="twice")(x)
    outputs = layers.Dense(2, name="head")(layers.Flatten()(x))
    graph = tfprune.analyze(keras.Model(inputs, outputs))
    [barrier] = graph.barriers
    assert barrier.layer == "twice" and "tfprune.register_layer(Unregistered" in barrier.reason
    assert not graph.group_of("conv").prunable
    assert spec_for(Unregistered) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="mixing", width_key="units"), "unknown layer kind 'mixing'"),
    (dict(kind="mixer"), "width_key"),
    (dict(kind="mixer", width_key="units", weights={"w": {"input": 0}}), "weight 'w'"),
    (dict(kind="mixer", width_key="units", weights={"w": {"in": "0"}}), "must be an int"),
    (dict(kind="elementwise", weights={"g": {"in": -1, "out": -1}}), "'in' only"),
    (dict(kind="mixer", width_key="units", macs=3), "macs must be a function"),
    (dict(kind="mixer", width_key="units", positions="middle"), "positions"),
])
def test_bad_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfprune.LayerSpec(**kwargs)


def test_register_layer_checks_its_arguments():
    with pytest.raises(ValueError, match="LayerSpec"):
        tfprune.register_layer(ScaledDense, {"kind": "mixer"})
    with pytest.raises(ValueError, match="layer class"):
        tfprune.register_layer(ScaledDense(3), tfprune.LayerSpec(kind="elementwise"))


def test_weight_axis_out_of_range_is_a_clear_error():
    @keras.saving.register_keras_serializable(package="tfprune_tests")
    class BadAxes(ScaledDense):
        pass

    tfprune.register_layer(BadAxes, tfprune.LayerSpec(
        kind="mixer", width_key="units",
        weights={"w": {"in": 0, "out": 2}, "b": {"out": 0}}))
    inputs = keras.Input((5,))
    outputs = layers.Dense(2, name="head")(BadAxes(4, name="bad")(inputs))
    with pytest.raises(tfprune.UnsupportedLayerError, match=r"'bad'.*axis out=2 is out of range"):
        tfprune.analyze(keras.Model(inputs, outputs))


def test_unlisted_weight_makes_a_barrier():
    @keras.saving.register_keras_serializable(package="tfprune_tests")
    class HalfDescribed(ScaledDense):
        pass

    tfprune.register_layer(HalfDescribed, tfprune.LayerSpec(
        kind="mixer", width_key="units", weights={"w": {"in": 0, "out": 1}}))
    inputs = keras.Input((5,))
    x = layers.Dense(4, name="first")(inputs)
    outputs = layers.Dense(2, name="head")(HalfDescribed(4, name="half")(x))
    graph = tfprune.analyze(keras.Model(inputs, outputs))
    assert [b.layer for b in graph.barriers] == ["half"]
    assert "b" in graph.barriers[0].reason


def test_builtin_layers_are_registered_through_the_same_table():
    for cls in (layers.Conv2D, layers.Dense, layers.DepthwiseConv2D,
                layers.BatchNormalization, layers.ReLU, layers.Conv2DTranspose):
        assert isinstance(spec_for(cls), tfprune.LayerSpec)
    assert spec_for(layers.Dense).width_key == "units"
    assert spec_for(layers.Conv2D).width_key == "filters"
    assert spec_for(layers.Conv2D).kernel_axes == (0, 1)
    assert spec_for(layers.Add) is None  # merges are structural, not specs


@keras.saving.register_keras_serializable(package="tfprune_tests")
class TapConv(keras.layers.Layer):
    """A 2-D convolution written from scratch (no Keras conv base class), its
    kernel size under the config entry "taps"."""

    def __init__(self, filters, taps, strides=1, padding="same", dilation_rate=1,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.taps = tuple(taps) if not isinstance(taps, int) else (taps, taps)
        self.strides, self.padding, self.dilation_rate = strides, padding, dilation_rate

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=self.taps + (input_shape[-1], self.filters),
                                 initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.filters,), initializer="normal")

    def call(self, inputs):
        return keras.ops.conv(inputs, self.w, strides=self.strides, padding=self.padding,
                              dilation_rate=self.dilation_rate) + self.b

    def compute_output_shape(self, input_shape):
        probe = keras.layers.Conv2D(self.filters, self.taps, strides=self.strides,
                                    padding=self.padding, dilation_rate=self.dilation_rate)
        return probe.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "taps": list(self.taps),
                "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation_rate}


tfprune.register_layer(TapConv, tfprune.LayerSpec(
    kind="mixer", width_key="filters", weights={"w": {"in": -2, "out": -1}, "b": {"out": 0}},
    kernel_size_key="taps", kernel_axes=(0, 1), spatial_kernel="w"))


def _ring_zeroed(model, kernels, weight):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, size in kernels.items():
        w = getattr(copy.get_layer(name), weight[name])
        value = keras.ops.convert_to_numpy(w).copy()
        keep = np.zeros(value.shape[:2], dtype=bool)
        keep[tuple(slice((k - s) // 2, (k + s) // 2) for k, s in zip(keep.shape, size))] = True
        value[~keep] = 0.0
        w.assign(value)
    return copy


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "same"), (1, "valid")])
def test_custom_layer_declaring_a_spatial_kernel_gets_kernel_size_pruning(strides, padding):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((9, 9, 3))
    x = TapConv(6, 5, strides=strides, padding=padding, name="mine")(inputs)
    x = layers.ReLU(name="relu")(x)
    outputs = layers.Conv2D(2, 3, padding="same", name="head")(x)
    model = keras.Model(inputs, outputs)
    graph = tfprune.analyze(model)
    kernels = {"mine": (3, 1) if strides == 1 else (1, 1), "head": (1, 3)}
    plan = graph.plan({graph.group_of("mine").id: [0, 2, 5]}, kernels=kernels)
    assert plan.kernels == kernels
    slim = tfprune.rebuild(model, plan)
    assert tuple(slim.get_layer("mine").taps) == kernels["mine"]
    assert slim.get_layer("mine").w.shape == kernels["mine"] + (3, 3)
    x = np.random.default_rng(4).normal(size=(2, 9, 9, 3)).astype("float32")
    reference = _ring_zeroed(model, kernels, {"mine": "w", "head": "kernel"})
    assert_close(masked_reference(reference, plan, x), slim(x))
    assert tfprune.cost(model, plan).params == slim.count_params()
    assert tfprune.cost(model, plan).macs == tfprune.cost(slim).macs


def test_kernel_size_of_a_layer_without_spatial_kernel_is_refused():
    model = _model()
    with pytest.raises(tfprune.InvalidPlanError, match="'mine' is a ScaledDense.*TapConv"):
        tfprune.analyze(model).plan(kernels={"mine": 1})


@pytest.mark.parametrize("kwargs, message", [
    (dict(spatial_kernel="w"), "needs kernel_size_key"),
    (dict(spatial_kernel="w", kernel_size_key="k", kernel_axes=(1, 2)), "leading axes"),
    (dict(spatial_kernel="kernel", kernel_size_key="k", kernel_axes=(0,)), "not one of"),
])
def test_bad_spatial_kernel_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfprune.LayerSpec(kind="mixer", width_key="filters",
                          weights={"w": {"in": -2, "out": -1}}, **kwargs)


def test_builtin_spatial_kernels():
    assert spec_for(layers.Conv2D).spatial_kernel == "kernel"
    assert spec_for(layers.DepthwiseConv1D).spatial_kernel == "kernel"
    assert spec_for(layers.SeparableConv2D).spatial_kernel == "depthwise_kernel"
    for cls in (layers.Conv3D, layers.Conv2DTranspose, layers.Dense):
        assert spec_for(cls).spatial_kernel is None


@keras.saving.register_keras_serializable(package="tfprune_tests")
class MyConv2D(layers.Conv2D):
    """A Keras Conv2D subclass (its own class, so it needs its own spec)."""


tfprune.register_layer(MyConv2D, tfprune.LayerSpec(
    kind="mixer", width_key="filters", weights={"kernel": {"in": -2, "out": -1},
                                                "bias": {"out": 0}},
    groups_key="groups", kernel_size_key="kernel_size", kernel_axes=(0, 1),
    spatial_kernel="kernel"))


def test_smof_masks_the_kernels_of_registered_convolutions_it_can_run():
    from tfprune.methods.smof.ring_masks import maskable

    inputs = keras.Input((8, 8, 3))
    x = MyConv2D(4, 3, padding="same", name="sub")(inputs)
    x = TapConv(4, 3, name="tap")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(2, name="head")(x))
    assert maskable(model.get_layer("sub")) and not maskable(model.get_layer("tap"))
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.5))
    kinds = {layer.name: type(layer).__name__ for layer in masked.layers}
    assert kinds["sub"] == "KernelRingMask" and kinds["tap"] == "TapConv"
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    assert_close(model(x), masked(x))  # masks start at 1: same function
