"""Latency targets for HFP, the genetic search and the CLI (issue #14).

A deterministic stand-in for LiteRT (1 ms per thousand MACs) makes the
tables reproducible; what is tested is that each method meets the latency
the table predicts, and that HFP's differentiable budget computes exactly
the table's prediction.
"""

import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers
from models import cnns

import tfprune
from tfprune import cli
from tfprune.core.plan import PruningPlan
from tfprune.latency import LatencyTable, LatencyTableMismatchError
from tfprune.methods.search.sensitivity import Sensitivity, allocate

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def macs_timer(model, threads=1, quantization="none", runs=1):
    """1 ms per thousand MACs: deterministic, and known in closed form."""
    return tfprune.cost(model).macs / 1e3


def small(shape=(8, 8, 1), classes=4, name="small", widths=(32, 48, 48)):
    """Two gated convs with BN, a residual add, and a 1x1 conv between groups
    (so the table has an interaction term)."""
    stream, mid, last = widths
    i = keras.Input(shape, name="image")
    x = layers.Conv2D(stream, 3, padding="same", name="c1")(i)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    y = layers.Conv2D(stream, 3, padding="same", name="c2")(x)
    y = layers.BatchNormalization(name="bn2")(y)
    x = layers.Add(name="add")([x, y])
    x = layers.Conv2D(mid, 1, name="c3")(x)
    x = layers.BatchNormalization(name="bn3")(x)
    x = layers.ReLU(name="r3")(x)
    x = layers.Conv2D(last, 3, strides=2, padding="same", name="c4")(x)
    x = layers.ReLU(name="r4")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(classes, name="fc")(x), name=name)


def _data(n=96, shape=(8, 8, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (x[:, 0, 0, 0] > 0)
    return x, y


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return small()


@pytest.fixture(scope="module")
def table(model):
    return LatencyTable.measure(model, timer=macs_timer, verbose=0)


def _plan_of_presence(gated, graph):
    """The plan of `graph` (the model before gating) keeping the channels the
    gated model's budget counts as present."""
    presence = gated.budget._presence(hard_numpy=True)
    gated_groups = {tuple(g.producers): g for g in gated.budget.graph.groups}
    keep = {}
    for group in graph.groups:
        g = gated_groups[tuple(group.producers)]
        keep[group.id] = np.flatnonzero(presence[g.offset:g.offset + g.size])
    return PruningPlan(graph, keep)


def _set_gates(gated, rng, low=0.0, high=0.12):
    for layer in tfprune.methods.hfp._gate_layers(gated).values():
        layer.gate.assign(rng.uniform(low, high, layer.gate.shape).astype("float32"))


def _widths_prediction(table, original, slim):
    """The table's prediction for `slim` from its groups' widths alone."""
    graph = tfprune.analyze(original)
    widths = {tuple(g.producers): g.size for g in tfprune.analyze(slim).groups}
    return table.predict(graph.plan({g.id: range(widths[tuple(g.producers)])
                                     for g in graph.prunable_groups}))


def test_soft_budget_latency_is_the_tables_prediction(model, table):
    assert table.interactions  # c3 sits between two pruned groups
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(latency=0.5, table=table))
    assert gated.target_latency == pytest.approx(0.5 * table.base_ms)
    assert gated.budget_latency() == pytest.approx(table.base_ms, rel=1e-12)
    graph = tfprune.analyze(model)
    rng = np.random.default_rng(0)
    for _ in range(5):
        _set_gates(gated, rng)
        plan = _plan_of_presence(gated, graph)
        assert any(len(plan.keep[g.id]) < g.size for g in graph.prunable_groups)
        expected = table.predict(plan)
        assert gated.budget_latency() == pytest.approx(expected, rel=1e-9)
        # the differentiable (float32) value is the same number
        soft = float(keras.ops.convert_to_numpy(gated.budget.latency()))
        assert soft == pytest.approx(expected, rel=1e-5)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=cnns(max_blocks=3), seed=st.integers(0, 2**16))
def test_soft_budget_latency_on_random_cnns(net, seed):
    graph = tfprune.analyze(net)
    table = LatencyTable.measure(graph, timer=macs_timer, verbose=0)
    try:
        gated = tfprune.methods.hfp.gate(net, tfprune.Budget(latency=0.7, table=table))
    except tfprune.TfpruneError:  # nothing gateable in this architecture
        return
    _set_gates(gated, np.random.default_rng(seed))
    plan = _plan_of_presence(gated, graph)
    assert gated.budget_latency() == pytest.approx(table.predict(plan), rel=1e-9)


def test_latency_gradient_reaches_the_gates_and_lowers_latency(model, table):
    import tensorflow as tf

    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(latency=0.5, table=table))
    # gates near the threshold (0.05), so a small step changes the counts
    _set_gates(gated, np.random.default_rng(1), 0.04, 0.2)
    gates = [layer.gate for layer in tfprune.methods.hfp._gate_layers(gated).values()]
    before = gated.budget_latency()
    with tf.GradientTape() as tape:
        loss = gated.budget.loss()
    grads = [g.numpy() for g in tape.gradient(loss, gates)]
    assert float(loss) > 0
    flat = np.concatenate(grads)
    assert flat.min() >= 0 and flat.max() > 0  # wider is never faster
    scale = 0.05 / flat.max()
    for var, grad in zip(gates, grads):
        var.assign(var.numpy() - scale * grad)
    assert gated.budget_latency() < before


def test_fit_meets_the_latency_target():
    # Wide enough that one channel of any group costs under 1% of half the
    # latency: the least pruning that meets the target is then within 1%.
    keras.utils.set_random_seed(0)
    model = small(widths=(128, 256, 128))
    table = LatencyTable.measure(model, timer=macs_timer, verbose=0)
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(latency=0.5, table=table),
                                     weight=5.0)
    gated.compile(keras.optimizers.SGD(0.1, momentum=0.9), LOSS)
    x, y = _data()
    history = gated.fit(x, y, epochs=3, batch_size=32, verbose=0,
                        callbacks=[tfprune.methods.hfp.HolisticBudget(ramp_epochs=1)])
    target = 0.5 * table.base_ms
    assert gated.hardened
    logged = history.history["latency_ms"]
    assert logged[0] < table.base_ms and logged[-1] == gated.budget_latency()
    assert history.history["latency_ratio"][-1] == pytest.approx(logged[-1] / table.base_ms)
    assert 0.99 * target <= logged[-1] <= target

    plan = tfprune.methods.hfp.plan(gated)
    matched = table.matched_to(plan.graph)
    predicted = matched.predict(plan)
    # the least pruning: one more channel in any pruned group breaks the target
    for group in plan.graph.prunable_groups:
        keep = {g.id: range(len(plan.keep[g.id])) for g in plan.graph.prunable_groups}
        if len(keep[group.id]) < group.size:
            keep[group.id] = range(len(keep[group.id]) + 1)
            assert matched.predict(plan.graph.plan(keep)) > target
    assert predicted == pytest.approx(logged[-1], rel=1e-9)  # the hardened channels
    slim = tfprune.rebuild(gated, plan)
    assert _widths_prediction(table, model, slim) == pytest.approx(predicted, rel=1e-9)
    # a new latency target, planned from the factors
    tighter = tfprune.methods.hfp.plan(gated, tfprune.Budget(latency=0.3, table=table))
    assert table.matched_to(tighter.graph).predict(tighter) <= 0.3 * table.base_ms
    auto = tfprune.methods.hfp.plan(
        gated, tfprune.Budget(latency=0.5, table=table, round_to="auto"))
    for group in auto.graph.prunable_groups:
        assert len(auto.keep[group.id]) in table.matched_to(auto.graph).steps(group.id)


def test_latency_targeted_gated_model_round_trips(model, table, tmp_path):
    target = round(0.9 * table.base_ms, 3)  # milliseconds, given as "...ms"
    gated = tfprune.methods.hfp.gate(
        model, tfprune.Budget(latency=f"{target}ms", macs=0.8, table=table))
    assert gated.target_latency == target
    _set_gates(gated, np.random.default_rng(2), 0.0, 0.5)
    path = tmp_path / "gated.keras"
    gated.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, tfprune.methods.hfp.GatedModel)
    assert loaded.target_latency == target and loaded.target_macs == gated.target_macs
    assert loaded.latency_table.as_dict() == table.as_dict()
    assert LatencyTable.from_dict(table.as_dict()).as_dict() == table.as_dict()
    with pytest.raises(ValueError, match="malformed"):
        LatencyTable.from_dict({**table.as_dict(), "groups": None})
    assert loaded.budget_latency() == gated.budget_latency()
    x, _ = _data(2)
    np.testing.assert_allclose(loaded(x), gated(x), rtol=1e-6)
    plan = tfprune.methods.hfp.plan(loaded)
    assert table.matched_to(plan.graph).predict(plan) <= target
    assert tfprune.cost(plan.graph, plan).macs <= 0.8 * tfprune.cost(model).macs


def test_attach_checks_the_table(model, table):
    with pytest.raises(ValueError, match="a latency target needs table="):
        tfprune.methods.hfp.gate(model, tfprune.Budget(latency=0.5))
    other = small(name="other")
    with pytest.raises(LatencyTableMismatchError, match="another model"):
        tfprune.methods.hfp.gate(other, tfprune.Budget(latency=0.5, table=table))
    with pytest.raises(LatencyTableMismatchError, match="has 16 channels"):
        table.matched_to(small(widths=(16, 48, 48)))
    # a table given alone: no latency target, but latency is logged and
    # round_to="auto" works
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.6, table=table))
    assert gated.target_latency is None and gated.budget_latency() == table.base_ms


def _linear_sensitivity(graph):
    """Loss grows with the fraction removed, more for the later groups."""
    ratios = (0.25, 0.5, 0.75)
    loss = {g.id: [0.5 + (1 + i) * r for r in ratios]
            for i, g in enumerate(graph.prunable_groups)}
    acc = {g.id: [0.9 - r / 2 for r in ratios] for g in graph.prunable_groups}
    names = {g.id: g.producers[0] for g in graph.prunable_groups}
    return Sensitivity(ratios, 0.9, 0.5, acc, loss, names, chance_loss=np.log(4))


def test_allocate_meets_a_latency_target(model, table):
    graph = tfprune.analyze(model)
    sens = _linear_sensitivity(graph)
    for target in (0.6, 0.4):
        counts = allocate(graph, sens, tfprune.Budget(latency=target, table=table))
        plan = graph.plan({gid: range(n) for gid, n in counts.items()})
        assert table.predict(plan) <= target * table.base_ms
    both = allocate(graph, sens, tfprune.Budget(latency=0.6, params=0.5, table=table))
    plan = graph.plan({gid: range(n) for gid, n in both.items()})
    assert table.predict(plan) <= 0.6 * table.base_ms
    assert tfprune.cost(graph, plan).params <= 0.5 * tfprune.cost(graph).params
    auto = allocate(graph, sens, tfprune.Budget(latency=0.6, table=table, round_to="auto"))
    assert all(n in table.steps(gid) for gid, n in auto.items())
    plan = graph.plan({gid: range(n) for gid, n in auto.items()})
    assert table.predict(plan) <= 0.6 * table.base_ms
    with pytest.raises(ValueError, match="a latency target needs table="):
        allocate(graph, sens, tfprune.Budget(latency=0.5))
    with pytest.raises(ValueError, match="round_to='auto' reads the widths .* pass table="):
        allocate(graph, sens, tfprune.Budget(macs=0.5, round_to="auto"))


def test_genetic_search_meets_a_latency_target(model, table):
    x, y = _data(64)
    search = tfprune.methods.search.GeneticChannelSearch(
        model, (x, y), tfprune.Budget(latency=0.6, table=table), population=4,
        generations=2, positions=64, verbose=False)
    plan = search.run()
    assert table.predict(plan) <= 0.6 * table.base_ms
    assert any(len(plan.keep[g.id]) < g.size for g in plan.graph.prunable_groups)
    with pytest.raises(ValueError, match="a latency target needs table="):
        tfprune.methods.search.GeneticChannelSearch(model, (x, y), tfprune.Budget(latency=0.6))


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("latency_cli")
    net = small(shape=(28, 28, 1), classes=10, name="fashion_small", widths=(16, 24, 24))
    path = str(folder / "net.keras")
    net.save(path)
    table = LatencyTable.measure(net, timer=macs_timer, verbose=0)
    table_path = table.save(folder / "table.json")
    return path, table_path, table


needs_fashion = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                   reason="needs Debian's dataset-fashion-mnist")


@needs_fashion
@pytest.mark.parametrize("method, extra", [("hfp", ["--epochs", "1"]),
                                           ("ga", ["--generations", "2"])])
def test_cli_latency_target(cli_files, tmp_path, method, extra, capsys):
    path, table_path, table = cli_files
    out = str(tmp_path / f"{method}.keras")
    assert cli.main(["prune", path, "--method", method, "--target-latency", "0.6",
                     "--latency-table", table_path, "--data", "fashion_mnist",
                     "--limit", "256", "-o", out] + extra) == 0
    assert "predicted LiteRT latency" in capsys.readouterr().out
    original = keras.saving.load_model(path)
    predicted = _widths_prediction(table, original, keras.saving.load_model(out))
    assert predicted <= 0.6 * table.base_ms


@pytest.mark.parametrize("argv, message", [
    (["--method", "hfp", "--target-latency", "0.5"], "needs --latency-table"),
    (["--method", "ga", "--target-latency", "0.5"], "needs --latency-table"),
    (["--method", "smof", "--target-latency", "0.5", "--latency-table", "TABLE"],
     "not smof"),
])
def test_cli_latency_errors(cli_files, tmp_path, argv, message, capsys):
    path, table_path, _ = cli_files
    argv = [table_path if a == "TABLE" else a for a in argv]
    out = str(tmp_path / "x.keras")
    assert cli.main(["prune", path, "--data", "fashion_mnist", "-o", out] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not os.path.exists(out)
