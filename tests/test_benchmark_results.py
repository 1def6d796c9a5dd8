"""The benchmark log, BENCHMARKS.md and its figures (no training)."""

import datetime
import multiprocessing
import os
import subprocess

import keras
import matplotlib.image
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import plots, protocol, report, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _acc(method, target, acc, **extra):
    return {"kind": "accuracy", "model": "resnet20", "method": method, "target": target,
            "scope": "global" if method == "l1" else None, "round_to": 1 if method == "l1" else None,
            "macs_ratio": target or 1.0, "params_ratio": target or 1.0, "test_acc": acc,
            "baseline_acc": 0.93, **extra}


def _measured(row, commit=COMMIT, dirty=False):
    """A row as `append` stores it, with a chosen commit."""
    return {**row, "commit": commit, "dirty": dirty, "date": "2026-12-01T00:00:00+00:00",
            "machine": "2 cores, test CPU"}


def _legacy(row, first=OLD_COMMIT):
    return {**row, "commit": None, "migrated_from": "results.json",
            "first_committed_in": first, "first_committed_at": "2026-11-21T20:00:00+00:00"}


def _synthetic_log():
    """Rows of every figure's kind: accuracy (with a peer), latency, PruneTrain."""
    rows = [_legacy(_acc("baseline", None, 0.93)),
            _measured(_acc("l1", 0.5, 0.92)), _measured(_acc("l1", 0.33, 0.91)),
            _measured(_acc("hfp", 0.5, 0.921)), _measured(_acc("hfp", 0.33, 0.915))]
    for quantization in ("none", "int8"):
        for method, target, scope, round_to, macs, lat in (
                ("original", None, None, None, 1.0, 1.0),
                ("l1", 0.5, "global", 1, 0.5, 0.8), ("l1", 0.33, "global", 1, 0.33, 0.7),
                ("l1", 0.5, "uniform", 8, 0.48, 0.55), ("l1", 0.33, "uniform", 8, 0.3, 0.4)):
            rows.append(_measured({
                "kind": "latency", "model": "resnet20", "method": method, "target": target,
                "scope": scope, "round_to": round_to, "quantization": quantization,
                "threads": 1, "latency_ms": lat, "latency_ratio": lat, "macs_ratio": macs}))
        rows.append(_measured({
            "kind": "latency", "framework": "tfmot", "model": "resnet20",
            "method": "tfmot prune_low_magnitude", "target": 0.5, "scope": None,
            "round_to": None, "quantization": quantization, "threads": 1,
            "latency_ms": 0.9, "latency_ratio": 0.9, "macs_ratio": 1.0, "sparsity": 0.5}))
    common = {"kind": "prunetrain", "model": "resnet20", "epochs": 6, "train_images": 1000,
              "batch_size": 32}
    rows.append(_legacy({**common, "method": "dense", "penalty_ratio": None,
                         "reconfigure_every": None, "dynamic_batch": None, "macs": 100,
                         "macs_ratio": 1.0, "test_acc": 0.9, "train_flops_ratio": 1.0}))
    rows.append(_legacy({
        **common, "method": "prunetrain", "penalty_ratio": 0.2, "reconfigure_every": 2,
        "dynamic_batch": False, "macs": 40, "macs_ratio": 0.4, "test_acc": 0.89,
        "train_flops_ratio": 0.7, "macs_per_epoch": [100, 100, 80, 80, 40, 40],
        "reconfigurations": [{"epoch": 2, "macs": 80, "removed_channels": 3},
                             {"epoch": 4, "macs": 40, "removed_channels": 9},
                             {"epoch": 6, "macs": 40, "removed_channels": 0}]}))
    return rows


def test_append_never_rewrites_earlier_lines_and_report_shows_latest(tmp_path):
    log = str(tmp_path / "results.jsonl")
    first = results.append(_acc("l1", 0.5, 0.9012), path=log)
    with open(log, "rb") as f:
        before = f.read()
    second = results.append(_acc("l1", 0.5, 0.9134), path=log)
    with open(log, "rb") as f:
        after = f.read()
    assert after.startswith(before) and len(after) > len(before)
    rows = results.load(log)
    assert [r["test_acc"] for r in rows] == [0.9012, 0.9134]
    assert results.config(first) == results.config(second)
    assert results.latest(rows) == [rows[1]]
    text = report.render(rows)
    assert "0.9134" in text and "0.9012" not in text


def test_latest_keeps_configurations_apart():
    rows = [_acc("l1", 0.5, 0.90), _acc("l1", 0.33, 0.89),
            _acc("l1", 0.5, 0.91, framework="torch-pruning"), _acc("l1", 0.5, 0.92)]
    assert results.latest(rows) == rows[1:]
    # A missing framework is tfprune's: same configuration as an explicit one.
    assert results.config(_acc("l1", 0.5, 0.9)) == results.config(
        _acc("l1", 0.5, 0.8, framework="tfprune"))


_ROW = st.fixed_dictionaries({
    "kind": st.sampled_from(["accuracy", "latency", "tool", "unlisted"]),
    "framework": st.sampled_from(["tfprune", "torch-pruning"]),
    "model": st.sampled_from(["resnet20", "vgg11"]),
    "method": st.sampled_from(["l1", "hfp"]),
    "target": st.sampled_from([None, 0.5, 0.33]),
    "threads": st.sampled_from([1, 2]),
    "test_acc": st.floats(0, 1),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROW, max_size=25))
def test_latest_is_the_last_row_of_every_configuration(rows):
    shown = results.latest(rows)
    configs = [results.config(r) for r in shown]
    assert len(set(configs)) == len(configs) == len({results.config(r) for r in rows})
    for r in shown:
        later = rows[max(i for i, x in enumerate(rows) if x is r) + 1:]
        assert all(results.config(x) != results.config(r) for x in later)


def test_append_records_provenance(tmp_path):
    log = str(tmp_path / "results.jsonl")
    stored = results.append({"kind": "tool", "model": "m", "method": "rebuild",
                             "median_s": np.float64(0.25), "runs": np.int64(3)}, path=log)
    [row] = results.load(log)
    assert row == stored
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert row["commit"] == head and len(head) == 40
    assert isinstance(row["dirty"], bool)
    assert row["dirty"] == bool(row.get("dirty_paths"))
    date = datetime.datetime.fromisoformat(row["date"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert date.utcoffset() == datetime.timedelta(0)
    assert abs((now - date).total_seconds()) < 600
    assert row["cores"] == os.cpu_count() and row["cpu"]
    assert row["machine"] == f"{os.cpu_count()} cores, {row['cpu']}"
    assert set(row["versions"]) == {"tfprune", "keras", "tensorflow", "ai-edge-litert",
                                    "numpy"}
    assert row["versions"]["numpy"] == np.__version__
    assert row["versions"]["keras"] == keras.__version__
    assert row["median_s"] == 0.25 and row["runs"] == 3


def test_append_to_the_log_rewrites_the_report(tmp_path, monkeypatch):
    log = str(tmp_path / "results.jsonl")
    written = []
    monkeypatch.setattr(results, "RESULTS", log)
    monkeypatch.setattr(report, "write", written.append)
    results.append(_acc("l1", 0.5, 0.9), path=log)
    results.extend([_acc("l1", 0.33, 0.8), _acc("hfp", 0.33, 0.85)], path=log)
    results.append(_acc("l1", 0.5, 0.7), path=log, report=False)
    assert [[r["test_acc"] for r in rows] for rows in written] == [[0.9], [0.9, 0.8, 0.85]]


def test_append_after_a_line_without_newline(tmp_path):
    log = tmp_path / "results.jsonl"
    log.write_text('{"kind": "tool", "model": "m", "method": "a"}')
    results.append({"kind": "tool", "model": "m", "method": "b"}, path=str(log))
    assert [r["method"] for r in results.load(str(log))] == ["a", "b"]


def test_a_failing_report_keeps_the_row(tmp_path, monkeypatch, capsys):
    log = str(tmp_path / "results.jsonl")
    monkeypatch.setattr(results, "RESULTS", log)

    def broken(rows):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report, "write", broken)
    results.append(_acc("l1", 0.5, 0.9), path=log)
    assert [r["test_acc"] for r in results.load(log)] == [0.9]
    assert "RuntimeError: no fonts" in capsys.readouterr().err


def test_row_may_not_bring_its_own_provenance(tmp_path):
    log = str(tmp_path / "results.jsonl")
    with pytest.raises(ValueError, match="'machine'"):
        results.append({**_acc("l1", 0.5, 0.9), "machine": "mine"}, path=log)
    assert not os.path.exists(log) or results.load(log) == []


def test_load_names_a_bad_line(tmp_path):
    log = tmp_path / "results.jsonl"
    log.write_text('{"kind": "tool"}\n{not json\n')
    with pytest.raises(ValueError, match=r"results.jsonl:2"):
        results.load(str(log))


def _append_many(log, worker, n):
    for i in range(n):
        results.append({"kind": "tool", "model": f"w{worker}", "method": str(i),
                        "median_s": 0.1}, path=log, report=False)


def test_concurrent_writers_lose_no_row(tmp_path):
    log = str(tmp_path / "results.jsonl")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(log, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    rows = results.load(log)
    assert sorted((r["model"], int(r["method"])) for r in rows) == sorted(
        (f"w{w}", i) for w in range(3) for i in range(15))


def test_sections_render_with_commits():
    rows = _synthetic_log() + [
        _measured({"kind": "tool", "model": "ResNet50", "method": "rebuild",
                   "median_s": 0.43, "runs": 5}, dirty=True),
        _measured({"kind": "mystery", "model": "m", "method": "x"})]
    text = report.render(rows)
    for section in report.SECTIONS:
        if any(r["kind"] == section.kind and (section.where is None or section.where(r))
               for r in rows):
            assert f"## {section.title}" in text
    assert "## Training step" not in text  # no rows of that kind
    lines = text.splitlines()
    l1 = next(line for line in lines if line.startswith("| resnet20 | tfprune | l1 | 0.5000"))
    assert l1.endswith("| 0123456 |")
    baseline = next(line for line in lines
                    if line.startswith("| resnet20 | tfprune | baseline |"))
    assert baseline.endswith("| before provenance was recorded |")
    tool = next(line for line in lines if line.startswith("| ResNet50 | rebuild |"))
    assert tool.endswith("| 0123456 (dirty) |")
    assert "Figures from commit `0123456` (4 rows)" in text
    assert "1 row measured before provenance was recorded" in text
    assert "first committed in `fedcba9`" in text
    assert "1 of kind `mystery`" in text


def test_figures_are_valid_pngs_and_linked(tmp_path):
    rows = _synthetic_log()
    md = tmp_path / "BENCHMARKS.md"
    written = report.write(rows, path=str(md), figures_dir=str(tmp_path / "figs"))
    assert sorted(os.path.basename(p) for p in written) == sorted(
        file for _, file, _ in plots.FIGURES.values())
    text = md.read_text()
    for path in written:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 400
        assert image.std() > 0.01  # not a blank canvas
        assert f"](figs/{os.path.basename(path)})" in text


def test_peer_rows_are_drawn(tmp_path):
    rows = [r for r in _synthetic_log() if r["kind"] == "accuracy"]
    peer = [_measured(_acc("tp-l1-uniform", t, a, framework="torch-pruning"))
            for t, a in ((0.5, 0.915), (0.33, 0.905))]
    without = plots.accuracy(rows, str(tmp_path / "a.png"))
    with_peer = plots.accuracy(rows + peer, str(tmp_path / "b.png"))
    a, b = matplotlib.image.imread(without), matplotlib.image.imread(with_peer)
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_no_figure_without_rows(tmp_path):
    rows = [_measured({"kind": "tool", "model": "m", "method": "rebuild", "median_s": 1.0,
                       "runs": 1})]
    assert plots.write_all(rows, str(tmp_path / "figs")) == {}
    assert os.listdir(tmp_path / "figs") == []
    assert "![" not in report.render(rows)


def test_committed_report_is_made_from_the_committed_log():
    rows = results.load()
    assert rows and all("commit" in r for r in rows)
    for r in rows:
        if r["commit"] is None:
            assert r["migrated_from"] == "results.json" and r["first_committed_in"]
    links = {name: (f"benchmarks/figures/{file}", caption)
             for name, (_, file, caption) in plots.FIGURES.items()
             if os.path.exists(os.path.join(plots.FIGURES_DIR, file))}
    assert len(links) == 3
    with open(report.REPORT) as f:
        assert f.read() == report.render(rows, links), (
            "BENCHMARKS.md is out of date: run `python -m benchmarks.report`")


def test_baseline_cache_key_follows_model_and_protocol(monkeypatch):
    key = protocol.baseline_key("resnet20")
    assert key == protocol.baseline_key("resnet20")
    assert len({key, protocol.baseline_key("vgg11"), protocol.baseline_key("resnet20", 9),
                protocol.baseline_key("resnet20", limit=256)}) == 4
    monkeypatch.setattr(protocol, "WEIGHT_DECAY", 1e-4)
    assert protocol.baseline_key("resnet20") != key
    monkeypatch.undo()
    config = _widen(protocol.MODELS["resnet20"]().get_config())
    monkeypatch.setitem(protocol.MODELS, "resnet20", lambda: _Configured(config))
    assert protocol.baseline_key("resnet20") != key
    assert os.path.basename(protocol.baseline_path("resnet20")).startswith("resnet20_")
    with pytest.raises(ValueError, match="unknown benchmark model 'nope'"):
        protocol.baseline_key("nope")


class _Configured:
    """Stands in for a model: only its config matters to the cache key."""

    def __init__(self, config):
        self.config = config

    def get_config(self):
        return self.config


def _widen(config):
    """The same model with its first convolution's filters doubled."""
    for layer in config["layers"]:
        if layer["class_name"] == "Conv2D":
            layer["config"]["filters"] *= 2
            return config
    raise AssertionError("no Conv2D in the config")


def test_peer_table_means_seeds_and_marks_each_frameworks_best():
    tp = {"framework": "torch-pruning", "scope": "torch-pruning"}
    rows = [_measured(r) for r in [
        _acc("l1", 0.5, 0.9000, seed=0, acc_before_finetune=0.1),
        _acc("l1", 0.5, 0.9200, seed=0, acc_before_finetune=0.1),  # supersedes the first
        _acc("uniform-l1", 0.5, 0.9100, seed=0, **tp),
        _acc("uniform-l1", 0.5, 0.9150, seed=1, **tp),
        _acc("global-taylor", 0.5, 0.9000, seed=0, **tp),
        _acc("uniform-l1@keras-baseline", 0.5, 0.9250, seed=0, **tp),  # a diagnostic
        _acc("l1", 0.33, 0.9100, seed=0),
        _acc("l1", 0.7, 0.9290, seed=0),  # not a compared budget
    ]]
    text = report.render(rows)
    table = text[text.index("## tfprune against Torch-Pruning"):]
    table = table.split("\n## ")[0]
    lines = {line.split(" | ")[0]: line for line in table.splitlines()
             if line.startswith("| ")}
    l1 = lines["| tfprune `l1` (global)"]
    assert "**92.00% (-1.00)**; 10.0%" in l1 and "91.00% (-2.00)" in l1
    assert "90.00%" not in l1 and "92.90%" not in l1
    tp_l1 = lines["| Torch-Pruning uniform L1"]
    assert "**91.25% (-1.75)**, mean of 2 seeds" in tp_l1
    assert "**" not in lines["| Torch-Pruning global Taylor"]
    # a diagnostic is shown but never marked as the framework's best
    diagnostic = lines["| diagnostic: Torch-Pruning uniform L1 from tfprune's baseline"]
    assert "92.50% (-0.50)" in diagnostic and "**" not in diagnostic
    assert "`0123456` (6 rows)" in table  # the rows shown, not the superseded one
