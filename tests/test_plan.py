"""PruningPlan validation and JSON round-trip."""

import json

import keras
import numpy as np
import pytest
from keras import layers

import tfprune


@pytest.fixture
def graph():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, name="c1")(inputs)
    x = layers.Conv2D(6, 3, name="c2")(x)
    outputs = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(x))
    return tfprune.analyze(keras.Model(inputs, outputs, name="net"))


def test_unlisted_groups_are_kept_whole(graph):
    g1 = graph.group_of("c1")
    plan = graph.plan({g1.id: [5, 1, 2]})
    np.testing.assert_array_equal(plan.keep[g1.id], [1, 2, 5])
    assert set(plan.keep) == {g.id for g in graph.groups}
    assert plan.widths()[graph.group_of("c2").id] == 6
    assert not plan.is_identity and graph.plan().is_identity


@pytest.mark.parametrize("keep, message", [
    ([], "keeps no channel"),
    ([0, 0, 1], "twice"),
    ([0, 8], "out of range"),
    ([-1], "out of range"),
])
def test_invalid_indices(graph, keep, message):
    with pytest.raises(tfprune.InvalidPlanError, match=message):
        graph.plan({graph.group_of("c1").id: keep})


def test_fixed_group_and_unknown_group(graph):
    with pytest.raises(tfprune.InvalidPlanError, match="cannot be pruned"):
        graph.plan({graph.group_of("head").id: [0]})
    with pytest.raises(tfprune.InvalidPlanError, match="does not have"):
        graph.plan({99: [0]})


def test_round_to(graph):
    gid = graph.group_of("c1").id
    tfprune.PruningPlan(graph, {gid: [0, 1, 2, 3]}, round_to=4)
    with pytest.raises(tfprune.InvalidPlanError, match="round_to=4"):
        tfprune.PruningPlan(graph, {gid: [0, 1, 2]}, round_to=4)


def test_json_round_trip(graph):
    plan = graph.plan({graph.group_of("c1").id: [0, 3, 7], graph.group_of("c2").id: [2]})
    again = tfprune.PruningPlan.from_json(plan.to_json(), graph)
    for gid in plan.keep:
        np.testing.assert_array_equal(plan.keep[gid], again.keep[gid])


def test_json_for_another_model_is_rejected(graph):
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(5, 3, name="c1")(inputs)
    other = tfprune.analyze(keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x))))
    text = graph.plan({graph.group_of("c1").id: [0]}).to_json()
    with pytest.raises(tfprune.InvalidPlanError, match="another model"):
        tfprune.PruningPlan.from_json(text, other)
    with pytest.raises(tfprune.InvalidPlanError, match="not valid JSON"):
        tfprune.PruningPlan.from_json("{", graph)
    with pytest.raises(tfprune.InvalidPlanError, match="not a tfprune plan"):
        tfprune.PruningPlan.from_json(json.dumps({"a": 1}), graph)


def test_rebuild_rejects_non_plans():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    with pytest.raises(tfprune.InvalidPlanError, match="PruningPlan"):
        tfprune.rebuild(model, {0: [1]})


def test_refits_survive_json_and_reach_the_rebuild(graph):
    c1, c2 = graph.group_of("c1"), graph.group_of("c2")
    plan = graph.plan({c1.id: [0, 3, 7], c2.id: [1, 4]})
    refit = np.random.default_rng(0).normal(size=(3, 3, 3, 6)).astype("float32")
    plan.refits = {"c2": {"kernel": refit}}
    text = plan.to_json()
    again = tfprune.PruningPlan.from_json(text, graph)
    np.testing.assert_array_equal(again.refits["c2"]["kernel"], refit)
    assert again.refits["c2"]["kernel"].dtype == np.float32
    slim = tfprune.rebuild(graph.model, again)
    np.testing.assert_array_equal(slim.get_layer("c2").kernel, refit[..., [1, 4]])
    # refits that do not fit the kept channels, or name another model's layer
    plan.refits = {"c2": {"kernel": refit[:, :, :2]}}
    with pytest.raises(tfprune.InvalidPlanError, match="c2/kernel"):
        tfprune.rebuild(graph.model, tfprune.PruningPlan.from_json(plan.to_json(), graph))
    data = json.loads(text)
    data["refits"] = {"nope": data["refits"]["c2"]}
    with pytest.raises(tfprune.InvalidPlanError, match="'nope'"):
        tfprune.PruningPlan.from_dict(data, graph)
    data["refits"] = {"c2": {"kernel": {"npy_base64": "!!"}}}
    with pytest.raises(tfprune.InvalidPlanError, match="base64"):
        tfprune.PruningPlan.from_dict(data, graph)
