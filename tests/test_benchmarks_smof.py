"""benchmarks.smof: its plans, its rows and their sections of BENCHMARKS.md
(no training, no timing)."""

import keras
import numpy as np
from keras import layers

import tfprune
from benchmarks import report, results
from benchmarks import smof as bench

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 5, padding="same", name="a")(inputs)
    x = layers.ReLU()(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="b")(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="c")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(4, name="head")(x))


def test_kernel_plan_shrinks_kernels_and_meets_the_target():
    model = _model()
    full = tfprune.cost(model).macs
    for target in (0.5, 0.33):
        plan = bench.kernel_plan(model, target)
        assert plan.kernels, "no kernel was shrunk"
        assert tfprune.cost(model, plan).macs <= target * full
        slim = tfprune.rebuild(model, plan)
        assert tfprune.cost(slim).macs == tfprune.cost(model, plan).macs
        summary = bench.kernel_summary(slim)
        assert sum(summary.values()) == 3  # a, b, c; not the Dense head
        assert summary != bench.kernel_summary(model)
    assert bench.kernel_summary(model) == {"5x5": 1, "3x3": 2}


def _measured(row):
    return {**row, "commit": COMMIT, "dirty": False, "machine": "2 cores, test CPU"}


def _latency_row(method, target, threads, quotient):
    return _measured({
        "kind": "smof_latency", "model": "mobilenet_v2", "input_shape": [224, 224, 3],
        "method": method, "target": target, "quantization": "int8", "threads": threads,
        "macs_ratio": target, "latency_ratio": quotient * target, "quotient": quotient,
        "original_ms": 10.0, "pruned_ms": 10.0 * quotient * target,
        "kernels": {"3x3": 10, "1x1": 42}, "runs": 200, "weights": "random"})


def test_smof_rows_have_their_sections():
    rows = [_latency_row(m, t, n, q) for m, q in (("l1", 1.2), ("smof-kernels", 0.9))
            for t in (0.5, 0.33) for n in (1, 2)]
    assert len(results.latest(rows)) == len(rows)  # threads, targets, methods apart
    accuracy = [_measured({"kind": "accuracy", "model": "resnet20", "method": m,
                           "target": 0.33, "scope": None, "round_to": None,
                           "macs_ratio": 0.33, "test_acc": acc, "kernels": {"3x3": 5}})
                for m, acc in (("smof+kd", 0.921), ("l1+kd", 0.918), ("hfp", 0.915))]
    text = report.render(rows + accuracy)
    assert "Rows without a section" not in text
    smof_acc = text.split("## SMOF: kernel sizes and channels, accuracy")[1].split("## ")[0]
    assert "| smof+kd |" in smof_acc and "| l1+kd |" in smof_acc
    assert "| hfp |" not in smof_acc
    assert "| hfp |" in text.split("## Accuracy against MACs")[1].split("## ")[0]
    latency = text.split("## SMOF: smaller kernels against thinner layers")[1]
    lines = [line for line in latency.splitlines() if line.startswith("| mobilenet_v2")]
    assert len(lines) == 8
    assert lines[0].startswith("| mobilenet_v2 | 224x224x3 | l1 | 0.5000 | int8 | 1 |")
    assert lines[1].startswith("| mobilenet_v2 | 224x224x3 | smof-kernels | 0.5000 |")
    assert "| 3x3 10, 1x1 42 |" in lines[0]


def test_latency_rows_one_per_method_target_and_threads(monkeypatch, tmp_path):
    def tiny():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((28, 28, 1))
        x = layers.Conv2D(8, 3, padding="same", name="a")(inputs)
        x = layers.Conv2D(8, 3, strides=2, padding="same", name="b")(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(4, name="head")(x)), "random"

    monkeypatch.setitem(bench.latency.MODELS, "tiny", tiny)
    rows = bench.latency_rows("tiny", [0.5], ["none"], [1, 2], runs=2)
    assert sorted((r["method"], r["threads"]) for r in rows) == [
        ("l1", 1), ("l1", 2), ("smof-kernels", 1), ("smof-kernels", 2)]
    for r in rows:
        assert r["input_shape"] == [28, 28, 1] and r["target"] == 0.5
        assert r["macs_ratio"] <= 0.5
        assert np.isclose(r["quotient"], r["latency_ratio"] / r["macs_ratio"], rtol=1e-3)
        # ms are rounded to 4 decimals: loose for a model this small
        assert np.isclose(r["latency_ratio"], r["pruned_ms"] / r["original_ms"], rtol=0.05)
    smof = [r for r in rows if r["method"] == "smof-kernels"][0]
    assert smof["kernels"] != {"3x3": 2}
    log = str(tmp_path / "results.jsonl")
    stored = results.extend(rows, path=log)  # no provenance field clashes
    assert len(results.latest(results.load(log))) == 4 and stored[0]["run"]
