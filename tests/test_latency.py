"""Latency tables: prediction, monotonicity, latency targets, JSON, timers."""

import importlib.metadata
import json

import keras
import numpy as np
import pytest
from conftest import random_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers
from models import cnns

import tfprune
from tfprune.latency import (
    LatencyTable,
    LatencyTableMismatchError,
    default_widths,
    find_timer,
)


def macs_timer(model, threads=1, quantization="none", runs=1):
    """A deterministic stand-in for LiteRT: 1 ms per million MACs."""
    return tfprune.cost(model).macs / 1e6


def tiny(name="tiny", width=16):
    i = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(width, 3, padding="same", name="c1")(i)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    y = layers.Conv2D(width, 3, padding="same", name="c2")(x)
    x = layers.Add(name="add")([x, y])
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(32, 1, name="c3")(x)
    x = layers.ReLU(name="r3")(x)
    x = layers.Conv2D(24, 3, padding="same", name="c4")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    o = layers.Dense(10, name="fc")(x)
    return keras.Model(i, o, name=name)


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def table(model):
    # calibrate=False: the plain sum, whose exactness these tests check
    return LatencyTable.measure(model, timer=macs_timer, verbose=0, calibrate=False)


def test_calibration_fits_the_whole_models_extra_saving(model):
    # Whole models (input "image"; rebuilt ones keep the name) save 1.5x
    # what their MACs say; sub-models are timed by MACs. Calibration finds
    # that factor, and the calibrated table predicts uniform plans better.
    full = macs_timer(model)

    def timer(m, **kwargs):
        t = macs_timer(m)
        return full - 1.5 * (full - t) if m.inputs[0].name == "image" else t

    plain = LatencyTable.measure(model, timer=timer, verbose=0, calibrate=False)
    table = LatencyTable.measure(model, timer=timer, verbose=0)
    assert plain.scale == 1.0 and table.scale == pytest.approx(1.5, abs=0.1)
    graph = tfprune.analyze(model)
    plan = tfprune.prune(graph, criterion="l1", target_macs=0.5, scope="uniform")
    truth = timer(tfprune.rebuild(model, plan))
    assert abs(table.predict(plan) - truth) < abs(plain.predict(plan) - truth)
    again = LatencyTable.from_dict(json.loads(json.dumps(table.as_dict())))
    assert again.scale == table.scale and again.predict(plan) == table.predict(plan)


def test_default_widths():
    assert default_widths(16) == [4, 8, 12, 16]
    assert default_widths(96) == [24, 48, 72, 96]
    assert default_widths(1) == [1]
    assert default_widths(40) == [8, 16, 32, 40]  # 30 -> 32, 20 -> 16, 10 -> 8


def test_single_group_prediction_equals_macs(model, table):
    # With a MACs timer, the sub-model of a group changes by exactly what the
    # whole model changes: the prediction is exact at measured widths.
    graph = tfprune.analyze(model)
    assert table.base_ms == pytest.approx(tfprune.cost(model).macs / 1e6)
    for group in graph.prunable_groups:
        for w in table.steps(group.id):
            plan = graph.plan({group.id: range(w)})
            assert table.predict(plan) == pytest.approx(
                tfprune.cost(graph, plan).macs / 1e6, rel=1e-9)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model=cnns(max_blocks=4), seed=st.integers(0, 2**16))
def test_prediction_exact_for_one_group_on_random_cnns(model, seed):
    graph = tfprune.analyze(model)
    table = LatencyTable.measure(graph, timer=macs_timer, verbose=0, calibrate=False)
    rng = np.random.default_rng(seed)
    for group in graph.prunable_groups:
        w = int(rng.choice(table.steps(group.id)))
        keep = set(range(w))
        for part in group.segments:
            if not keep.intersection(part.tolist()):
                keep.add(int(part[0]))
        if len(keep) != w:
            continue  # the segment rule widened it to an unmeasured width
        plan = graph.plan({group.id: sorted(keep)})
        assert table.predict(plan) == pytest.approx(
            tfprune.cost(graph, plan).macs / 1e6, rel=1e-9, abs=1e-12)


def test_joint_pruning_prediction_is_close(model, table):
    # Several groups pruned at once: layers between two groups cost about
    # w_a * w_b; with the interaction term the sum stays within a few percent
    # of the MACs timer's truth for widths inside the measured range (the
    # plain sum of the groups' savings is far off: it counts them twice).
    graph = tfprune.analyze(model)
    rng = np.random.default_rng(0)
    errors, plain = [], []
    for _ in range(30):
        keep = {}
        for group in graph.prunable_groups:
            n = int(rng.integers(table.steps(group.id)[0], group.size + 1))
            keep[group.id] = sorted(rng.choice(group.size, n, replace=False).tolist())
        plan = graph.plan(keep)
        truth = tfprune.cost(graph, plan).macs / 1e6
        predicted = table.predict(plan)
        errors.append(abs(predicted - truth) / truth)
        plain.append(abs(predicted - table._interaction_ms(plan) - truth) / truth)
    assert max(errors) < 0.1, max(errors)
    assert np.mean(errors) < np.mean(plain)
    half = graph.plan({g.id: range(g.size // 2) for g in graph.prunable_groups})
    assert table.predict(half) == pytest.approx(
        tfprune.cost(graph, half).macs / 1e6, rel=0.05)


def noisy_timer():
    """Not monotone in width: every other timing gets a large bump, so a
    narrower sub-model is sometimes slower than a wider one."""
    calls = []

    def timer(model, threads=1, quantization="none", runs=1):
        calls.append(model.name)
        return tfprune.cost(model).macs / 1e6 + (10.0 if len(calls) % 2 == 0 else 0.0)

    return timer


@given(seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_wider_plan_is_never_predicted_faster(seed):
    table = _noisy_table()
    graph = _noisy_graph()
    rng = np.random.default_rng(seed)
    narrow = random_plan(graph, rng)
    wide = {}
    for gid, kept in narrow.keep.items():
        size = graph.groups[gid].size
        extra = rng.choice(size, int(rng.integers(0, size + 1)), replace=False)
        wide[gid] = sorted(set(kept.tolist()) | set(extra.tolist()))
    assert table.predict(graph.plan(wide)) >= table.predict(narrow)


_CACHE = {}


def _noisy_graph():
    if "graph" not in _CACHE:
        _CACHE["graph"] = tfprune.analyze(tiny("noisy"))
    return _CACHE["graph"]


def _noisy_table():
    if "table" not in _CACHE:
        _CACHE["table"] = LatencyTable.measure(
            _noisy_graph(), timer=noisy_timer(), widths=[1, 0.25, 0.5, 0.75], verbose=0)
    return _CACHE["table"]


def test_measured_times_are_made_monotone():
    table = _noisy_table()
    raw_not_monotone = False
    for gid, row in table.groups.items():
        assert all(a <= b for a, b in zip(row["ms"], row["ms"][1:]))
        raw = table.measured[gid]
        raw_not_monotone |= any(a > b for a, b in zip(raw, raw[1:]))
        assert all(s >= r for s, r in zip(row["ms"], raw))
    assert raw_not_monotone, "the noisy timer should have produced a dip"


@pytest.mark.parametrize("scope,round_to", [("global", 1), ("uniform", 1),
                                            ("global", 4)])
@pytest.mark.parametrize("target", [0.9, 0.6, 0.4])
def test_target_latency_is_met(model, table, scope, round_to, target):
    plan = tfprune.prune(model, criterion="l1", target_latency=target, latency_table=table,
                         scope=scope, round_to=round_to)
    predicted = table.predict(plan)
    assert predicted <= target * table.base_ms * (1 + 1e-9)
    # the least pruning: the full model would not fit
    assert predicted < table.base_ms


@pytest.mark.parametrize("scope", ["global", "uniform"])
@pytest.mark.parametrize("target", [0.8, 0.5])
def test_round_to_auto_keeps_measured_widths(model, table, scope, target):
    budget = tfprune.Budget(latency=target, table=table, round_to="auto")
    plan = tfprune.prune(model, budget, criterion="l1", scope=scope)
    assert table.predict(plan) <= target * table.base_ms * (1 + 1e-9)
    graph = plan.graph
    for group in graph.prunable_groups:
        assert len(plan.keep[group.id]) in table.steps(group.id)
    assert table.predict(plan) < table.base_ms


def test_global_ranking_weighs_score_against_time_saved(model):
    # A table where one group's channels each save 1 ms and every other
    # group saves nothing: at the same MACs target the table-aware ranking
    # takes more from the expensive group than the plain L1 ranking does,
    # and so predicts a faster model.
    graph = tfprune.analyze(model)
    plain = tfprune.prune(model, criterion="l1", target_macs=0.8)
    # the group plain L1 leaves widest
    expensive = max(graph.prunable_groups,
                    key=lambda g: len(plain.keep[g.id]) / g.size)
    rows = {g.id: {"widths": [1, g.size],
                   "ms": [0.0, float(g.size - 1)] if g is expensive else [5.0, 5.0]}
            for g in graph.prunable_groups}
    table = LatencyTable(tfprune.latency.model_hash(model), 100.0, rows)
    aware = tfprune.prune(model, criterion="l1", target_macs=0.8, latency_table=table)
    assert len(aware.keep[expensive.id]) < len(plain.keep[expensive.id])
    assert table.predict(aware) < table.predict(plain)
    assert tfprune.cost(graph, aware).macs <= 0.8 * tfprune.cost(graph).macs


def test_round_to_auto_needs_a_table(model):
    with pytest.raises(ValueError, match="round_to='auto' reads the widths .* pass table="):
        tfprune.prune(model, criterion="l1", target_macs=0.5, round_to="auto")


def test_target_latency_in_milliseconds(model, table):
    ms = 0.5 * table.base_ms
    for target in (f"{ms}ms", f" {ms} MS"):
        plan = tfprune.prune(model, criterion="l1", target_latency=target, latency_table=table)
        assert table.predict(plan) <= ms * (1 + 1e-9)
    with pytest.raises(ValueError, match="'0.8 sec'"):
        tfprune.prune(model, criterion="l1", target_latency="0.8 sec", latency_table=table)


def test_latency_and_macs_targets_together(model, table):
    base = tfprune.cost(model).macs
    plan = tfprune.prune(model, tfprune.Budget(latency=0.8, macs=0.5, table=table),
                         criterion="l1")
    assert tfprune.cost(model, plan).macs <= 0.5 * base
    assert table.predict(plan) <= 0.8 * table.base_ms * (1 + 1e-9)


def test_unreachable_latency_target(model, table):
    with pytest.raises(tfprune.TargetUnreachableError, match="latency"):
        tfprune.prune(model, criterion="l1", target_latency=0.01, latency_table=table)


def test_a_budget_checks_its_targets(model):
    # One check for every method: the Budget refuses a latency target
    # without its table and a budget with no target at all, and so does
    # tfprune.prune's keyword form, which makes a Budget.
    with pytest.raises(ValueError, match="a latency target needs table="):
        tfprune.Budget(latency=0.5)
    with pytest.raises(ValueError, match="a Budget needs macs="):
        tfprune.Budget()
    with pytest.raises(ValueError, match="a latency target needs table="):
        tfprune.prune(model, criterion="l1", target_latency=0.5)
    with pytest.raises(ValueError, match="a Budget needs macs="):
        tfprune.prune(model, criterion="l1")


@pytest.mark.parametrize("entry", [
    lambda model, budget: tfprune.prune(model, budget, criterion="l1"),
    lambda model, budget: tfprune.methods.hfp.gate(model, budget),
    lambda model, budget: tfprune.methods.search.allocate(tfprune.analyze(model), None,
                                                          budget),
    lambda model, budget: tfprune.methods.search.GeneticChannelSearch(model, None, budget),
], ids=["prune", "hfp.gate", "allocate", "GeneticChannelSearch"])
def test_every_entry_point_checks_its_budget(model, entry):
    # a bare target where the Budget goes (e.g. code not yet migrated) is
    # refused with a clear message, not an AttributeError deep inside
    with pytest.raises(ValueError, match="expected a tfprune.Budget"):
        entry(model, 0.5)


def test_json_round_trip(model, table, tmp_path):
    path = table.save(tmp_path / "table.json")
    loaded = LatencyTable.load(path, model)
    assert loaded.as_dict() == table.as_dict()
    graph = tfprune.analyze(model)
    rng = np.random.default_rng(1)
    for _ in range(5):
        plan = random_plan(graph, rng)
        assert loaded.predict(plan) == table.predict(plan)
    d = json.loads(open(path).read())
    assert d["threads"] == 1 and d["quantization"] == "none"
    assert {"model_hash", "litert", "cpu", "base_ms", "groups"} <= set(d)


def test_table_of_another_model_is_refused(model, table, tmp_path):
    path = table.save(tmp_path / "table.json")
    other = tiny("other", width=8)
    with pytest.raises(LatencyTableMismatchError, match="another model"):
        LatencyTable.load(path, other)
    with pytest.raises(LatencyTableMismatchError, match="another model"):
        tfprune.prune(other, criterion="l1", target_latency=0.5, latency_table=table)


def test_not_a_table_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a tfprune latency table"):
        LatencyTable.load(path)


def test_bad_widths(model):
    with pytest.raises(ValueError, match="fractions"):
        LatencyTable.measure(model, timer=macs_timer, widths=[1.5], verbose=0)


def test_widths_per_group(model):
    graph = tfprune.analyze(model)
    first, *rest = graph.prunable_groups
    table = LatencyTable.measure(model, timer=macs_timer, widths={first.id: [2, 5]},
                                 verbose=0)
    assert list(table.groups) == [first.id]
    assert table.steps(first.id) == [2, 5, first.size]
    # a group that was not timed is predicted to save nothing
    plan = graph.plan({rest[0].id: range(1)})
    assert table.predict(plan) == table.base_ms


def test_missing_timer_is_a_clear_error(monkeypatch):
    real = importlib.metadata.entry_points

    def no_timers(**kwargs):
        if kwargs.get("group") == "tfprune.timers":
            return []
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", no_timers)
    with pytest.raises(tfprune.TfpruneError, match="needs tflite_export"):
        find_timer()


def test_timer_is_found_through_the_entry_point(monkeypatch):
    from tflite_export.timing import time_model

    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint(
        name="tflite", value="tflite_export.timing:time_model", group="tfprune.timers")

    def with_timer(**kwargs):
        if kwargs.get("group") == "tfprune.timers":
            return [ep]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", with_timer)
    assert find_timer() is time_model


def test_real_litert_timer_on_a_tiny_model():
    from tflite_export.timing import time_model

    i = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, padding="same", name="a")(i)
    x = layers.ReLU(name="relu")(x)
    x = layers.Conv2D(4, 1, name="b")(x)
    m = keras.Model(i, x, name="real")
    graph = tfprune.analyze(m)
    (group,) = graph.prunable_groups
    table = LatencyTable.measure(m, timer=time_model, widths=[0.5], runs=5, verbose=0,
                                 calibrate=False)
    assert table.steps(group.id) == [4, 8]
    assert table.base_ms > 0 and all(t > 0 for t in table.groups[group.id]["ms"])
    assert table.litert  # the LiteRT version the table was measured with
    full = graph.plan({})
    assert table.predict(full) == pytest.approx(table.base_ms)
    half = graph.plan({group.id: range(4)})
    assert table.predict(half) <= table.predict(full)


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli") / "tiny.keras")
    model.save(path)
    return path


def test_table_fits_the_saved_and_reloaded_model(model_file, table):
    # measured in memory, used with the .keras file: same config, same hash
    reloaded = keras.saving.load_model(model_file, compile=False)
    plan = tfprune.prune(reloaded, criterion="l1", target_latency=0.7, latency_table=table)
    assert table.predict(plan) <= 0.7 * table.base_ms * (1 + 1e-9)


def test_cli_latency_then_prune(model_file, tmp_path, capsys, monkeypatch):
    from tfprune import cli

    monkeypatch.setattr("tfprune.latency.find_timer", lambda name="tflite": macs_timer)
    table_path = str(tmp_path / "table.json")
    assert cli.main(["latency", model_file, "-o", table_path, "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "whole model" in out and "wrote" in out
    table = LatencyTable.load(table_path)
    slim = str(tmp_path / "slim.keras")
    assert cli.main(["prune", model_file, "--target-latency", "0.5", "--latency-table",
                     table_path, "-o", slim, "--round-to", "auto"]) == 0
    assert "predicted LiteRT latency" in capsys.readouterr().out
    slim_model = keras.saving.load_model(slim, compile=False)
    # the slim model's MACs are what the MACs timer's table predicted for it
    assert tfprune.cost(slim_model).macs / 1e6 <= 0.5 * table.base_ms * 1.1


@pytest.mark.parametrize("argv,message", [
    (["latency", "{model}"], "give the output file with -o table.json"),
    (["latency", "{model}", "-o", "{tmp}/t.txt"], "use a .json file name"),
    (["prune", "{model}", "-o", "{tmp}/s.keras", "--target-latency", "0.5"],
     "--target-latency needs --latency-table"),
    (["prune", "{model}", "-o", "{tmp}/s.keras", "--target-latency", "0.5",
      "--latency-table", "{tmp}/missing.json"], "no such file"),
    (["prune", "{model}", "-o", "{tmp}/s.keras", "--target-macs", "0.5",
      "--round-to", "auto"], "--round-to auto reads the widths"),
])
def test_cli_bad_input(model_file, tmp_path, capsys, argv, message):
    from tfprune import cli

    argv = [a.format(model=model_file, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_a_table_of_another_model(model_file, table, tmp_path, capsys):
    from tfprune import cli

    other = str(tmp_path / "other.keras")
    tiny("other", width=8).save(other)
    table_path = table.save(tmp_path / "table.json")
    assert cli.main(["prune", other, "-o", str(tmp_path / "s.keras"),
                     "--target-latency", "0.5", "--latency-table", table_path]) == 2
    assert "measured for another model" in capsys.readouterr().err
