"""Every script in examples/, run end to end at a tiny size (`--quick`).

In-process (`runpy`), one TensorFlow start-up for all of them. Each run
must write the slim model and both .tflite files, and print a before/after
table that agrees with them: the MACs and params of the saved model, the
.tflite sizes on disk, and the MACs within the example's budget.
"""

import os
import re
import runpy
import sys

import keras
import pytest

import tfprune

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"),
    reason="needs Debian's dataset-fashion-mnist (the examples train and test on "
           "Fashion-MNIST)")

# script -> (extra arguments, MACs kept at most: the budget, or None for
# PruneTrain, which takes none). Fine-tuning is the same call in every
# script that has it: only the magnitude example runs it here, to keep the
# file short.
NO_FINETUNING = ["--finetune-epochs", "0"]
SCRIPTS = {
    "prune_magnitude.py": ([], 0.5),
    "prune_prunenet.py": (NO_FINETUNING, 0.5),
    "prune_genetic.py": (NO_FINETUNING, 0.5),
    "prune_hfp.py": (NO_FINETUNING, 0.5),
    "prune_smof.py": (NO_FINETUNING, 0.5),
    # at the tiny size only an overwhelming penalty kills channels in time
    "train_prunetrain.py": (["--epochs", "2", "--penalty-ratio", "0.99"], None),
}

ROW = re.compile(r"^(params|MACs|TFLite size \(bytes\)) {2,}([\d,]+) +([\d,]+) +([\d.]+)$")
ACCURACY = re.compile(r"^test accuracy {2,}(?:(\d\.\d{4}) +)?(\d\.\d{4})(?: +[-+]\d\.\d{4})?$")


def _main(script, monkeypatch):
    """The script's main(argv), its module loaded without running it."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds the root
    return runpy.run_path(os.path.join(EXAMPLES, script))["main"]


def _table(out):
    rows, accuracy = {}, None
    for line in out.splitlines():
        if m := ROW.match(line):
            before, after = (int(v.replace(",", "")) for v in m.group(2, 3))
            rows[m.group(1)] = (before, after, float(m.group(4)))
        elif m := ACCURACY.match(line):
            accuracy = float(m.group(2))
    return rows, accuracy


def test_every_example_is_tested():
    scripts = {f for f in os.listdir(EXAMPLES) if f.startswith(("prune_", "train_"))
               and f.endswith(".py") and f != "train_baseline.py"}
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help(script, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        _main(script, monkeypatch)(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--out" in out and ".venv/bin/python examples/" in out


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_runs_end_to_end(script, tmp_path, monkeypatch, capsys):
    extra, budget = SCRIPTS[script]
    out_dir = tmp_path / "out"
    _main(script, monkeypatch)(["--quick", "--out", str(out_dir), *extra])
    printed = capsys.readouterr().out
    rows, accuracy = _table(printed)
    assert set(rows) == {"params", "MACs", "TFLite size (bytes)"}, printed
    assert accuracy is not None and 0.0 <= accuracy <= 1.0, printed

    slim = keras.saving.load_model(out_dir / "pruned.keras", compile=False)
    cost = tfprune.cost(slim)
    assert rows["MACs"][1] == cost.macs and rows["params"][1] == cost.params
    macs_before, macs_after, ratio = rows["MACs"]
    assert ratio == pytest.approx(macs_after / macs_before, abs=1e-3)
    if budget is None:
        assert macs_after < macs_before
    else:
        assert macs_after <= budget * macs_before
    for name, size in zip(("original", "pruned"), rows["TFLite size (bytes)"][:2]):
        assert os.path.getsize(out_dir / f"{name}.tflite") == size
    assert f"wrote {out_dir}/" in printed
    assert ("Fine-tuning for 1 epoch(s)" in printed) == (script == "prune_magnitude.py")
