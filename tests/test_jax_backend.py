"""What runs on every Keras backend, and what says clearly that it needs TensorFlow.

The core (analyze, plan, cost, rebuild, prune) and the HFP gates use
keras.ops only: `make test` runs their test modules a second time with
KERAS_BACKEND=jax (tests/conftest.py lists them), and here a process with
JAX and no TensorFlow at all prunes, gates, trains and rebuilds a model.
TFLite export needs the TensorFlow backend; tf.data pipelines need the
TensorFlow package: both say so.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfprune
from tfprune import datasets
from tfprune.errors import TfpruneError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WITHOUT_TENSORFLOW = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
sys.modules["tensorflow"] = None  # importing it now raises ImportError
import keras, numpy as np
import tfprune
from tfprune import zoo
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
model = zoo.resnet20(input_shape=(8, 8, 1), classes=3)
x = np.random.default_rng(0).normal(size=(64, 8, 8, 1)).astype("float32")
y = np.random.default_rng(1).integers(0, 3, 64)

plan = tfprune.prune(model, target_macs=0.5)
slim = tfprune.rebuild(model, plan)
reference = keras.ops.convert_to_numpy(tfprune.core.rebuild.zero_out(model, plan)(x[:8]))
np.testing.assert_allclose(keras.ops.convert_to_numpy(slim(x[:8])), reference, atol=1e-4)
assert tfprune.cost(slim).macs <= 0.5 * tfprune.cost(model).macs

gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5), weight=10.0)
gated.compile(keras.optimizers.SGD(0.05, momentum=0.9),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
history = gated.fit(x, y, epochs=6, batch_size=16, verbose=0,
                    callbacks=[tfprune.methods.hfp.HolisticBudget(ramp_epochs=1)])
assert history.history["macs_ratio"][-1] <= 0.5, history.history
hfp_plan = tfprune.methods.hfp.plan(gated)
hfp_slim = tfprune.rebuild(gated, hfp_plan)
folded = tfprune.core.rebuild.zero_out(tfprune.methods.gates.fold_gates(gated), hfp_plan)
np.testing.assert_allclose(keras.ops.convert_to_numpy(hfp_slim(x[:8])),
                           keras.ops.convert_to_numpy(folded(x[:8])), rtol=1e-5, atol=1e-4)
assert sys.modules["tensorflow"] is None
print("OK")
"""


@pytest.mark.slow_on_jax  # it starts its own JAX process
def test_core_and_hfp_run_on_jax_without_tensorflow(tmp_path):
    script = tmp_path / "jax_only.py"
    script.write_text(WITHOUT_TENSORFLOW)
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND="jax")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0 and "OK" in run.stdout, run.stderr[-3000:]


def _tiny():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))


def test_tflite_export_names_the_backend_it_needs(monkeypatch, tmp_path):
    from tflite_export import convert

    if keras.backend.backend() == "tensorflow":
        # Seen from the code, as a JAX process would see it.
        monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    model = _tiny()
    target = tmp_path / "m.tflite"
    with pytest.raises(TfpruneError, match=r"needs the TensorFlow backend .*KERAS_BACKEND="
                       r"tensorflow.*'jax'.*Save it as \.keras"):
        convert(model, target)
    assert not target.exists()


def test_tf_data_pipelines_need_tensorflow_arrays_do_not(monkeypatch):
    if not os.path.exists(os.path.join(datasets.DEFAULT_FASHION_MNIST_DIR,
                                       "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Fashion-MNIST files not installed (make data)")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(TfpruneError, match=r"need TensorFlow .*as_numpy=True"):
        datasets.load("fashion_mnist", split="test", limit=8)
    x, y = datasets.load("fashion_mnist", split="test", limit=8, as_numpy=True)
    assert x.shape == (8, 28, 28, 1) and y.shape == (8,)


def test_gates_train_on_this_backend():
    """HFP's budget loss and gates under this process's backend (JAX in the second pass)."""
    keras.utils.set_random_seed(0)
    model = _tiny()
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(params=0.6))
    gated.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype("float32")
    y = np.random.default_rng(1).integers(0, 2, 32)
    before = float(keras.ops.convert_to_numpy(gated.budget.loss()))
    gated.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert before > 0.0
    params, _ = gated.budget_cost()
    assert params <= 0.6 * tfprune.cost(model).params
    plan = tfprune.methods.hfp.plan(gated)
    slim = tfprune.rebuild(gated, plan)
    assert tfprune.cost(slim).params <= 0.6 * tfprune.cost(model).params
