"""HFP and PruneTrain under MultiWorkerMirroredStrategy, two real workers.

Two worker processes on 127.0.0.1 train the same tiny model on the same
data, DATA-sharded (each takes its half of every global batch), through
tests/distributed_worker.py; a third process trains it with no strategy on
the same global batches. Both workers must end bit-identical (plan, widths,
weights, optimizer slots); the single process must match them within
float32 round-off.

Why a tolerance, and why that one: the model has no BatchNorm and the data
are not shuffled, so the only difference is summation order (two
half-batch gradients all-reduced instead of one full-batch gradient), about
1e-7 relative per step, and 8-24 SGD steps amplify it little. 1e-4
absolute on weights of order 0.1-1 leaves a wide margin while any real
error (a term counted twice, a batch missed, a replica's lambda) moves the
weights by 1e-2 or more.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
TIMEOUT = 240

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute needs the TensorFlow backend")


def _free_ports(n):
    sockets = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(tf_config=None):
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _run(method, tmp_path):
    """Starts two workers and one single process; returns their results."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    jobs = {}
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        jobs[f"worker{index}"] = _env(config)
    jobs["single"] = _env()
    procs = {}
    try:
        for name, env in jobs.items():
            log = open(tmp_path / f"{method}-{name}.log", "w")
            procs[name] = subprocess.Popen(
                [sys.executable, WORKER, method, str(tmp_path / f"{method}-{name}")],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            log.close()
        for name, proc in procs.items():
            rc = proc.wait(timeout=TIMEOUT)
            assert rc == 0, (name, (tmp_path / f"{method}-{name}.log").read_text()[-3000:])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = {}
    for name in jobs:
        prefix = tmp_path / f"{method}-{name}"
        with open(f"{prefix}.json") as f:
            info = json.load(f)
        with np.load(f"{prefix}.npz") as arrays:
            results[name] = (info, {k: arrays[k] for k in arrays.files})
    return results


def _assert_workers_identical(results):
    (info0, arrays0), (info1, arrays1) = results["worker0"], results["worker1"]
    assert info0["replicas"] == info1["replicas"] == 2
    assert results["single"][0]["replicas"] == 1
    for key in info0:
        if key not in ("history",):
            assert info0[key] == info1[key], key
    assert sorted(arrays0) == sorted(arrays1)
    for key in arrays0:
        np.testing.assert_array_equal(arrays0[key], arrays1[key], err_msg=key)


def _assert_matches_single(results, atol=1e-4):
    (multi, arrays), (single, reference) = results["worker0"], results["single"]
    assert multi["widths"] == single["widths"]
    assert sorted(arrays) == sorted(reference)
    for key in reference:
        np.testing.assert_allclose(arrays[key], reference[key], atol=atol, rtol=0,
                                   err_msg=key)
    for name, values in single["history"].items():
        np.testing.assert_allclose(multi["history"][name], values, rtol=1e-4,
                                   err_msg=name)


def test_hfp_two_workers(tmp_path):
    results = _run("hfp", tmp_path)
    _assert_workers_identical(results)
    _assert_matches_single(results)
    info = results["worker0"][0]
    assert info["plan"] == results["single"][0]["plan"]
    # The budget was met and the gates pruned something.
    assert info["history"]["macs_ratio"][-1] <= 0.5
    assert any(len(g["keep"]) < g["size"] for g in info["plan"]["groups"]), info["plan"]


def test_prunetrain_two_workers(tmp_path):
    results = _run("prunetrain", tmp_path)
    _assert_workers_identical(results)
    _assert_matches_single(results)
    info, single = results["worker0"][0], results["single"][0]
    # The channels killed before training were removed at the first
    # reconfiguration, mid-training, on both workers alike; the optimizer
    # went on with the same step count and slots.
    assert info["reconfigurations"][0]["epoch"] == 1
    assert info["reconfigurations"][0]["removed_channels"] >= 4
    assert info["reconfigurations"] == single["reconfigurations"]
    assert info["widths"]["c3/kernel"][-1] <= 8
    assert info["optimizer_iterations"] == single["optimizer_iterations"] == 24
    # lambda from the global batch, as in one process (not a replica's half).
    assert np.isclose(info["penalty_weight"], single["penalty_weight"], rtol=1e-4)
