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
        if item.path.suffix == ".md":  # README / docs code blocks
            item.runtest = _in_a_temporary_directory(item.runtest)


def _in_a_temporary_directory(run):
    """`run`, in a fresh temporary working directory: the files a code
    block writes (slim.keras, model.tflite, ...) never land in the tree."""
    import functools
    import tempfile

    @functools.wraps(run)
    def wrapped():
        before = os.getcwd()
        with tempfile.TemporaryDirectory() as directory:
            os.chdir(directory)
            try:
                run()
            finally:
                os.chdir(before)

    return wrapped


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


def example_namespace():
    """What code examples (docstrings, README, docs) may use without defining
    it: tiny stand-ins for the model and data the prose talks about."""
    import tensorflow as tf

    import tfprune

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU()(h)
    r = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(h)
    r = keras.layers.BatchNormalization(name="bn2")(r)
    h = keras.layers.ReLU()(keras.layers.Add()([h, r]))
    h = keras.layers.Conv2D(12, 3, strides=2, padding="same", name="conv3")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="logits")(h), name="example")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12, 12, 1)).astype("float32")
    y = rng.integers(0, 4, 64)
    return {"tfprune": tfprune, "keras": keras, "np": np, "tf": tf, "model": model,
            "x": x, "y": y, "train": tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}


def pytest_markdown_docs_globals():
    """The names README.md and docs/ code blocks may use (pytest-markdown-docs)."""
    return example_namespace()
