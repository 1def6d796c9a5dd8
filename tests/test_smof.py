"""SMOF: kernel-ring masks and channel gates trained to a budget."""

import keras
import numpy as np
import pytest
from conftest import assert_close, randomize_bn
from keras import layers

import tfprune
from tfprune.methods.gates import ChannelGate
from tfprune.methods.smof import KernelRingMask

LOSS = "sparse_categorical_crossentropy"


def _model():
    x = inputs = keras.Input((12, 12, 2))
    x = layers.Conv2D(8, 3, padding="same", name="c1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    y = layers.Conv2D(8, 5, padding="same", name="c2")(x)
    y = layers.BatchNormalization(name="bn2")(y)
    x = layers.Add(name="add")([x, y])
    x = layers.SeparableConv2D(6, 3, strides=2, padding="same", name="sep")(x)
    x = layers.DepthwiseConv2D(3, padding="valid", name="dw")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(3, name="out")(x)
    return randomize_bn(keras.Model(inputs, x, name="tiny"))


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12, 12, 2)).astype("float32")
    return x, (x[:, :6].mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, 6:, :, 0].mean(axis=(1, 2)) > 0)


def test_attach_wraps_convs_and_computes_the_same():
    model = _model()
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.5))
    masks = {layer.name for layer in masked.layers if isinstance(layer, KernelRingMask)}
    assert masks == {"c1", "c2", "sep", "dw"}
    assert masked.get_layer("c2").rings.shape == (2,)
    assert any(isinstance(layer, ChannelGate) for layer in masked.layers)
    x, _ = _data(4)
    assert_close(model(x, training=False), masked(x, training=False))
    params, macs = masked.budget_cost()
    assert (params, macs) == (tfprune.cost(model).params, tfprune.cost(model).macs)


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_reaches_the_budget_and_plan_meets_it(seed):
    keras.utils.set_random_seed(seed)
    model = _model()
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.4))
    masked.compile(keras.optimizers.SGD(0.1, momentum=0.9), LOSS)
    x, y = _data()
    history = masked.fit(x, y, epochs=6, batch_size=16, verbose=0,
                         callbacks=[tfprune.methods.smof.SMOFSchedule(ramp_epochs=0)])
    for key in ("macs", "params", "macs_ratio", "params_ratio", "kernels_shrunk",
                "budget_loss"):
        assert key in history.history
    assert history.history["macs_ratio"][-1] <= 0.4 + 1e-6
    assert history.history["macs_ratio"][0] > history.history["macs_ratio"][-1]
    plan = tfprune.methods.smof.plan(masked)
    base = tfprune.cost(model).macs
    assert tfprune.cost(plan.graph, plan).macs <= 0.4 * base
    slim = tfprune.rebuild(masked, plan)
    assert tfprune.cost(slim).macs == tfprune.cost(plan.graph, plan).macs


def _hardened(masked, plan):
    """A copy of the masked model with removed rings and channels at zero."""
    path = "/tmp/_smof_hardened.keras"
    masked.save(path)
    copy = keras.saving.load_model(path)
    graph = plan.graph
    for layer in copy.layers:
        if isinstance(layer, KernelRingMask):
            size = plan.kernels.get(layer.name, tuple(layer.layer.kernel_size))
            radius = (max(size) - 1) // 2
            rings = keras.ops.convert_to_numpy(layer.rings).copy()
            rings[radius:] = 0.0
            layer.rings.assign(rings)
        elif isinstance(layer, ChannelGate):
            producer = layer.name[:-len("_gate")]
            producer = {"bn1": "c1", "bn2": "c2"}.get(producer, producer)
            group = graph.group_of(producer)
            gate = keras.ops.convert_to_numpy(layer.gate).copy()
            removed = np.ones(group.size, dtype=bool)
            removed[plan.keep[group.id]] = False
            gate[removed] = 0.0
            layer.gate.assign(gate)
    return copy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rebuild_equals_hardened_masked_model(seed):
    rng = np.random.default_rng(seed)
    masked = tfprune.methods.smof.mask(_model(), tfprune.Budget(macs=0.5))
    for layer in masked.layers:  # trained-looking factors, some under threshold
        if isinstance(layer, KernelRingMask):
            layer.rings.assign(rng.choice([0.0, 0.02, 0.4, 0.9], layer.rings.shape))
        elif isinstance(layer, ChannelGate):
            layer.gate.assign(rng.choice([0.0, 0.03, 0.3, 1.0], layer.gate.shape))
    plan = tfprune.methods.smof.plan(masked, tfprune.Budget(macs=1.0))
    slim = tfprune.rebuild(masked, plan)
    x, _ = _data(3, seed)
    assert_close(_hardened(masked, plan)(x, training=False), slim(x, training=False))
    for name, size in plan.kernels.items():
        assert tuple(slim.get_layer(name).kernel_size) == size


def test_ring_counting_keeps_kernels_centred():
    masked = tfprune.methods.smof.mask(_model(), tfprune.Budget(macs=0.5))
    # ring 1 below threshold, ring 2 above: the kernel keeps both (5x5)
    masked.get_layer("c2").rings.assign([0.01, 0.5])
    masked.get_layer("c1").rings.assign([0.01])
    assert tfprune.methods.smof.kernel_plan(masked) == {"c1": (1, 1)}
    masked.get_layer("c2").rings.assign([0.5, 0.01])
    assert tfprune.methods.smof.kernel_plan(masked)["c2"] == (3, 3)


def test_masked_model_keras_round_trip(tmp_path):
    masked = tfprune.methods.smof.mask(_model(), tfprune.Budget(macs=0.5), weight=3.0)
    masked.get_layer("c2").rings.assign([0.3, 0.7])
    path = tmp_path / "masked.keras"
    masked.save(path)
    again = keras.saving.load_model(path)
    assert isinstance(again, tfprune.methods.smof.SMOFModel)
    assert (again.target_macs, again.weight) == (masked.target_macs, 3.0)
    x, _ = _data(3)
    np.testing.assert_allclose(masked(x, training=False), again(x, training=False),
                               atol=1e-6)
    np.testing.assert_array_equal(again.get_layer("c2").rings, masked.get_layer("c2").rings)


def test_errors():
    with pytest.raises(ValueError, match="a Budget needs macs="):
        tfprune.methods.smof.mask(_model(), tfprune.Budget())
    with pytest.raises(ValueError, match="expected a tfprune.Budget"):
        tfprune.methods.smof.mask(_model(), None)
    with pytest.raises(ValueError, match="does not round widths"):
        tfprune.methods.smof.mask(_model(), tfprune.Budget(macs=0.5, round_to=8))
    model = _model()
    model.compile("sgd", LOSS)
    x, y = _data(8)
    with pytest.raises(TypeError, match="needs an SMOFModel: tfprune.methods.smof.mask"):
        model.fit(x, y, verbose=0, callbacks=[tfprune.methods.smof.SMOFSchedule()])
    masked = tfprune.methods.smof.mask(model, tfprune.Budget(macs=0.5))
    with pytest.raises(tfprune.TfpruneError, match="already"):
        tfprune.methods.smof.mask(masked, tfprune.Budget(macs=0.5))
    with pytest.raises(tfprune.TargetUnreachableError):
        tfprune.methods.smof.plan(masked, tfprune.Budget(macs=10))


def test_cli_prune_with_smof(tmp_path, capsys):
    import os

    from tfprune import cli, zoo

    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("needs Debian's dataset-fashion-mnist")
    keras.utils.set_random_seed(0)
    source = str(tmp_path / "net.keras")
    zoo.vgg11(input_shape=(28, 28, 1), width=0.125).save(source)
    out, plan_file = str(tmp_path / "slim.keras"), str(tmp_path / "plan.json")
    assert cli.main(["prune", source, "--method", "smof", "--target-macs", "0.5",
                     "--data", "fashion_mnist", "--limit", "256", "--epochs", "1",
                     "-o", out, "--plan", plan_file]) == 0
    original = keras.saving.load_model(source)
    slim = keras.saving.load_model(out)
    assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(original).macs
    graph = tfprune.analyze(original)
    with open(plan_file) as f:
        plan = tfprune.PruningPlan.from_json(f.read(), graph)
    assert tfprune.cost(graph, plan).macs == tfprune.cost(slim).macs
    assert cli.main(["prune", source, "--method", "smof", "--target-macs", "0.5",
                     "-o", out]) == 2
    assert "needs --data" in capsys.readouterr().err
