"""The command line under random input: never a traceback, never a
modified input file.

Argument lists are built from the real sub-commands and options with random
values (bad numbers, missing or corrupt files, outputs naming inputs,
symlinks); model and plan files are valid, random bytes, random JSON, or a
valid plan with random values in it. Most cases call `tfprune.cli.main`
in-process for speed; a few run the entry point in a subprocess. Options
that would start real training (`train`, `--method hfp|ga`) always get a
data set name that does not exist, so each case stays short.

TFPRUNE_FUZZ_EXAMPLES sets the number of in-process cases (default 60).
"""

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import tfprune
from tfprune import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = int(os.environ.get("TFPRUNE_FUZZ_EXAMPLES", "60"))

NUMBERS = ["0.5", "0.3", "2", "1", "0", "-1", "nan", "inf", "-inf", "1e999", "abc", "",
           "1e-9", "1e12", "0x10", "1.7"]
INTEGERS = ["1", "2", "8", "0", "-3", "2.5", "x", "99999999999999999999", ""]
BAD_DATA = ["nope", "", "fashion mnist", "../data", "mnist_but_not"]
MODELS = ["in/good.keras", "in/random.keras", "in/text.keras", "in/noconfig.keras",
          "in/empty.keras", "in/plan.json", "in/dir.keras", "missing.keras",
          "in/link.keras", "in/good.h5"]
OUTPUTS = ["out/slim.keras", "out/p.json", "out/x.tflite", "out/x.h5", "in/good.keras",
           "in/plan.json", "in/link.keras", "missing/x.keras", "out", "in/dir.keras",
           "out/labels.txt", "out/slim.keras"]
PLANS = ["in/plan.json", "in/random.keras", "in/good.keras", "missing.json", "in"]

OPTIONS = {
    "inspect": {},
    "prune": {
        "-o": OUTPUTS, "--output": OUTPUTS, "--plan": OUTPUTS, "--from-plan": PLANS,
        "--method": ["l1", "l2", "bn", "group_l1", "hfp", "ga", "smof", "prunenet",
                     "prunetrain", "magic"],
        "--target-macs": NUMBERS, "--target-params": NUMBERS,
        "--scope": ["global", "uniform", "local"], "--round-to": INTEGERS,
        "--data": BAD_DATA, "--epochs": INTEGERS, "--generations": INTEGERS,
        # the other options the registered methods declare
        "--population": INTEGERS, "--iterative-steps": INTEGERS, "--weight": NUMBERS,
        "--threshold": NUMBERS, "--ramp-epochs": NUMBERS, "--penalty-ratio": NUMBERS,
        "--mode": ["proximal", "subgradient", "x"], "--reconfigure-every": INTEGERS,
        "--limit": INTEGERS, "--finetune-epochs": INTEGERS, "--finetune-lr": NUMBERS,
        "--no-distill": None, "--refit": None,
    },
    "export": {
        "-o": OUTPUTS, "--quantize": ["none", "float16", "dynamic", "int8", "int4"],
        "--data": BAD_DATA, "--int8-io": None, "--calibration-samples": INTEGERS,
        "--verify-samples": INTEGERS, "--tolerance": NUMBERS, "--force": None,
    },
    "train": {
        "--method": ["prunetrain", "hfp"], "--model": ["resnet20", "nope", ""],
        "--epochs": INTEGERS, "-o": OUTPUTS, "--penalty-ratio": NUMBERS,
        "--reconfigure-every": INTEGERS, "--threshold": NUMBERS,
        "--batch-size": INTEGERS, "--lr": NUMBERS, "--limit": INTEGERS,
        "--dynamic-batch": None, "--checkpoint-dir": ["out/ckpt", "in/good.keras"],
    },
}
TAKES_MODEL = ("inspect", "prune", "export")
# Options that, with a real data set, would start minutes of training.
NEEDS_BAD_DATA = ("train",)


def tiny_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(x), name="fuzz")


class Files(tuple):
    """(model bytes, valid plan dict), with a short repr for hypothesis."""

    def __repr__(self):
        return "<the tiny model and its plan>"


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "good.keras"
    model = tiny_model()
    model.save(path)
    plan = tfprune.prune(model, criterion="l1", target_macs=0.5)
    return Files((path.read_bytes(), plan.to_dict()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@st.composite
def plan_texts(draw, valid):
    kind = draw(st.sampled_from(["valid", "bytes", "json", "mutated"]))
    if kind == "valid":
        return json.dumps(valid).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    data = json.loads(json.dumps(valid))
    entry = draw(st.sampled_from(data["groups"]))
    key = draw(st.sampled_from(["id", "size", "producers", "keep", "extra"]))
    entry[key] = draw(json_values | st.lists(st.integers(-3, 10) | st.floats(0, 9),
                                             max_size=8))
    return json.dumps(data).encode()


# A mostly sensible start for each command, so that many cases get past
# the first check; random options are added on top.
BASES = {
    "inspect": [],
    "prune": [["-o", "out/slim.keras", "--target-macs", "0.5"],
              ["-o", "out/slim.keras", "--from-plan", "in/plan.json"],
              ["-o", "out/slim.keras", "--target-params", "0.6", "--plan", "out/p.json"]],
    "export": [["-o", "out/x.tflite"], []],
    "train": [["--model", "resnet20", "-o", "out/slim.keras"]],
}


@st.composite
def argument_lists(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    if command in TAKES_MODEL and draw(st.integers(0, 9)):
        good = draw(st.booleans())
        argv.append("in/good.keras" if good else draw(st.sampled_from(MODELS)))
    if BASES[command] and draw(st.integers(0, 3)):
        argv += draw(st.sampled_from(BASES[command]))
    options = OPTIONS[command]
    for name in draw(st.lists(st.sampled_from(sorted(options) or ["--help"]), max_size=4)):
        if name == "--help":
            continue
        argv.append(name)
        values = options[name]
        if values is not None:  # half the time one of the first, sensible values
            argv.append(draw(st.sampled_from(values[:3] if draw(st.booleans()) else values)))
    if draw(st.integers(0, 7)) == 0:  # a stray token anywhere
        argv.insert(draw(st.integers(0, len(argv))), draw(st.text(max_size=6)))
    if command in NEEDS_BAD_DATA or "hfp" in argv or "ga" in argv:
        argv += ["--data", draw(st.sampled_from(BAD_DATA))]
    return argv


def make_inputs(root, model_bytes, plan_bytes, seed):
    """in/ holds every file a command may read; out/ is empty."""
    inp = os.path.join(root, "in")
    os.makedirs(inp)
    os.makedirs(os.path.join(root, "out"))
    rng = np.random.default_rng(seed)
    files = {
        "good.keras": model_bytes, "good.h5": model_bytes,
        "random.keras": rng.bytes(int(rng.integers(0, 2048))),
        "text.keras": b"not a model\n", "empty.keras": b"", "plan.json": plan_bytes,
    }
    for name, content in files.items():
        with open(os.path.join(inp, name), "wb") as f:
            f.write(content)
    with zipfile.ZipFile(os.path.join(inp, "noconfig.keras"), "w") as z:
        z.writestr("metadata.json", "{}")
    os.mkdir(os.path.join(inp, "dir.keras"))
    os.symlink(os.path.join(inp, "good.keras"), os.path.join(inp, "link.keras"))


def snapshot(directory):
    """Name -> sha256 of every file under `directory` (links resolved)."""
    out = {}
    for base, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(base, name)
            key = os.path.relpath(path, directory)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    out[key] = hashlib.sha256(f.read()).hexdigest()
            else:
                out[key] = "dir"
    return out


def run_in_process(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse: usage errors and --help
            rc = e.code
    return rc, stdout.getvalue(), stderr.getvalue()


# No "explain" phase and a short shrink: one case may take seconds (an export).
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_command_lines_never_crash_or_touch_inputs(good_model, data):
    model_bytes, valid_plan = good_model
    argv = data.draw(argument_lists(), label="argv")
    plan_bytes = data.draw(plan_texts(valid_plan), label="plan file")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as root:
        make_inputs(root, model_bytes, plan_bytes, seed)
        before = snapshot(os.path.join(root, "in"))
        os.chdir(root)
        try:
            rc, out, err = run_in_process(argv)
        finally:
            os.chdir(cwd)
        event(f"{argv[0]}: exit {rc} ({err.split('error:')[-1].strip()[:25]})")
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        assert rc in (0, 2), (argv, rc, err)
        if rc == 2 and err.startswith("tfprune:"):
            assert err.count("\n") == 1, (argv, err)
        # Every input is unchanged (new files may appear: export writes
        # model.tflite next to its model by default).
        after = snapshot(os.path.join(root, "in"))
        assert {k: after.get(k) for k in before} == before, argv
        leftovers = [n for n in os.listdir(os.path.join(root, "out")) if ".tmp" in n]
        assert leftovers == [], (argv, leftovers)


@pytest.mark.parametrize("argv", [
    ["bench", "in/random.tflite", "in/text.tflite"],
    ["export", "in/plan.json", "-o", "out/x.tflite"],
    ["prune", "in/good.keras", "-o", "out/slim.keras", "--from-plan", "in/random.json"],
    ["inspect", "in/noconfig.keras"],
])
def test_entry_point_under_random_files(good_model, tmp_path, argv):
    model_bytes, valid_plan = good_model
    make_inputs(str(tmp_path), model_bytes, json.dumps(valid_plan).encode(), 0)
    rng = np.random.default_rng(1)
    for name in ("random.tflite", "random.json"):
        (tmp_path / "in" / name).write_bytes(rng.bytes(1024))
    (tmp_path / "in" / "text.tflite").write_text("TFL3 but not really\n")
    before = snapshot(str(tmp_path / "in"))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-m", "tfprune", *argv], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("tfprune:")]
    assert snapshot(str(tmp_path / "in")) == before
    assert os.listdir(tmp_path / "out") == []
