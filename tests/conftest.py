import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The part of the suite that `make test` runs a second time on JAX
# (`-m backend_agnostic`): the core (analyze, plan, cost, rebuild, prune) and
# the HFP gates, written in keras.ops. A test in these modules that needs
# TensorFlow is marked `needs_tensorflow` and skipped on other backends.
BACKEND_AGNOSTIC = {"test_graph.py", "test_plan.py", "test_cost.py", "test_rebuild.py",
                    "test_prune.py", "test_hfp.py", "test_jax_backend.py"}

needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="needs the TensorFlow backend")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in BACKEND_AGNOSTIC:
            item.add_marker("backend_agnostic")


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics, so inference-mode BN is not the identity."""
    rng = np.random.default_rng(seed)
    layers = []
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
        else:
            layers.append(layer)
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for w in layer.weights:
                shape = tuple(w.shape)
                if w.name == "moving_variance":
                    w.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
                else:
                    w.assign(rng.normal(0, 0.5, shape).astype("float32") + (1.0 if w.name == "gamma" else 0.0))
    return model


def random_plan(graph, rng, keep_all=False):
    keep = {}
    for group in graph.prunable_groups:
        if keep_all:
            continue
        n = int(rng.integers(1, group.size + 1))
        kept = set(rng.choice(group.size, n, replace=False).tolist())
        for part in group.segments:
            if not kept.intersection(part.tolist()):
                kept.add(int(rng.choice(part)))
        keep[group.id] = sorted(kept)
    return graph.plan(keep)


def assert_close(reference, actual, rtol=1e-5):
    reference, actual = np.asarray(reference), np.asarray(actual)
    assert reference.shape == actual.shape
    scale = max(1.0, float(np.max(np.abs(reference))))
    err = float(np.max(np.abs(reference - actual)))
    assert err <= rtol * scale, f"max abs error {err} (scale {scale})"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
