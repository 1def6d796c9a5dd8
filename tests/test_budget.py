"""`tfprune.Budget`: validated once, resolved against a model once."""

import math

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfprune


def small_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, name="d")(x))


class Table:
    """The least a latency table must offer a Budget."""

    base_ms = 2.0
    checked = None

    def predict(self, plan):
        return self.base_ms

    def check(self, graph):
        Table.checked = graph


BAD_TARGETS = [0, -1, -0.5, math.nan, math.inf, -math.inf, True, False, "0.5", [0.5], None]


@pytest.mark.parametrize("field", ["macs", "params"])
@pytest.mark.parametrize("value", BAD_TARGETS[:-1])
def test_bad_count_targets_are_refused_naming_the_value(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite fraction.*{value!r}"):
        tfprune.Budget(**{field: value})


@pytest.mark.parametrize("value", ["fast", "-1ms", "0ms", "nanms", "infms", "1e999ms", 0,
                                   -2.0, math.nan, math.inf, True])
def test_bad_latency_targets_are_refused(value):
    with pytest.raises(ValueError, match="latency must be"):
        tfprune.Budget(latency=value, table=Table())


@pytest.mark.parametrize("value", [0, -8, 2.5, True, "AUTO", "8", None, 1.0])
def test_bad_round_to_is_refused_not_coerced(value):
    with pytest.raises(ValueError, match="round_to must be a positive integer or 'auto'"):
        tfprune.Budget(macs=0.5, round_to=value)


def test_what_needs_what():
    with pytest.raises(ValueError, match="needs macs=, params= and/or latency="):
        tfprune.Budget()
    with pytest.raises(ValueError, match="latency target needs table="):
        tfprune.Budget(latency=0.5)
    with pytest.raises(ValueError, match="reads the widths from a latency table"):
        tfprune.Budget(macs=0.5, round_to="auto")
    with pytest.raises(ValueError, match="must be a tfprune.latency.LatencyTable"):
        tfprune.Budget(macs=0.5, table={"base_ms": 1})
    assert tfprune.Budget(latency="0.8ms", table=Table(), round_to="auto").round_to == "auto"


@settings(max_examples=40, deadline=None)
@given(macs=st.none() | st.floats(0.01, 1.0) | st.floats(2.0, 1e9),
       params=st.none() | st.floats(0.01, 1.0) | st.integers(2, 10**9),
       latency=st.none() | st.floats(0.01, 1.0) | st.floats(2.0, 50.0)
       | st.floats(0.01, 50.0).map(lambda ms: f"{ms}ms"))
def test_resolve_turns_fractions_into_counts_and_milliseconds(macs, params, latency):
    if macs is None and params is None and latency is None:
        return
    graph = tfprune.analyze(MODEL)
    base = tfprune.cost(graph)
    budget = tfprune.Budget(macs=macs, params=params, latency=latency,
                            table=Table() if latency is not None else None)
    limits = budget.resolve(graph)
    assert set(limits) == set(budget.targets)
    for key, value, total in (("macs", macs, base.macs), ("params", params, base.params)):
        if value is not None:
            assert limits[key] == pytest.approx(value * total if value <= 1 else value)
    if isinstance(latency, str):
        assert limits["latency"] == pytest.approx(float(latency[:-2]))
    elif latency is not None:
        assert limits["latency"] == pytest.approx(latency * 2.0 if latency <= 1 else latency)


MODEL = small_model()


def test_resolve_checks_the_table_against_the_model():
    graph = tfprune.analyze(MODEL)
    tfprune.Budget(macs=0.5, table=Table()).resolve(graph)
    assert Table.checked is graph


def test_keyword_targets_build_the_same_budget():
    assert tfprune.Budget.of(target_macs=0.5, round_to=8) == tfprune.Budget(macs=0.5,
                                                                            round_to=8)
    budget = tfprune.Budget(params=0.3)
    assert tfprune.Budget.of(budget) is budget
    with pytest.raises(ValueError, match="either a Budget or target_macs, not both"):
        tfprune.Budget.of(budget, target_macs=0.5)
    with pytest.raises(ValueError, match="expected a tfprune.Budget, got str"):
        tfprune.Budget.of("l1")
    plan_a = tfprune.prune(MODEL, target_macs=0.5, round_to=2)
    plan_b = tfprune.prune(MODEL, tfprune.Budget(macs=0.5, round_to=2))
    assert plan_a.to_dict() == plan_b.to_dict()


def test_every_method_refuses_a_bad_budget_before_any_work():
    for name, method in tfprune.available_methods().items():
        if not method.budget:
            continue
        with pytest.raises(tfprune.TfpruneError, match="needs a tfprune.Budget"):
            (method.plan if not method.trains else method.attach)(MODEL, {"macs": 0.5})
