"""PruneNet: global, loss-based channel importance and plans from it."""

import types

import keras
import numpy as np
import pytest
from conftest import randomize_bn
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import tfprune
from tfprune import zoo
from tfprune.cli import main


def chain(seed=0, size=8, classes=4):
    """conv1 (6) -> BN -> ReLU -> conv2 (5) -> BN -> ReLU -> GAP -> logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Conv2D(6, 3, padding="same", name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return randomize_bn(keras.Model(inputs, outputs), seed)


def calibration(n=64, size=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, size, size, 1)).astype("float32"),
            rng.integers(0, classes, n))


@pytest.fixture(scope="module")
def resnet():
    keras.utils.set_random_seed(0)
    return randomize_bn(zoo.resnet20(input_shape=(12, 12, 1), classes=4))


def test_scores_are_deterministic_and_seeded():
    model, data = chain(), calibration(128)
    a = tfprune.methods.prunenet.scores(model, data, num_samples=64, seed=3, verbose=0)
    b = tfprune.methods.prunenet.scores(model, data, num_samples=64, seed=3, verbose=0)
    c = tfprune.methods.prunenet.scores(model, data, num_samples=64, seed=4, verbose=0)
    assert a.keys() == b.keys()
    for gid in a:
        np.testing.assert_array_equal(a[gid], b[gid])
    assert any(not np.allclose(a[gid], c[gid]) for gid in a)  # other samples
    plans = [tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.5), data,
                                           num_samples=64, seed=3, verbose=0)
             for _ in range(2)]
    assert plans[0].to_json() == plans[1].to_json()


def test_score_is_the_squared_loss_derivative_of_removing_the_channel():
    """One batch: score == (dL/dt)^2, t scaling what conv2 reads of the channel."""
    model, (x, y) = chain(), calibration(32)
    graph = tfprune.analyze(model)
    s = tfprune.methods.prunenet.scores(model, (x, y), num_samples=32, batch_size=32, verbose=0)
    group = graph.group_of("conv1")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernel = model.get_layer("conv2").kernel
    original = keras.ops.convert_to_numpy(kernel).copy()
    eps = 1e-2
    for c in range(group.size):
        values = []
        for t in (1 + eps, 1 - eps):
            scaled = original.copy()
            scaled[:, :, c, :] *= t
            kernel.assign(scaled)
            values.append(float(loss(y, model(x, training=False))))
        kernel.assign(original)
        derivative = (values[0] - values[1]) / (2 * eps)
        assert s[group.id][c] == pytest.approx(derivative ** 2, rel=0.05, abs=1e-7)


def test_a_channel_nobody_reads_scores_lowest_and_goes_first():
    model, data = chain(), calibration()
    kernel = model.get_layer("conv2").kernel
    value = keras.ops.convert_to_numpy(kernel).copy()
    value[:, :, 2, :] = 0.0  # conv1's channel 2 reaches nothing
    kernel.assign(value)
    graph = tfprune.analyze(model)
    s = tfprune.methods.prunenet.scores(model, data, verbose=0)
    group = graph.group_of("conv1")
    assert s[group.id][2] == 0.0
    others = np.concatenate([s[g.id] for g in graph.prunable_groups])
    assert np.sum(others == 0.0) == 1  # the others matter, it alone does not
    # its removal changes nothing, and it is the first one removed
    plan = graph.plan({group.id: [0, 1, 3, 4, 5]})
    np.testing.assert_allclose(tfprune.core.rebuild.zero_out(model, plan)(data[0]), model(data[0]),
                               rtol=1e-5, atol=1e-6)
    for target in (0.97, 0.9):
        plan = tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=target), data,
                                             verbose=0)
        assert 2 not in plan.keep[group.id]


def permuted(model, perm):
    """The same network with conv1's channels reordered by `perm`."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    conv1, bn1, conv2 = (copy.get_layer(n) for n in ("conv1", "bn1", "conv2"))
    conv1.kernel.assign(keras.ops.convert_to_numpy(conv1.kernel)[..., perm])
    conv1.bias.assign(keras.ops.convert_to_numpy(conv1.bias)[perm])
    for w in bn1.weights:
        w.assign(keras.ops.convert_to_numpy(w)[perm])
    conv2.kernel.assign(keras.ops.convert_to_numpy(conv2.kernel)[:, :, perm, :])
    return copy


def test_scores_follow_a_permutation_of_the_channels():
    model, data = chain(seed=1), calibration(seed=1)
    perm = np.array([3, 0, 5, 1, 4, 2])
    other = permuted(model, perm)
    np.testing.assert_allclose(other(data[0]), model(data[0]), rtol=1e-4, atol=1e-5)
    graph, graph2 = tfprune.analyze(model), tfprune.analyze(other)
    s = tfprune.methods.prunenet.scores(model, data, verbose=0)
    s2 = tfprune.methods.prunenet.scores(other, data, verbose=0)
    gid = graph.group_of("conv1").id
    np.testing.assert_allclose(s2[gid], s[gid][perm], rtol=1e-4)
    for target in (0.8, 0.6, 0.4):
        budget = tfprune.Budget(macs=target)
        plan = tfprune.methods.prunenet.plan(model, budget, data, verbose=0)
        plan2 = tfprune.methods.prunenet.plan(other, budget, data, verbose=0)
        assert sorted(perm[plan2.keep[gid]]) == sorted(plan.keep[gid].tolist())
        assert plan2.widths() == plan.widths()
        assert tfprune.cost(graph2, plan2).macs == tfprune.cost(graph, plan).macs


@settings(max_examples=6, deadline=None)
@given(target=st.floats(0.25, 0.9), round_to=st.sampled_from([1, 4]),
       steps=st.sampled_from([1, 2]))
def test_targets_are_met_as_with_prune(resnet, target, round_to, steps):
    data = calibration(32, size=12)
    graph = tfprune.analyze(resnet)
    plan = tfprune.methods.prunenet.plan(graph, tfprune.Budget(macs=target, round_to=round_to),
                                         data, iterative_steps=steps, num_samples=32,
                                         verbose=0)
    base, after = tfprune.cost(graph), tfprune.cost(graph, plan)
    assert after.macs <= target * base.macs
    if round_to == 1:
        assert after.macs >= (target - 0.02) * base.macs
    for group in graph.groups:
        kept = len(plan.keep[group.id])
        assert kept == group.size or kept % round_to == 0
    slim = tfprune.rebuild(resnet, plan)
    assert tfprune.cost(slim).macs == after.macs


def test_params_target_and_counts(resnet):
    data = calibration(32, size=12)
    base = tfprune.cost(resnet)
    plan = tfprune.methods.prunenet.plan(resnet, tfprune.Budget(params=0.5), data,
                                         num_samples=32, verbose=0)
    assert tfprune.cost(resnet, plan).params <= 0.5 * base.params
    count = int(0.6 * base.macs)
    plan = tfprune.methods.prunenet.plan(resnet, tfprune.Budget(macs=count), data,
                                         num_samples=32, verbose=0)
    assert count * 0.97 <= tfprune.cost(resnet, plan).macs <= count


def test_the_model_is_not_modified():
    model, data = chain(), calibration()
    before = [w.copy() for w in model.get_weights()]
    tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.5), data, iterative_steps=2,
                                  verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_input_gives_clear_errors():
    model = chain()
    empty = (np.zeros((0, 8, 8, 1), "float32"), np.zeros((0,), "int64"))
    with pytest.raises(ValueError, match="empty"):
        tfprune.methods.prunenet.scores(model, empty, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.5), [], verbose=0)
    data = calibration()
    with pytest.raises(tfprune.TargetUnreachableError, match="target cannot be met"):
        tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.001), data, verbose=0)
    with pytest.raises(ValueError, match="iterative_steps"):
        tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.5), data,
                                      iterative_steps=0)
    with pytest.raises(ValueError, match="num_samples"):
        tfprune.methods.prunenet.scores(model, data, num_samples=0)
    # a target is needed, and PruneNet's are MACs and params
    with pytest.raises(ValueError, match="a Budget needs macs="):
        tfprune.Budget()
    table = types.SimpleNamespace(predict=None, base_ms=1.0, check=None)  # never read
    with pytest.raises(ValueError, match="PruneNet takes no latency target"):
        tfprune.methods.prunenet.plan(model, tfprune.Budget(latency=0.5, table=table), data,
                                      verbose=0)
    with pytest.raises(ValueError, match="Budget"):
        tfprune.methods.prunenet.plan(model, None, data, verbose=0)


def test_cli_prunes_with_prunenet(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, strides=2, activation="relu", name="c1")(inputs)
    x = layers.Conv2D(8, 3, strides=2, activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10, name="logits")(x))
    path, out = tmp_path / "m.keras", tmp_path / "slim.keras"
    model.save(path)
    code = main(["prune", str(path), "--method", "prunenet", "--data", "fashion_mnist",
                 "--limit", "200", "--target-macs", "0.5", "-o", str(out)])
    assert code == 0
    slim = keras.saving.load_model(out)
    assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(model).macs
    assert main(["prune", str(path), "--method", "prunenet", "--target-macs", "0.5",
                 "-o", str(out)]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_recalibrate_bn_sets_the_statistics_of_the_data():
    model = chain(seed=2)
    x, _ = calibration(64, seed=2)
    conv = keras.Model(model.inputs, model.get_layer("conv1").output)
    features = keras.ops.convert_to_numpy(conv(x)).astype(np.float64)
    bn = model.get_layer("bn1")
    bn.trainable = False  # frozen BN is recalibrated too, and stays frozen
    momentum = bn.momentum
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel).copy()
               for n in ("conv1", "conv2", "logits")]
    gamma = keras.ops.convert_to_numpy(bn.gamma).copy()
    assert tfprune.recalibrate_bn(model, x, batch_size=32) is model
    # two equal batches: the mean of the batch means is the mean
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean),
                               features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    drawn = features[np.random.default_rng(0).permutation(64)]  # seed=0's order
    halves = [drawn[:32].var(axis=(0, 1, 2)), drawn[32:].var(axis=(0, 1, 2))]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance),
                               np.mean(halves, axis=0), rtol=1e-3, atol=1e-5)
    assert bn.momentum == momentum and bn.trainable is False
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.gamma), gamma)
    for name, before in zip(("conv1", "conv2", "logits"), kernels):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model.get_layer(name).kernel), before)
    with pytest.raises(ValueError, match="empty"):
        tfprune.recalibrate_bn(model, np.zeros((0, 8, 8, 1), "float32"))


def test_recalibrated_inference_matches_training_mode_on_one_batch():
    """After recalibrating on one batch, inference mode normalises that batch
    exactly as training mode does: the statistics are the batch's own."""
    model = chain(seed=3)
    plan = tfprune.methods.prunenet.plan(model, tfprune.Budget(macs=0.5), calibration(),
                                         verbose=0)
    slim = tfprune.rebuild(model, plan)
    x, _ = calibration(32, seed=5)
    training = keras.ops.convert_to_numpy(slim(x, training=True))
    tfprune.recalibrate_bn(slim, x, batch_size=32)
    inference = keras.ops.convert_to_numpy(slim(x, training=False))
    np.testing.assert_allclose(inference, training, rtol=1e-3, atol=1e-4)
