"""Nothing lost, nothing silent: the CLI's file safety and bad numbers.

The cases of issue 11, each checked where a user meets it: through the real
`tfprune` entry point in a subprocess (`python -m tfprune`, this checkout on
PYTHONPATH), and through the Python API where there is one.
"""

import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest

import tfprune
from tfprune import cli, fileio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = os.path.isdir("/usr/share/datasets/fashion-mnist")


def run_cli(*args, cwd=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tfprune", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def tfprune_lines(stderr):
    """The lines tfprune itself wrote (TensorFlow may log too)."""
    return [line for line in stderr.splitlines() if line.startswith("tfprune:")]


def assert_one_line_error(run, *words):
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    lines = tfprune_lines(run.stderr)
    assert len(lines) == 1 and lines[0].startswith("tfprune: error:"), run.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tiny_model(input_shape=(8, 8, 1), classes=3, dtype=None, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1", dtype=dtype)(inp)
    x = keras.layers.BatchNormalization(name="bn1", dtype=dtype)(x)
    x = keras.layers.ReLU(name="relu1", dtype=dtype)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2",
                            dtype=dtype)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(x)
    out = keras.layers.Dense(classes, name="logits", dtype="float32")(x)
    return keras.Model(inp, out, name="tiny")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "in.keras"
    tiny_model().save(path)
    return str(path)


@pytest.fixture
def model_copy(model_file, tmp_path):
    """A private copy of the tiny model, so a test may watch it change."""
    path = tmp_path / "in.keras"
    path.write_bytes(open(model_file, "rb").read())
    return str(path)


# 1. --plan naming the input model, or the same file as -o.

def test_plan_equal_to_input_is_refused_and_input_kept(model_copy, tmp_path):
    before = digest(model_copy)
    run = run_cli("prune", model_copy, "-o", tmp_path / "out.keras", "--plan",
                  model_copy, "--target-macs", "0.5")
    assert_one_line_error(run, "--plan", "would overwrite the input")
    assert digest(model_copy) == before
    assert sorted(os.listdir(tmp_path)) == ["in.keras"]


def test_plan_equal_to_output_is_refused(model_copy, tmp_path, capsys):
    out = tmp_path / "out.keras"
    assert cli.main(["prune", model_copy, "-o", str(out), "--plan", str(out),
                     "--target-macs", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--plan" in err and "same file" in err and err.count("\n") == 1
    assert not out.exists()
    # The same file under another name: a link.json pointing at the output.
    out.write_bytes(b"an earlier result")
    link = tmp_path / "link.json"
    link.symlink_to(out)
    assert cli.main(["prune", model_copy, "-o", str(out), "--plan", str(link),
                     "--target-macs", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "same file" in err and err.count("\n") == 1
    assert out.read_bytes() == b"an earlier result"


def test_plan_must_be_json_and_from_plan_is_an_input(model_copy, tmp_path, capsys):
    out = str(tmp_path / "out.keras")
    assert cli.main(["prune", model_copy, "-o", out, "--plan", str(tmp_path / "p.keras"),
                     "--target-macs", "0.5"]) == 2
    assert "must end with .json" in capsys.readouterr().err
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    assert cli.main(["prune", model_copy, "-o", out, "--from-plan", str(plan),
                     "--plan", str(plan)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert plan.read_text() == "{}"


# 2. Real paths are compared: a symlink (or hard link) to the input.

def test_symlink_to_input_is_caught(model_copy, tmp_path):
    link = tmp_path / "link.keras"
    link.symlink_to(model_copy)
    before = digest(model_copy)
    run = run_cli("prune", link, "-o", model_copy, "--target-macs", "0.5")
    assert_one_line_error(run, "would overwrite the input")
    assert digest(model_copy) == before and os.path.islink(link)


def test_hard_link_and_output_symlink_are_caught(model_copy, tmp_path, capsys):
    hard = tmp_path / "hard.keras"
    os.link(model_copy, hard)
    assert cli.main(["prune", model_copy, "-o", str(hard), "--target-macs", "0.5"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    link = tmp_path / "out_link.keras"
    link.symlink_to(model_copy)  # an output that is a symlink to the input
    assert cli.main(["prune", model_copy, "-o", str(link), "--target-macs", "0.5"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err


# 3. Outputs are checked before any work; .h5 refused; nothing left behind.

def test_train_output_in_missing_directory_fails_before_training(tmp_path):
    started = time.monotonic()
    run = run_cli("train", "--model", "resnet20", "--epochs", "50", "--limit", "256",
                  "-o", tmp_path / "missing" / "x.keras", cwd=tmp_path)
    assert_one_line_error(run, "does not exist", str(tmp_path / "missing"))
    assert "Epoch" not in run.stdout  # no training happened
    assert os.listdir(tmp_path) == []
    assert time.monotonic() - started < 300  # not a 50-epoch run


@pytest.mark.parametrize("argv, message", [
    (["prune", "MODEL", "-o", "out.h5", "--target-macs", "0.5"], "cannot read back"),
    (["prune", "MODEL", "-o", "out.txt", "--target-macs", "0.5"], "must end with .keras"),
    (["prune", "MODEL", "-o", "nodir/out.keras", "--target-macs", "0.5"], "does not exist"),
    (["prune", "MODEL", "-o", ".", "--target-macs", "0.5"], "must end with .keras"),
    (["prune", "MODEL", "-o", "sub.keras", "--target-macs", "0.5"], "is a directory"),
    (["prune", "MODEL", "-o", "ro/out.keras", "--target-macs", "0.5"], "not writable"),
    (["train", "--model", "resnet20", "-o", "x.h5"], "cannot read back"),
    (["prune", "MODEL", "--method", "ga", "-o", "nodir/x.keras", "--target-macs", "0.5",
      "--data", "fashion_mnist"], "does not exist"),
    (["export", "MODEL", "-o", "nodir/x.tflite"], "does not exist"),
    (["export", "MODEL", "-o", "x.keras"], "must end with .tflite"),
])
def test_bad_outputs_are_refused_up_front(model_copy, tmp_path, monkeypatch, capsys,
                                          argv, message):
    if os.geteuid() == 0 and "ro/" in " ".join(argv):
        pytest.skip("root may write anywhere")
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub.keras")
    os.mkdir("ro", 0o500)
    before = sorted(os.listdir(tmp_path))
    assert cli.main([model_copy if a == "MODEL" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(os.listdir(tmp_path)) == before


def _leftovers(directory, keep=()):
    return sorted(set(os.listdir(directory)) - set(keep))


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "plan.json"
    target.write_text("old")

    def fail(*args):
        raise OSError("rename refused")

    monkeypatch.setattr(fileio.os, "replace", fail)
    with pytest.raises(OSError, match="rename refused"):
        fileio.write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and _leftovers(tmp_path) == ["plan.json"]
    for error in (KeyboardInterrupt, RuntimeError):
        with pytest.raises(error), fileio.atomic_path(target) as tmp:
            assert tmp.endswith(".json") and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, "w") as f:
                f.write("half")
            raise error()
        assert target.read_text() == "old" and _leftovers(tmp_path) == ["plan.json"]
    fileio.write_atomic(target, "new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == ["plan.json"]


def test_model_save_uses_a_fresh_keras_name(tmp_path, monkeypatch):
    # A user file with the old temporary name is not touched.
    (tmp_path / "x.keras.partial.keras").write_text("mine")
    names = []
    model = tiny_model()
    real_save = keras.Model.save

    def save(self, path, *args, **kwargs):
        names.append(os.path.basename(path))
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    fileio.save_model(model, tmp_path / "x.keras")
    assert names[0].endswith(".keras") and names[0] != "x.keras"
    assert _leftovers(tmp_path) == ["x.keras", "x.keras.partial.keras"]
    assert (tmp_path / "x.keras.partial.keras").read_text() == "mine"
    assert keras.saving.load_model(tmp_path / "x.keras").count_params() == model.count_params()

    def broken(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        fileio.save_model(model, tmp_path / "y.keras")
    assert _leftovers(tmp_path) == ["x.keras", "x.keras.partial.keras"]


def test_no_other_atomic_write_copies():
    """One write-then-rename helper: no other module renames files."""
    offenders = []
    for package in ("tfprune", "tflite_export", "benchmarks"):
        for base, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                path = os.path.join(base, name)
                if name.endswith(".py") and not path.endswith(os.path.join("tfprune", "fileio.py")):
                    text = open(path).read()
                    if re.search(r"os\.(replace|rename)\(|\.partial[\"'.]", text):
                        offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []


# 4. Non-finite and non-positive targets.

def test_infinite_target_is_refused_by_the_cli(model_copy, tmp_path):
    run = run_cli("prune", model_copy, "-o", tmp_path / "out.keras", "--target-macs", "inf")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "finite" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.keras"]


@pytest.mark.parametrize("option", ["--target-macs", "--target-params"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-0.5", "1e999", "half"])
def test_bad_targets_in_process(model_copy, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["prune", model_copy, "-o", str(tmp_path / "o.keras"), option, value])
    assert exit_.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0, True, "0.5"])
def test_bad_targets_in_the_api(value):
    model = tiny_model()
    with pytest.raises(ValueError, match="finite fraction"):
        tfprune.prune(model, target_macs=value)
    with pytest.raises(ValueError, match="finite fraction"):
        tfprune.prune(model, target_params=value)
    for target in ("macs", "params"):  # the Budget every method takes refuses it too
        with pytest.raises(ValueError, match=f"{target} must be a finite fraction"):
            tfprune.Budget(**{target: value})
    graph = tfprune.analyze(model)
    budget = tfprune.Budget(macs=np.float32(0.5), params=np.float32(0.25))
    assert budget.resolve(graph) == {"macs": 0.5 * tfprune.cost(graph).macs,
                                     "params": 0.25 * tfprune.cost(graph).params}


# 5. NaN or infinite weights.

def _poison(model, layer, weight, value, index=0):
    w = next(v for v in model.get_layer(layer).weights if v.name == weight)
    values = keras.ops.convert_to_numpy(w).copy()
    values.reshape(-1)[index] = value
    w.assign(values)
    return model


@pytest.mark.parametrize("layer, weight, value, words", [
    ("conv2", "kernel", np.nan, "1 NaN value"),
    ("conv1", "kernel", np.inf, "1 infinite value"),
    ("bn1", "moving_variance", np.nan, "NaN"),
])
def test_non_finite_weights_are_refused(layer, weight, value, words):
    model = _poison(tiny_model(), layer, weight, value)
    for criterion in ("l1", "l2", "bn"):
        with pytest.raises(tfprune.NonFiniteWeightsError) as error:
            tfprune.prune(model, criterion=criterion, target_macs=0.5)
        message = str(error.value)
        assert f"layer '{layer}' weight '{weight}'" in message and words in message
        assert "retrain or fix the model" in message


def test_non_finite_scores_never_reach_the_ranking():
    graph = tfprune.analyze(tiny_model())
    scores = tfprune.ranking.importance.magnitude(graph)
    gid = graph.prunable_groups[0].id
    scores[gid] = scores[gid].copy()
    scores[gid][0] = np.nan
    from tfprune.ranking.fit import fit_plan

    for scope in ("global", "uniform"):
        with pytest.raises(tfprune.NonFiniteWeightsError, match=f"group {gid}"):
            fit_plan(graph, scores, tfprune.Budget(macs=0.5), scope=scope)


def test_nan_model_is_refused_by_the_cli(tmp_path):
    path = tmp_path / "nan.keras"
    _poison(tiny_model(), "conv2", "kernel", np.nan).save(path)
    before = digest(path)
    run = run_cli("prune", path, "-o", tmp_path / "out.keras", "--target-macs", "0.5")
    assert_one_line_error(run, "layer 'conv2' weight 'kernel'", "NaN", "retrain or fix")
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == ["nan.keras"]


def test_inspect_warns_about_nan_weights(tmp_path, capsys):
    path = tmp_path / "nan.keras"
    _poison(tiny_model(), "conv2", "bias", np.nan).save(path)
    assert cli.main(["inspect", str(path)]) == 0
    assert "warning: layer 'conv2' weight 'bias' has 1 NaN value" in capsys.readouterr().out


def test_nan_model_is_refused_with_a_plan_too(tmp_path, model_file, capsys):
    plan = tmp_path / "plan.json"
    assert cli.main(["prune", model_file, "-o", str(tmp_path / "a.keras"),
                     "--target-macs", "0.5", "--plan", str(plan)]) == 0
    path = tmp_path / "nan.keras"
    _poison(keras.saving.load_model(model_file), "conv1", "bias", np.inf).save(path)
    capsys.readouterr()
    assert cli.main(["prune", str(path), "-o", str(tmp_path / "b.keras"),
                     "--from-plan", str(plan)]) == 2
    assert "layer 'conv1' weight 'bias'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "b.keras")


# 6. A mixed_float16 model exports (see also test_tflite_export.py).

def test_mixed_precision_model_exports_through_the_cli(tmp_path, capsys):
    path = tmp_path / "mixed.keras"
    tiny_model(dtype="mixed_float16").save(path)
    out = tmp_path / "mixed.tflite"
    assert cli.main(["export", str(path), "-o", str(out)]) == 0
    assert "max |tflite - keras|" in capsys.readouterr().out
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32


# 7. Plans are validated for types as well as ranges.

def _plan_dict(graph, keep):
    data = tfprune.PruningPlan(graph, {}).to_dict()
    gid = graph.prunable_groups[0].id
    entry = next(e for e in data["groups"] if e["id"] == gid)
    entry["keep"] = keep
    return data, entry


@pytest.mark.parametrize("mutate, words", [
    (lambda d, e: e.update(keep=None), "kept indices must be a list"),
    (lambda d, e: e.update(keep=[0, 1.7, 3]), "1.7 is not a whole number"),
    (lambda d, e: e.update(keep=[0, 1.0]), "1.0 is not a whole number"),
    (lambda d, e: e.update(keep=["0", "1"]), "'0' is not a whole number"),
    (lambda d, e: e.update(keep=[True, 2]), "True is not a whole number"),
    (lambda d, e: e.update(keep="012"), "kept indices must be a list"),
    (lambda d, e: e.update(keep={"0": 1}), "kept indices must be a list"),
    (lambda d, e: e.update(id="0"), "id '0' is not a non-negative whole number"),
    (lambda d, e: e.update(id=True), "id True"),
    (lambda d, e: e.update(id=-1), "id -1"),
    (lambda d, e: e.update(size=None), "size None"),
    (lambda d, e: e.update(producers="conv1"), "producers must be a list"),
    (lambda d, e: e.pop("keep"), "lacks 'keep'"),
    (lambda d, e: e.pop("id"), "lacks 'id'"),
    (lambda d, e: d.pop("groups"), "no 'groups' list"),
    (lambda d, e: d.update(groups={"0": []}), "no 'groups' list"),
    (lambda d, e: d["groups"].append(7), "is int, not an object"),
    (lambda d, e: d.update(format=None), "not a tfprune plan"),
])
def test_malformed_plans_are_refused(mutate, words):
    graph = tfprune.analyze(tiny_model())
    data, entry = _plan_dict(graph, [0, 1, 3])
    mutate(data, entry)
    with pytest.raises(tfprune.InvalidPlanError) as error:
        tfprune.PruningPlan.from_json(json.dumps(data), graph)
    assert words in str(error.value)


def test_plan_constructor_checks_types_too():
    graph = tfprune.analyze(tiny_model())
    gid = graph.prunable_groups[0].id
    for keep, words in [({gid: [0, 1.7]}, "1.7"), ({str(gid): [0]}, "group id"),
                        ({gid: np.array([0.0, 1.0])}, "integer array"),
                        ({gid: None}, "must be a list"), ([0, 1], "must be a dict")]:
        with pytest.raises(tfprune.InvalidPlanError, match=words):
            tfprune.PruningPlan(graph, keep)
    plan = tfprune.PruningPlan(graph, {np.int64(gid): np.array([3, 0], dtype=np.int32)})
    assert plan.keep[gid].tolist() == [0, 3]


def test_malformed_plan_file_through_the_cli(model_copy, tmp_path, capsys):
    graph = tfprune.analyze(keras.saving.load_model(model_copy))
    data, _ = _plan_dict(graph, [0, 1.7, 3])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data))
    out = tmp_path / "out.keras"
    assert cli.main(["prune", model_copy, "--from-plan", str(plan), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1.7 is not a whole number" in err and err.count("\n") == 1
    assert not out.exists()
    plan.write_bytes(b"\xff\xfe\x00garbage")
    assert cli.main(["prune", model_copy, "--from-plan", str(plan), "-o", str(out)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


# 8. Ctrl-C: status 130, one line, no partial file.

def _interrupt_after(args, pattern, cwd, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tfprune", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            env=env, text=True)
    seen, deadline = "", time.monotonic() + timeout
    try:
        while pattern not in seen:
            assert time.monotonic() < deadline, f"never saw {pattern!r}: {seen[-2000:]}"
            assert proc.poll() is None, f"ended early: {seen[-2000:]}"
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                seen += proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, seen + out, err


@pytest.mark.skipif(not FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_ctrl_c_during_train(tmp_path):
    rc, out, err = _interrupt_after(
        ["train", "--model", "resnet20", "--epochs", "200", "--limit", "512",
         "--batch-size", "64", "-o", "slim.keras"], "Epoch 2/", cwd=tmp_path)
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err and tfprune_lines(err) == ["tfprune: interrupted"]
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_ctrl_c_during_genetic_search(tmp_path):
    keras.utils.set_random_seed(0)
    tiny_model((28, 28, 1), classes=10).save(tmp_path / "in.keras")
    rc, out, err = _interrupt_after(
        ["prune", "in.keras", "--method", "ga", "--target-macs", "0.5", "--data",
         "fashion_mnist", "--limit", "256", "--generations", "100000", "-o", "out.keras",
         "--plan", "plan.json"], ": keep ", cwd=tmp_path)
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err and tfprune_lines(err) == ["tfprune: interrupted"]
    assert os.listdir(tmp_path) == ["in.keras"]


def test_interrupt_while_saving_leaves_nothing(model_copy, tmp_path, monkeypatch, capsys):
    def interrupted(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", interrupted)
    assert cli.main(["prune", model_copy, "-o", str(tmp_path / "out.keras"),
                     "--target-macs", "0.5", "--plan", str(tmp_path / "p.json")]) == 130
    assert capsys.readouterr().err == "tfprune: interrupted\n"
    # The plan is written first, the model last; an interrupted model save
    # leaves no model and no temporary file.
    assert sorted(os.listdir(tmp_path)) == ["in.keras", "p.json"]


# 9. export never silently replaces labels.txt or the JSON side file.

@pytest.fixture(scope="module")
def model28_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety28") / "net.keras"
    tiny_model((28, 28, 1), classes=10).save(path)
    return str(path)


@pytest.mark.skipif(not FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_export_refuses_to_overwrite_labels(model28_file, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("my own labels\n")
    args = ["export", model28_file, "-o", tmp_path / "net.tflite", "--data",
            "fashion_mnist", "--verify-samples", "16"]
    run = run_cli(*args)
    assert_one_line_error(run, "labels.txt", "already exists", "--force")
    assert labels.read_text() == "my own labels\n"
    assert sorted(os.listdir(tmp_path)) == ["labels.txt"]
    assert cli.main([str(a) for a in args] + ["--force"]) == 0
    assert labels.read_text().splitlines()[0] == "T-shirt/top"
    assert sorted(os.listdir(tmp_path)) == ["labels.txt", "net.json", "net.tflite"]


def test_export_refuses_to_overwrite_metadata(model_file, tmp_path, capsys):
    meta = tmp_path / "net.json"
    meta.write_text("{}")
    out = str(tmp_path / "net.tflite")
    assert cli.main(["export", model_file, "-o", out]) == 2
    assert "net.json already exists" in capsys.readouterr().err
    assert meta.read_text() == "{}" and not os.path.exists(out)
    assert cli.main(["export", model_file, "-o", out, "--force"]) == 0
    assert json.loads(meta.read_text())["format"] == "tfprune.tflite_export/1"


# 10. A corrupt .keras file is named as such.

def _corrupt_files(directory):
    random_bytes = directory / "random.keras"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    text = directory / "text.keras"
    text.write_text("this is not a model\n")
    no_config = directory / "noconfig.keras"
    with zipfile.ZipFile(no_config, "w") as z:
        z.writestr("metadata.json", "{}")
    bad_config = directory / "badconfig.keras"
    with zipfile.ZipFile(bad_config, "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("metadata.json", "{}")
    empty = directory / "empty.keras"
    empty.write_bytes(b"")
    return [random_bytes, text, no_config, bad_config, empty]


def test_corrupt_keras_files_are_named(tmp_path, capsys):
    for path in _corrupt_files(tmp_path):
        before = digest(path)
        assert cli.main(["inspect", str(path)]) == 2
        err = capsys.readouterr().err
        assert "not a valid .keras file" in err and "File not found" not in err, err
        assert err.count("\n") == 1 and digest(path) == before


def test_corrupt_keras_file_through_the_entry_point(tmp_path):
    path = _corrupt_files(tmp_path)[0]
    run = run_cli("prune", path, "-o", tmp_path / "out.keras", "--target-macs", "0.5")
    assert_one_line_error(run, "not a valid .keras file (not a zip archive)")
    assert not (tmp_path / "out.keras").exists()


# Issue 10 item 5: consistent words, one error hierarchy.

def test_prune_takes_the_criterion_by_keyword_only():
    model = tiny_model()
    with pytest.raises(TypeError, match="method"):  # the old keyword is gone
        tfprune.prune(model, method="l2", target_macs=0.5)
    with pytest.raises(ValueError, match="expected a tfprune.Budget"):
        tfprune.prune(model, "l2", target_macs=0.5)  # the second argument is the budget
    keywords = tfprune.prune(model, criterion="l2", target_macs=0.5)
    budget = tfprune.prune(model, tfprune.Budget(macs=0.5), criterion="l2")
    assert {k: v.tolist() for k, v in keywords.keep.items()} == \
        {k: v.tolist() for k, v in budget.keep.items()}


def test_dataset_error_is_a_tfprune_error():
    from tfprune import datasets
    from tfprune.errors import DatasetUnavailableError

    assert datasets.DatasetUnavailableError is DatasetUnavailableError
    assert issubclass(DatasetUnavailableError, tfprune.TfpruneError)
    assert issubclass(DatasetUnavailableError, RuntimeError)  # as before
