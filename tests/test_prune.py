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
       round_to=st.sampled_from([1, 4]), method=st.sampled_from(["l1", "l2", "bn"]))
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
    plan = tfprune.prune(resnet, target_macs=int(base.macs * 0.6))
    assert tfprune.cost(resnet, plan).macs <= 0.6 * base.macs


def test_l1_keeps_the_largest_filters():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="c")(inputs)
    outputs = keras.layers.Conv2D(2, 1, name="out")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("c").kernel.assign(
        np.array([[[[1.0, 5.0, 0.1, 3.0], [1.0, 5.0, 0.1, 3.0]]]], "float32"))
    plan = tfprune.prune(model, "l1", target_macs=0.5, scope="uniform")
    np.testing.assert_array_equal(plan.keep[tfprune.analyze(model).group_of("c").id], [1, 3])


def test_unreachable_and_bad_arguments(resnet):
    with pytest.raises(tfprune.TargetUnreachableError, match="larger target"):
        tfprune.prune(resnet, target_macs=1e-4)
    with pytest.raises(ValueError, match="target_macs or target_params"):
        tfprune.prune(resnet)
    with pytest.raises(ValueError, match="unknown criterion"):
        tfprune.prune(resnet, criterion="magic", target_macs=0.5)
    with pytest.raises(ValueError, match="scope"):
        tfprune.prune(resnet, target_macs=0.5, scope="local")
    with pytest.raises(ValueError, match="positive"):
        tfprune.prune(resnet, target_macs=-1)


def test_pruned_resnet_runs_and_matches_zeroed_original(resnet):
    plan = tfprune.prune(resnet, target_macs=0.4, round_to=2)
    slim = tfprune.rebuild(resnet, plan)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(masked_reference(resnet, plan, x), slim(x), atol=1e-4)
