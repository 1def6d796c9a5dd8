"""The tfprune command line."""

import json
import os
import subprocess
import sys

import keras
import pytest

import tfprune
from tfprune import cli, zoo


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "net.keras"
    zoo.resnet20(input_shape=(16, 16, 1)).save(path)
    return str(path)


def test_inspect(model_file, capsys):
    assert cli.main(["inspect", model_file]) == 0
    out = capsys.readouterr().out
    assert "channel groups" in out and "stem_conv" in out and "MACs" in out


def test_prune_writes_model_and_plan(model_file, tmp_path, capsys):
    mtime = os.path.getmtime(model_file)
    out, plan = str(tmp_path / "slim.keras"), str(tmp_path / "plan.json")
    assert cli.main(["prune", model_file, "--method", "l1", "--target-macs", "0.5",
                     "-o", out, "--plan", plan]) == 0
    assert "ratio" in capsys.readouterr().out
    slim = keras.saving.load_model(out)
    original = keras.saving.load_model(model_file)
    assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(original).macs
    assert json.load(open(plan))["format"].startswith("tfprune.PruningPlan")
    assert os.path.getmtime(model_file) == mtime  # input untouched
    again = str(tmp_path / "again.keras")
    assert cli.main(["prune", model_file, "--from-plan", plan, "-o", again]) == 0
    assert keras.saving.load_model(again).count_params() == slim.count_params()


@pytest.mark.parametrize("argv, message", [
    (["inspect", "missing.keras"], "no such file"),
    (["prune", "MODEL", "--target-macs", "0.5"], "-o"),
    (["prune", "MODEL", "-o", "MODEL", "--target-macs", "0.5"], "overwrite"),
    (["prune", "MODEL", "-o", "x.keras", "--target-macs", "0.00001"], "larger target"),
    (["prune", "MODEL", "-o", "x.keras"], "target"),
    # what the chosen method would not use is refused, from the registry
    (["prune", "MODEL", "-o", "x.keras", "--method", "smof", "--target-macs", "0.5",
      "--round-to", "8"], "--round-to works with --method"),
    (["prune", "MODEL", "-o", "x.keras", "--method", "prunenet", "--target-latency", "0.5",
      "--latency-table", "MODEL"], "--target-latency works with --method"),
    (["prune", "MODEL", "-o", "x.keras", "--method", "l1", "--target-macs", "0.5",
      "--epochs", "2"], "--epochs is for the methods that train (hfp, prunetrain, smof)"),
    (["prune", "MODEL", "-o", "x.keras", "--method", "prunetrain", "--target-macs", "0.5"],
     "--method prunetrain takes no target"),
    (["prune", "MODEL", "-o", "x.keras", "--method", "hfp", "--target-macs", "0.5",
      "--generations", "3"], "--method hfp does not take --generations (methods that do: ga)"),
    (["prune", "MODEL", "-o", "x.keras", "--method", "ga", "--target-macs", "0.5",
      "--generations", "many"], "--generations:"),
])
def test_bad_input_is_one_line(model_file, argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [model_file if a == "MODEL" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_file(tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    assert cli.main(["inspect", str(bad)]) == 2
    assert "not a valid .keras file" in capsys.readouterr().err


def test_console_script_help_and_errors():
    run = subprocess.run([sys.executable, "-m", "tfprune", "prune", "--help"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "--target-macs" in run.stdout
    run = subprocess.run([sys.executable, "-m", "tfprune", "inspect", "nope.keras"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def fashion_model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("cli28") / "net28.keras"
    zoo.vgg11(input_shape=(28, 28, 1), width=0.125).save(path)
    return str(path)


@pytest.mark.parametrize("method, extra", [("hfp", ["--epochs", "1"]),
                                           ("ga", ["--generations", "2"]),
                                           ("prunetrain", ["--epochs", "1",
                                                           "--penalty-ratio", "0.5"])])
def test_prune_with_data_driven_methods(fashion_model_file, tmp_path, method, extra, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("needs Debian's dataset-fashion-mnist")
    out = str(tmp_path / f"{method}.keras")
    target = [] if method == "prunetrain" else ["--target-macs", "0.5"]
    assert cli.main(["prune", fashion_model_file, "--method", method, *target,
                     "--data", "fashion_mnist", "--limit", "256", "-o", out] + extra) == 0
    original = keras.saving.load_model(fashion_model_file)
    slim = keras.saving.load_model(out)
    if target:
        assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(original).macs
    else:  # PruneTrain keeps what its penalty leaves: the trained, reconfigured network
        assert tfprune.cost(slim).macs <= tfprune.cost(original).macs
    assert cli.main(["prune", fashion_model_file, "--method", method, *target,
                     "-o", out]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_the_command_is_quiet_and_an_error_is_the_last_line(tmp_path):
    """TensorFlow's native start-up log stays off the command's stderr;
    --verbose brings it back; either way tfprune's error is the last line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    missing = str(tmp_path / "nope.keras")
    quiet = subprocess.run([sys.executable, "-m", "tfprune", "inspect", missing],
                           capture_output=True, text=True, env=env)
    assert quiet.returncode == 2
    assert quiet.stderr.splitlines() == [f"tfprune: error: no such file: {missing}"]
    loud = subprocess.run([sys.executable, "-m", "tfprune", "--verbose", "inspect", missing],
                          capture_output=True, text=True, env=env)
    assert loud.returncode == 2
    assert loud.stderr.splitlines()[-1] == f"tfprune: error: no such file: {missing}"
    native = subprocess.run([sys.executable, "-c", "import tensorflow"],
                            capture_output=True, text=True, env=env).stderr
    if native.strip():  # this TensorFlow logs at start-up: --verbose shows it
        assert native.strip().splitlines()[0] in loud.stderr
    ok = subprocess.run([sys.executable, "-m", "tfprune", "prune", "--help", "--verbose"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "--verbose" in ok.stdout
