"""`tfprune.comparison.report` and `tfprune report`: pictures, JSON and table of a pruning."""

import importlib.metadata
import json
import os

import keras
import numpy as np
import pytest
from conftest import random_plan
from hypothesis import given, settings
from hypothesis import strategies as st

import tfprune
import tfprune.comparison
from tfprune import cli, zoo
from tfprune.comparison import MismatchedModelsError, compare_models, find_profiler


def _small_cnn(name="cnn", width=8, second=keras.layers.Conv2D):
    inputs = keras.Input((12, 12, 1), name="input")
    x = keras.layers.Conv2D(width, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = second(2 * width, 3, strides=2, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def pair():
    model = zoo.resnet20(input_shape=(16, 16, 1))
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5),
                                                 criterion="l1"))
    return model, slim


@pytest.fixture(scope="module")
def pair_files(pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("report_models")
    paths = str(d / "net.keras"), str(d / "slim.keras")
    for m, p in zip(pair, paths):
        m.save(p)
    return paths


def _png_size(path):
    import matplotlib.image

    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]  # width, height


def test_report_files_and_numbers_match_cost(pair, tmp_path):
    model, slim = pair
    result = tfprune.comparison.report(model, slim, str(tmp_path / "out"))
    assert sorted(os.path.basename(f) for f in result.files) == ["summary.json",
                                                                 "widths.png"]
    width, height = _png_size(tmp_path / "out" / "widths.png")
    assert width >= 800 and height >= 600
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary == json.loads(json.dumps(result.summary))
    before, after = tfprune.cost(model), tfprune.cost(slim)
    assert summary["original"]["params"] == before.params
    assert summary["original"]["macs"] == before.macs
    assert summary["slim"]["params"] == after.params
    assert summary["slim"]["macs"] == after.macs
    assert summary["ratios"]["macs"] == pytest.approx(after.macs / before.macs)
    assert summary["ratios"]["params"] == pytest.approx(after.params / before.params)
    rows = {r["name"]: r for r in summary["layers"]}
    for name, lc in before.per_layer.items():
        if lc.params or lc.macs:
            assert rows[name]["params_before"] == lc.params
            assert rows[name]["macs_before"] == lc.macs
            assert rows[name]["params_after"] == after.per_layer[name].params
            assert rows[name]["macs_after"] == after.per_layer[name].macs
    # Every layer with weights is listed, and the totals are their sums.
    assert sum(r["params_before"] for r in rows.values()) == before.params
    assert sum(r["macs_after"] for r in rows.values()) == after.macs
    # Widths are the layers' real output channels, in model order.
    names = [r["name"] for r in summary["layers"]]
    assert names.index("stem_conv") < names.index("stage3_block2_conv2") < \
        names.index("predictions")
    for name in ("stem_conv", "stage2_block1_conv1", "predictions"):
        assert rows[name]["channels_before"] == model.get_layer(name).output.shape[-1]
        assert rows[name]["channels_after"] == slim.get_layer(name).output.shape[-1]
    assert any(r["channels_after"] < r["channels_before"] for r in rows.values())
    table = result.table()
    assert "stage1_block0_conv1" in table and f"{after.macs:,}" in table
    assert "stem_bn" not in table  # layers without MACs are in the JSON only


def test_report_from_paths_without_output(pair_files):
    result = tfprune.comparison.report(*pair_files)
    assert result.files == []
    assert result.summary["original"]["model"] == pair_files[0]
    assert result.summary["ratios"]["macs"] < 0.55


def test_kernel_sizes_are_reported():
    model = _small_cnn()
    config = model.get_config()
    for layer in config["layers"]:
        if layer["config"]["name"] == "conv2":
            layer["config"]["kernel_size"] = [1, 1]
    smaller = keras.Model.from_config(config)
    rows = {r["name"]: r for r in compare_models(model, smaller)["layers"]}
    assert rows["conv2"]["kernel_before"] == [3, 3]
    assert rows["conv2"]["kernel_after"] == [1, 1]
    assert rows["conv2"]["macs_after"] * 9 == rows["conv2"]["macs_before"]


@pytest.mark.parametrize("build_slim, message", [
    (lambda: zoo.vgg11(input_shape=(16, 16, 1), width=0.25), "is not in"),
    (lambda: zoo.resnet20(input_shape=(20, 20, 1)), "input shapes differ"),
])
def test_unrelated_models_are_refused(pair, build_slim, message):
    with pytest.raises(MismatchedModelsError, match=message):
        compare_models(pair[0], build_slim())


def test_swapped_models_are_refused(pair):
    with pytest.raises(MismatchedModelsError, match="give the original model first"):
        compare_models(pair[1], pair[0])


def test_layer_of_another_class_is_refused():
    model = _small_cnn()
    other = _small_cnn(second=keras.layers.SeparableConv2D)
    with pytest.raises(MismatchedModelsError, match="'conv2' is a Conv2D"):
        compare_models(model, other)


def test_missing_profiler_is_a_clear_error(monkeypatch):
    real = importlib.metadata.entry_points

    def no_profilers(**kwargs):
        if kwargs.get("group") == "tfprune.profilers":
            return []
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", no_profilers)
    with pytest.raises(tfprune.TfpruneError, match="needs tflite_export"):
        find_profiler()


def test_profiler_is_found_through_the_entry_point(monkeypatch):
    from tflite_export.report import profile_pair

    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint(
        name="tflite", value="tflite_export.report:profile_pair",
        group="tfprune.profilers")

    def with_profiler(**kwargs):
        if kwargs.get("group") == "tfprune.profilers":
            return [ep]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", with_profiler)
    assert find_profiler() is profile_pair


@pytest.fixture(scope="module")
def tflite_pair(tmp_path_factory):
    from tflite_export import convert

    model = _small_cnn(width=16)
    keep = {}
    graph = tfprune.analyze(model)
    for group in graph.prunable_groups:
        keep[group.id] = list(range(group.size // 2))
    slim = tfprune.rebuild(model, graph.plan(keep))
    d = tmp_path_factory.mktemp("report_tflite")
    x = np.random.default_rng(0).normal(size=(8, 12, 12, 1)).astype("float32")
    paths = []
    for name, m in (("net", model), ("slim", slim)):
        m.save(str(d / f"{name}.keras"))
        convert(m, str(d / f"{name}.tflite"), verification_data=x)
        paths += [str(d / f"{name}.keras"), str(d / f"{name}.tflite")]
    return paths  # net.keras, net.tflite, slim.keras, slim.tflite


def test_tflite_profile(tflite_pair, tmp_path):
    from tflite_export.report import profile_pair

    net, net_tflite, slim, slim_tflite = tflite_pair
    result = tfprune.comparison.report(net, slim, str(tmp_path),
                                       tflite=(net_tflite, slim_tflite),
                                       profiler=profile_pair, runs=10)
    names = sorted(os.path.basename(f) for f in result.files)
    assert names == ["profile.png", "summary.json", "widths.png"]
    width, height = _png_size(tmp_path / "profile.png")
    assert width >= 600 and height >= 300
    t = json.load(open(tmp_path / "summary.json"))["tflite"]
    assert t["original"]["size_bytes"] == os.path.getsize(net_tflite)
    assert t["slim"]["size_bytes"] == os.path.getsize(slim_tflite)
    assert t["slim"]["size_bytes"] < t["original"]["size_bytes"]
    assert "CONV_2D" in t["original"]["ops_ms"] and t["original"]["ops_ms"]["CONV_2D"] > 0
    assert t["latency_ratio"] == pytest.approx(
        t["slim"]["median_ms"] / t["original"]["median_ms"])
    assert "ms ->" in result.table()


def test_cli_report_with_tflite(tflite_pair, tmp_path, capsys, monkeypatch):
    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint(
        name="tflite", value="tflite_export.report:profile_pair",
        group="tfprune.profilers")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: (
        [ep] if kw.get("group") == "tfprune.profilers" else real(**kw)))
    net, net_tflite, slim, slim_tflite = tflite_pair
    mtimes = [os.path.getmtime(p) for p in tflite_pair]
    out = str(tmp_path / "rep")
    assert cli.main(["report", net, slim, "-o", out, "--tflite", net_tflite,
                     slim_tflite, "--runs", "10"]) == 0
    printed = capsys.readouterr().out
    assert "conv1" in printed and "ratio" in printed and "ms ->" in printed
    assert sorted(os.listdir(out)) == ["profile.png", "summary.json", "widths.png"]
    assert [os.path.getmtime(p) for p in tflite_pair] == mtimes  # inputs untouched


def test_cli_report(pair_files, tmp_path, capsys):
    out = str(tmp_path / "rep")
    assert cli.main(["report", *pair_files, "-o", out]) == 0
    printed = capsys.readouterr().out
    assert "stem_conv" in printed and "wrote" in printed
    assert sorted(os.listdir(out)) == ["summary.json", "widths.png"]


@pytest.mark.parametrize("which, message", [
    ("unrelated", "is not in"),
    ("missing", "no such file"),
    ("not_keras", "expected a .keras model file"),
    ("missing_tflite", "no such file"),
    ("not_tflite", "expected a .tflite file"),
])
def test_cli_bad_input_is_one_line(pair_files, which, message, tmp_path, capsys):
    net, slim = pair_files
    extra = []
    if which == "unrelated":
        slim = str(tmp_path / "vgg.keras")
        zoo.vgg11(input_shape=(16, 16, 1), width=0.25).save(slim)
    elif which == "missing":
        slim = str(tmp_path / "nothing.keras")
    elif which == "not_keras":
        slim = str(tmp_path / "notes.txt")
        open(slim, "w").write("not a model")
    elif which == "missing_tflite":
        extra = ["--tflite", str(tmp_path / "a.tflite"), str(tmp_path / "b.tflite")]
    else:
        extra = ["--tflite", net, slim]
    assert cli.main(["report", net, slim, "-o", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out")  # nothing written on bad input


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_totals_equal_the_plans_cost_for_random_plans(seed):
    model = _small_cnn(width=6)
    graph = tfprune.analyze(model)
    plan = random_plan(graph, np.random.default_rng(seed))
    slim = tfprune.rebuild(model, plan)
    summary = compare_models(model, slim)
    planned = tfprune.cost(model, plan)
    assert summary["slim"]["params"] == planned.params == slim.count_params()
    assert summary["slim"]["macs"] == planned.macs
    rows = {r["name"]: r for r in summary["layers"]}
    for name in ("conv1", "conv2"):
        kept = int(np.count_nonzero(plan.kept_channels[graph.channels[
            graph.node(name).outputs[0]]]))
        assert rows[name]["channels_after"] == kept
        assert rows[name]["macs_after"] == planned.per_layer[name].macs


def test_shipped_demo_baseline():
    """examples/baseline holds a small, trained resnet20 that loads anywhere."""
    root = os.path.join(os.path.dirname(__file__), "..", "examples", "baseline")
    path = os.path.join(root, "resnet20_fashion_mnist.keras")
    assert os.path.getsize(path) < 1.5e6
    model = keras.saving.load_model(path, compile=False)  # no custom objects needed
    reference = zoo.resnet20(input_shape=(28, 28, 1), classes=10)
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]
    assert [layer.name for layer in model.layers] == [
        layer.name for layer in reference.layers]
    meta = json.load(open(os.path.join(root, "resnet20_fashion_mnist.json")))
    assert meta["script"] == "examples/train_baseline.py"
    assert 0.5 < meta["test_accuracy"] <= 1.0
    # Trained, not freshly initialised: BatchNorm has running statistics.
    mean = model.get_layer("stem_bn").moving_mean.numpy()
    assert np.abs(mean).max() > 1e-3
