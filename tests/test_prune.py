"""tfprune.prune meets its targets with valid plans."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import masked_reference

import tfprune
from tfprune import zoo


@pytest.fixture(scope="module")
def resnet():
    keras.utils.set_random_seed(0)
    return zoo.resnet20(input_shape=(16, 16, 1))


@settings(max_examples=12, deadline=None)
@given(target=st.floats(0.2, 0.9), scope=st.sampled_from(["global", "uniform"]),
       round_to=st.sampled_from([1, 4]), method=st.sampled_from(["l1", "l2", "bn", "group_l1", "group_l2"]))
def test_target_macs_is_met(resnet, target, scope, round_to, method):
    graph = tfprune.analyze(resnet)
    plan = tfprune.prune(graph, criterion=method, target_macs=target, scope=scope,
                         round_to=round_to)
    base, after = tfprune.cost(graph), tfprune.cost(graph, plan)
    assert after.macs <= target * base.macs
    if scope == "global" and round_to == 1:  # one channel at a time: close to it
        assert after.macs >= (target - 0.02) * base.macs
    for group in graph.groups:
        kept = len(plan.keep[group.id])
        assert kept == group.size or kept % round_to == 0


def test_params_target_and_absolute_counts(resnet):
    base = tfprune.cost(resnet)
    plan = tfprune.prune(resnet, target_params=0.5)
    assert tfprune.cost(resnet, plan).params <= 0.5 * base.params
    again = tfprune.prune(resnet, tfprune.Budget(params=0.5))  # the same budget, as a value
    assert again.to_json() == plan.to_json()
    plan = tfprune.prune(resnet, target_macs=int(base.macs * 0.6))
    assert tfprune.cost(resnet, plan).macs <= 0.6 * base.macs


def test_l1_keeps_the_largest_filters():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="c")(inputs)
    outputs = keras.layers.Conv2D(2, 1, name="out")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("c").kernel.assign(
        np.array([[[[1.0, 5.0, 0.1, 3.0], [1.0, 5.0, 0.1, 3.0]]]], "float32"))
    plan = tfprune.prune(model, criterion="l1", target_macs=0.5, scope="uniform")
    np.testing.assert_array_equal(plan.keep[tfprune.analyze(model).group_of("c").id], [1, 3])


def _conv_bn_dense(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", use_bias=False, name="c")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5, name="d")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.get_layer("bn").gamma.assign(rng.normal(size=3).astype("float32"))
    return model


@pytest.mark.parametrize("p", [1, 2])
def test_group_magnitude_adds_what_reads_each_channel(p):
    model = _conv_bn_dense()
    kernel = model.get_layer("c").kernel.numpy()
    gamma = model.get_layer("bn").gamma.numpy()
    dense = model.get_layer("d").kernel.numpy().reshape(16, 3, 5)  # NHWC flatten
    if p == 1:
        expected = (np.abs(kernel).sum(axis=(0, 1, 2)) + np.abs(gamma)
                    + np.abs(dense).sum(axis=(0, 2)))
    else:
        expected = (np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))) + np.abs(gamma)
                    + np.sqrt((dense ** 2).sum(axis=(0, 2))))
    graph = tfprune.analyze(model)
    scores = tfprune.ranking.importance.group_magnitude(graph, p=p)
    np.testing.assert_allclose(scores[graph.group_of("c").id], expected, rtol=1e-5)


def test_group_l1_drops_the_channel_no_layer_reads():
    """Equal filters: plain l1 ties (keeps the lowest indices); group_l1
    sees that the next layer ignores channel 0 and drops it first."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="c")(inputs)
    outputs = keras.layers.Conv2D(2, 1, use_bias=False, name="out")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("c").kernel.assign(np.ones((1, 1, 2, 4), "float32"))
    reads = np.array([0.0, 2.0, 1.0, 3.0], "float32")
    model.get_layer("out").kernel.assign(np.tile(reads[:, None], (1, 2))[None, None])
    group = tfprune.analyze(model).group_of("c").id
    assert list(tfprune.prune(model, criterion="l1", target_macs=0.75, scope="uniform")
                .keep[group]) == [0, 1, 2]
    assert list(tfprune.prune(model, criterion="group_l1", target_macs=0.75,
                              scope="uniform")
                .keep[group]) == [1, 2, 3]


def test_group_magnitude_follows_a_channel_permutation():
    model = _conv_bn_dense(seed=1)
    graph = tfprune.analyze(model)
    before = tfprune.ranking.importance.group_magnitude(graph)[graph.group_of("c").id]
    perm = np.array([2, 0, 1])
    c, bn, d = (model.get_layer(n) for n in ("c", "bn", "d"))
    c.kernel.assign(c.kernel.numpy()[..., perm])
    for w in bn.weights:
        w.assign(w.numpy()[perm])
    d.kernel.assign(d.kernel.numpy().reshape(16, 3, 5)[:, perm].reshape(48, 5))
    after = tfprune.ranking.importance.group_magnitude(tfprune.analyze(model))[graph.group_of("c").id]
    np.testing.assert_allclose(after, before[perm], rtol=1e-6)


def test_unreachable_and_bad_arguments(resnet):
    with pytest.raises(tfprune.TargetUnreachableError, match="larger target"):
        tfprune.prune(resnet, target_macs=1e-4)
    with pytest.raises(ValueError, match="a Budget needs macs="):
        tfprune.prune(resnet)
    with pytest.raises(ValueError, match="expected a tfprune.Budget"):
        tfprune.prune(resnet, "l1", target_macs=0.5)  # criterion is keyword-only
    with pytest.raises(ValueError, match="not both"):
        tfprune.prune(resnet, tfprune.Budget(macs=0.5), target_macs=0.5)
    with pytest.raises(ValueError, match="unknown criterion"):
        tfprune.prune(resnet, criterion="magic", target_macs=0.5)
    with pytest.raises(ValueError, match="scope"):
        tfprune.prune(resnet, target_macs=0.5, scope="local")
    with pytest.raises(ValueError, match="macs must be a finite fraction .* positive"):
        tfprune.prune(resnet, target_macs=-1)


def test_pruned_resnet_runs_and_matches_zeroed_original(resnet):
    plan = tfprune.prune(resnet, target_macs=0.4, round_to=2)
    slim = tfprune.rebuild(resnet, plan)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(masked_reference(resnet, plan, x), slim(x), atol=1e-4)
