"""Sensitivity, allocation and the genetic channel search."""

import keras
import numpy as np
import pytest
from conftest import assert_close, randomize_bn
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import masked_reference

import tfprune
from tfprune import zoo
from tfprune.methods import search
from tfprune.methods.search.genetic import _Consumer, _fixed_size_crossover, _fixed_size_mutation


class _FakeGA:
    def __init__(self, seed, size):
        self.tfprune_rng = np.random.default_rng(seed)
        self.tfprune_group_size = size
        self.tfprune_mutation_rate = 1.0


@settings(max_examples=40, deadline=None)
@given(size=st.integers(2, 40), data=st.data())
def test_operators_keep_the_count_fixed(size, data):
    k = data.draw(st.integers(1, size))
    seed = data.draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    parents = np.array([np.sort(rng.choice(size, k, replace=False)) for _ in range(4)])
    ga = _FakeGA(seed, size)
    children = _fixed_size_crossover(parents, (6, k), ga)
    children = _fixed_size_mutation(children, ga)
    for child in children:
        assert len(child) == k and len(np.unique(child)) == k
        assert child.min() >= 0 and child.max() < size


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = randomize_bn(zoo.resnet20(input_shape=(12, 12, 1), classes=4))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 12, 12, 1)).astype("float32")
    y = (x[:, :6].mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (x[:, :, :6].mean(axis=(1, 2, 3)) > 0)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0, batch_size=32)
    return model, x, y


@pytest.fixture(scope="module")
def sens(trained):
    model, x, y = trained
    return search.sensitivity(model, (x, y), ratios=(0.25, 0.5, 0.75), limit=128)


def test_sensitivity_curves_and_plot(trained, sens, tmp_path):
    model, _, _ = trained
    graph = tfprune.analyze(model)
    assert set(sens.loss) == {g.id for g in graph.prunable_groups}
    for gid in sens.loss:
        assert len(sens.loss[gid]) == 3 and len(sens.accuracy[gid]) == 3
        assert sens.drop(gid, 0.0) == 0.0
    path = sens.plot(str(tmp_path / "sens.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_allocation_meets_the_target(trained, sens):
    model, _, _ = trained
    graph = tfprune.analyze(model)
    for target, round_to in ((0.5, 1), (0.33, 4)):
        counts = search.allocate(graph, sens, tfprune.Budget(macs=target, round_to=round_to))
        keep = {gid: list(range(n)) for gid, n in counts.items()
                if n < graph.groups[gid].size}
        c = tfprune.cost(graph, graph.plan(keep))
        assert c.macs <= target * tfprune.cost(graph).macs
        assert all(n % round_to == 0 or n == graph.groups[g].size for g, n in counts.items())


def test_allocation_meets_macs_and_params_together(trained, sens):
    model, _, _ = trained
    graph = tfprune.analyze(model)
    base = tfprune.cost(graph)
    counts = search.allocate(graph, sens, tfprune.Budget(macs=0.6, params=0.3),
                             min_keep=0.25)
    keep = {gid: list(range(n)) for gid, n in counts.items() if n < graph.groups[gid].size}
    c = tfprune.cost(graph, graph.plan(keep))
    assert c.macs <= 0.6 * base.macs and c.params <= 0.3 * base.params
    assert all(n >= 0.25 * graph.groups[gid].size for gid, n in counts.items())


def test_sensitivity_drop_never_falls_and_ends_near_chance(sens):
    for gid in sens.loss:
        drops = [sens.drop(gid, r) for r in np.linspace(0, 1, 21)]
        assert all(b >= a for a, b in zip(drops, drops[1:]))
        assert drops[-1] >= sens.chance_loss - sens.base_loss - 1e-9
    assert sens.chance_loss == pytest.approx(np.log(4))


def test_reconstruction_fitness(trained):
    model, x, _ = trained
    graph = tfprune.analyze(model)
    node = graph.node("stage2_block0_conv1")
    s = search.GeneticChannelSearch(model, (x, x[:, 0, 0, 0]), tfprune.Budget(macs=0.5),
                                   verbose=False)
    acts = s._activations([node.inputs[0]])[node.inputs[0]]
    chans = graph.channels[node.inputs[0]]
    consumer = _Consumer(node, model.get_layer(node.path[0]), acts, chans, 300,
                         np.random.default_rng(0))
    # the sampled design matrix reproduces the layer's real output
    full, _, _ = consumer.error(np.unique(chans))
    assert full < 1e-5
    errors = [consumer.error(np.unique(chans)[:k])[0] for k in (4, 8, 12)]
    assert errors[0] >= errors[1] >= errors[2] >= full
    # re-fitting the kept channels beats merely dropping the others
    err, w, cols = consumer.error(np.unique(chans)[:8])
    # compare residual energies through the Gram matrix and A^T Y
    w0 = consumer.w[cols]
    b = consumer.aty[cols]
    dropped = consumer.energy - 2 * np.sum(b * w0) + np.sum(w0 * (consumer.gram[np.ix_(cols, cols)] @ w0))
    assert err * consumer.energy <= dropped + 1e-6


def test_search_is_deterministic_and_rebuild_uses_refits(trained, sens):
    model, x, y = trained
    budget = tfprune.Budget(macs=0.5)
    kwargs = dict(sensitivity=sens, population=8, generations=3,
                  seed=3, verbose=False, real_loss_top=2)
    first = search.GeneticChannelSearch(model, (x, y), budget, **kwargs)
    plan = first.run()
    again = search.plan(model, budget, (x, y), **kwargs)  # the same search, run again
    for gid in plan.keep:
        np.testing.assert_array_equal(plan.keep[gid], again.keep[gid])
    assert tfprune.cost(model, plan).macs <= 0.5 * tfprune.cost(model).macs
    assert plan.refits and all("kernel" in r for r in plan.refits.values())
    # step 2 ran only for the best few of each generation (and the initial one)
    searched = len(first.history)
    assert first.fitness_calls["real_loss"] <= searched * 2 * (3 + 1)
    assert first.fitness_calls["reconstruction"] > first.fitness_calls["real_loss"]
    assert all(len(h) == 3 for h in first.history.values())
    # step-1 errors of the chosen subsets, reproduced by refit() on the same subsets
    ga_errors = dict(first.reconstruction_errors)
    pruned = {gid for gid, n in first.counts.items() if n < plan.graph.groups[gid].size}
    assert set(ga_errors) == pruned and min(ga_errors.values()) >= 0
    first.refit({gid: plan.keep[gid] for gid in pruned})
    for gid, err in first.reconstruction_errors.items():
        assert err == pytest.approx(ga_errors[gid], rel=1e-5, abs=1e-7)
    slim = tfprune.rebuild(model, plan)
    assert_close(first.working_model(x[:8]), slim(x[:8]))
    # the re-fitted kernels travel with the plan's JSON form
    restored = tfprune.PruningPlan.from_json(plan.to_json(), plan.graph)
    assert set(restored.refits) == set(plan.refits)
    assert_close(slim(x[:8]), tfprune.rebuild(model, restored)(x[:8]))
    # without refits the rebuild is the plain zeroed model
    plain = tfprune.PruningPlan(plan.graph, plan.keep)
    assert_close(masked_reference(model, plain, x[:8]), tfprune.rebuild(model, plain)(x[:8]))


def test_bad_arguments(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="fitness"):
        search.GeneticChannelSearch(model, (x, y), tfprune.Budget(macs=0.5),
                                    fitness="magic")
    with pytest.raises(ValueError, match="empty"):
        search.GeneticChannelSearch(model, (x[:0], y[:0]), tfprune.Budget(macs=0.5))


@pytest.mark.parametrize("criterion, scope", [("l1", "global"), ("l2", "uniform")])
def test_reconstruct_keeps_the_channels_and_brings_the_outputs_back(trained, criterion,
                                                                     scope):
    model, x, y = trained
    plan = tfprune.prune(model, criterion=criterion, target_macs=0.5, scope=scope)
    refitted = search.reconstruct(model, plan, (x, y))
    for gid, kept in plan.keep.items():
        np.testing.assert_array_equal(refitted.keep[gid], kept)
    assert refitted.refits
    reference = keras.ops.convert_to_numpy(model(x, training=False))
    plain = keras.ops.convert_to_numpy(tfprune.rebuild(model, plan)(x, training=False))
    slim = tfprune.rebuild(model, refitted)
    fitted = keras.ops.convert_to_numpy(slim(x, training=False))
    assert np.mean((fitted - reference) ** 2) < 0.5 * np.mean((plain - reference) ** 2)
    assert tfprune.cost(slim).macs == tfprune.cost(model, plan).macs


def test_reconstruct_of_an_empty_plan_changes_nothing(trained):
    model, x, y = trained
    plan = tfprune.analyze(model).plan()
    refitted = search.reconstruct(model, plan, (x, y))
    assert not refitted.refits
    assert_close(model(x[:8]), tfprune.rebuild(model, refitted)(x[:8]))


def test_reconstruct_refuses_a_plan_of_another_model(trained):
    model, x, y = trained
    other = zoo.resnet20(input_shape=(12, 12, 1), classes=4)
    plan = tfprune.prune(other, criterion="l1", target_macs=0.5)
    with pytest.raises(ValueError, match="another model"):
        search.reconstruct(model, plan, (x, y))
