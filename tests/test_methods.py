"""The method registry: one shape for every method, user methods included."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfprune
from tfprune import cli
from tfprune.core.rebuild import zero_out
from tfprune.errors import TfpruneError
from tfprune.ranking.fit import fit_plan

BUILT_IN = {"l1", "l2", "bn", "group_l1", "group_l2", "prunenet", "ga", "hfp", "smof",
            "prunetrain"}
TRAINING = {"hfp", "smof", "prunetrain"}


def tiny_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = keras.layers.BatchNormalization(name="b1")(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    y = keras.layers.BatchNormalization(name="b2")(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", name="c3")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, name="logits")(x), name="tiny")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12, 12, 1)).astype("float32")
    return x, rng.integers(0, 4, 64)


def random_plan(model, budget, data=None, seed=0):
    """A user's method: random scores, fitted to the budget."""
    graph = tfprune.analyze(model)
    rng = np.random.default_rng(seed)
    return fit_plan(graph, {g.id: rng.random(g.size) for g in graph.prunable_groups},
                    budget)


@pytest.fixture
def user_method():
    method = tfprune.register_method("random", tfprune.Method(
        plan=random_plan, summary="random channels (a control)",
        options=[tfprune.Option("seed", int, 0, "random seed")]))
    yield method
    from tfprune.methods import registry

    registry._REGISTRY.pop("random", None)


def test_every_built_in_method_is_registered_with_its_shape():
    methods = tfprune.available_methods()
    assert BUILT_IN <= set(methods)
    for name in BUILT_IN:
        m = methods[name]
        assert m.name == name and m.summary
        assert m.trains == (name in TRAINING)
        assert m.kind == ("training" if name in TRAINING else "one-shot")
    assert methods["prunenet"].needs_data and methods["ga"].needs_data
    assert methods["smof"].kernels and not methods["smof"].latency
    assert not methods["prunetrain"].budget
    assert methods["hfp"].latency and methods["group_l1"].latency


@pytest.mark.parametrize("name", sorted(BUILT_IN - TRAINING))
def test_one_shot_methods_meet_the_budget(name, data):
    model = tiny_cnn()
    budget = tfprune.Budget(macs=0.5)
    options = {"generations": 2, "population": 4} if name == "ga" else {}
    plan = tfprune.get_method(name).plan(model, budget, data, **options)
    assert isinstance(plan, tfprune.PruningPlan)
    slim = tfprune.rebuild(model, plan)
    assert 0 < tfprune.cost(slim).macs <= 0.5 * tfprune.cost(model).macs


@pytest.mark.parametrize("name", ["hfp", "smof"])
def test_training_methods_give_a_session_whose_slim_model_computes_what_was_trained(
        name, data):
    model = tiny_cnn()
    session = tfprune.get_method(name).attach(model, tfprune.Budget(macs=0.5))
    assert isinstance(session, tfprune.TrainingSession)
    session.model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    session.model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=session.callbacks)
    plan = session.plan()
    slim = session.rebuild()
    assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(model).macs
    assert tfprune.cost(slim).macs == tfprune.cost(tfprune.rebuild(session.model, plan)).macs
    x = data[0][:8]
    if name == "hfp":  # hardened: the gated model already computes the slim one
        np.testing.assert_allclose(slim.predict(x, verbose=0),
                                   session.model.predict(x, verbose=0), atol=1e-4)
    # The user's model is untouched by the session.
    assert len(model.layers) == len(tiny_cnn().layers)


def test_prunetrain_session_plan_describes_the_trained_network(data):
    model = tiny_cnn()
    session = tfprune.get_method("prunetrain").attach(
        model, None, penalty_ratio=0.9, reconfigure_every=1, threshold=0.2)
    session.model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    session.model.fit(*data, epochs=3, batch_size=16, verbose=0, callbacks=session.callbacks)
    slim = session.rebuild()
    plan = session.plan()
    assert plan.graph.model is model
    widths = {layer.name: layer.filters for layer in slim.layers
              if isinstance(layer, keras.layers.Conv2D)}
    assert tfprune.cost(slim).macs < tfprune.cost(model).macs  # something was removed
    for group in plan.graph.prunable_groups:
        for producer in group.producers:
            if producer in widths:
                assert len(plan.keep[group.id]) == widths[producer]


def test_method_errors_are_clear(data):
    model = tiny_cnn()
    with pytest.raises(TfpruneError, match="takes no latency target"):
        tfprune.get_method("prunenet").plan(
            model, tfprune.Budget(latency=0.5, table=_FakeTable()), data)
    with pytest.raises(TfpruneError, match="needs calibration data"):
        tfprune.get_method("prunenet").plan(model, tfprune.Budget(macs=0.5))
    with pytest.raises(TfpruneError, match="takes no option generations"):
        tfprune.get_method("l1").plan(model, tfprune.Budget(macs=0.5), generations=3)
    with pytest.raises(TfpruneError, match="takes no budget"):
        tfprune.get_method("prunetrain").attach(model, tfprune.Budget(macs=0.5))
    with pytest.raises(TfpruneError, match="trains the model"):
        tfprune.get_method("hfp").plan(model, tfprune.Budget(macs=0.5))
    with pytest.raises(TfpruneError, match="does not round widths"):
        tfprune.get_method("smof").attach(model, tfprune.Budget(macs=0.5, round_to=4))
    with pytest.raises(TfpruneError, match="needs a tfprune.Budget"):
        tfprune.get_method("l1").plan(model, 0.5)
    with pytest.raises(ValueError, match="unknown method 'nope'; choose one of"):
        tfprune.get_method("nope")


class _FakeTable:
    base_ms = 1.0

    def predict(self, plan):
        return 1.0

    def check(self, graph):
        pass


def test_register_method_validates():
    with pytest.raises(ValueError, match="exactly one"):
        tfprune.Method(summary="neither")
    with pytest.raises(ValueError, match="exactly one"):
        tfprune.Method(plan=random_plan, attach=random_plan)
    with pytest.raises(ValueError, match="tfprune.Method"):
        tfprune.register_method("x", random_plan)
    with pytest.raises(ValueError, match="letters, digits"):
        tfprune.register_method("bad name", tfprune.Method(plan=random_plan))
    with pytest.raises(ValueError, match="identifier"):
        tfprune.Option("not-an-identifier")


def test_a_user_method_is_called_like_a_built_in_one(user_method):
    model = tiny_cnn()
    method = tfprune.get_method("random")
    assert method is user_method and method.kind == "one-shot"
    a = method.plan(model, tfprune.Budget(params=0.6), seed=1)
    b = method.plan(model, tfprune.Budget(params=0.6), seed=2)
    assert a.to_dict() != b.to_dict()
    assert tfprune.cost(model, a).params <= 0.6 * tfprune.cost(model).params


def test_a_user_method_appears_in_the_cli_and_runs_end_to_end(user_method, tmp_path, capsys):
    path = tmp_path / "tiny.keras"
    tiny_cnn().save(path)
    with pytest.raises(SystemExit):
        cli.main(["prune", "--help"])
    out = capsys.readouterr().out
    assert "random: random channels (a control)" in out and "--seed" in out
    slim = tmp_path / "slim.keras"
    assert cli.main(["prune", str(path), "--method", "random", "--seed", "3",
                     "--target-macs", "0.5", "-o", str(slim)]) == 0
    model, result = keras.saving.load_model(path), keras.saving.load_model(slim)
    assert tfprune.cost(result).macs <= 0.5 * tfprune.cost(model).macs
    capsys.readouterr()
    # Another method's option is refused, naming the methods that take it.
    assert cli.main(["prune", str(path), "--method", "l1", "--seed", "3",
                     "--target-macs", "0.5", "-o", str(tmp_path / "x.keras")]) == 2
    assert ("--method l1 does not take --seed (methods that do: ga, prunenet, random)"
            in capsys.readouterr().err)


def test_a_method_from_an_entry_point_appears_in_the_cli(tmp_path):
    """A package that declares a `tfprune.methods` entry point adds a method
    to `tfprune prune --method` without any change to tfprune."""
    (tmp_path / "my_pruning.py").write_text(textwrap.dedent("""
        import numpy as np
        import tfprune
        from tfprune.ranking.fit import fit_plan

        def reverse_l1(model, budget, data=None):
            graph = tfprune.analyze(model)
            scores = tfprune.ranking.importance.magnitude(graph)
            return fit_plan(graph, {g: -s for g, s in scores.items()}, budget)

        METHOD = tfprune.Method(plan=reverse_l1, summary="the smallest filters kept")
    """))
    info = tmp_path / "my_pruning-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pruning\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tfprune.methods]\nreverse = my_pruning:METHOD\n")
    model = tmp_path / "tiny.keras"
    tiny_cnn().save(model)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-m", "tfprune", "prune", "--help"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "reverse: the smallest filters kept" in run.stdout
    run = subprocess.run([sys.executable, "-m", "tfprune", "prune", str(model), "--method",
                          "reverse", "--target-macs", "0.5", "-o", str(tmp_path / "s.keras")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert os.path.exists(tmp_path / "s.keras")


def test_a_layer_spec_fold_hook_is_how_rebuild_removes_training_layers():
    """A user's training-time layer folds into the weights through its
    LayerSpec, as the gates and kernel masks do: rebuild knows no method."""

    @keras.saving.register_keras_serializable("test_methods")
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.s = self.add_weight(name="s", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.s

    def fold_scales(model):
        config = model.get_config()
        names = {l.name for l in model.layers if isinstance(l, Scale)}
        for entry in config["layers"]:  # rewire readers of a Scale to its input
            for node in entry.get("inbound_nodes", []):
                for arg in node["args"]:
                    for t in (arg if isinstance(arg, list) else [arg]):
                        hist = t["config"]["keras_history"]
                        while hist[0] in names:
                            source = next(e for e in config["layers"] if e["name"] == hist[0])
                            hist[:] = source["inbound_nodes"][0]["args"][0]["config"][
                                "keras_history"]
        config["layers"] = [e for e in config["layers"] if e["name"] not in names]
        plain = keras.Model.from_config(config)
        for layer in plain.layers:
            layer.set_weights(model.get_layer(layer.name).get_weights())
        for name in names:  # the conv before each Scale absorbs it
            conv = plain.get_layer(name.replace("_scale", ""))
            s = keras.ops.convert_to_numpy(model.get_layer(name).s)
            kernel, bias = conv.get_weights()
            conv.set_weights([kernel * s, bias * s])
        return plain

    tfprune.register_layer(Scale, tfprune.LayerSpec(kind="elementwise",
                                                    weights={"s": {"in": -1}},
                                                    fold=fold_scales))
    keras.utils.set_random_seed(1)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(5, 3, name="c1")(inp)
    x = Scale(name="c1_scale")(x)
    x = keras.layers.ReLU()(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="d")(keras.layers.Flatten()(x)))
    model.get_layer("c1_scale").s.assign(np.linspace(0.1, 2.0, 5).astype("float32"))
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
    graph = tfprune.analyze(model)
    plan = graph.plan({graph.prunable_groups[0].id: [0, 2, 4]})
    from tfprune.core.rebuild import fold_layers

    folded = fold_layers(model)
    assert not any(isinstance(layer, Scale) for layer in folded.layers)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    slim = tfprune.rebuild(model, plan)
    assert not any(isinstance(layer, Scale) for layer in slim.layers)
    np.testing.assert_allclose(slim.predict(x, verbose=0),
                               zero_out(model, plan).predict(x, verbose=0), atol=1e-5)
