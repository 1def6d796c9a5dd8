"""One worker of tests/test_distributed.py: trains, writes plan and weights.

Usage: python tests/distributed_worker.py {hfp,prunetrain} OUT_PREFIX

With TF_CONFIG set it trains under `MultiWorkerMirroredStrategy` (one CPU
replica per worker); without, in one process with no strategy. Either way
the global batch is GLOBAL_BATCH samples, taken in order: under the strategy
tf.data's DATA auto-sharding gives each worker its half of every batch.
Writes OUT_PREFIX.json (plan, widths, history) and OUT_PREFIX.npz (weights).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# The strategy comes first: it configures the collective runtime, which must
# happen before TensorFlow creates any op.
STRATEGY = (tf.distribute.MultiWorkerMirroredStrategy()
            if os.environ.get("TF_CONFIG") else None)

import keras  # noqa: E402

keras.config.disable_traceback_filtering()
import numpy as np  # noqa: E402

import tfprune  # noqa: E402

GLOBAL_BATCH = 16
SAMPLES = 128


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype("int32") + (x[:, :, :4].mean(
        axis=(1, 2, 3)) > 0).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)


def build_model():
    """Two convs and a residual pair, no BatchNorm (its statistics are per replica)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu",
                            name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


def kill_channels(model):
    """Zeroes c3's filters 0-3 and the head's rows reading them: dead channels."""
    c3, head = model.get_layer("c3"), model.get_layer("head")
    kernel, bias = c3.get_weights()
    kernel[..., :4] = 0.0
    bias[:4] = 0.0
    c3.set_weights([kernel, bias])
    kernel, bias = head.get_weights()
    kernel[:4] = 0.0
    head.set_weights([kernel, bias])


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run_hfp():
    model = build_model()
    gated = tfprune.methods.hfp.gate(model, tfprune.Budget(macs=0.5), weight=5.0)
    gated.compile(keras.optimizers.SGD(0.05, momentum=0.9), loss())
    history = gated.fit(data(), epochs=2, verbose=0,
                        callbacks=[tfprune.methods.hfp.HolisticBudget(ramp_epochs=1)])
    plan = tfprune.methods.hfp.plan(gated)
    slim = tfprune.rebuild(gated, plan)
    return slim, {"plan": plan.to_dict(), "history": history.history}


def run_prunetrain():
    model = build_model()
    kill_channels(model)
    result = tfprune.methods.prunetrain.fit(
        model, data(), epochs=3, reconfigure_every=1, penalty_ratio=0.3,
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=loss(),
        metrics=[], verbose=0)
    slots = {f"slot{i}": keras.ops.convert_to_numpy(v)
             for i, v in enumerate(result.optimizer.variables)}
    return result.model, {
        "reconfigurations": result.reconfigurations,
        "penalty_weight": result.penalty_weight, "history": result.history,
        "optimizer_iterations": int(keras.ops.convert_to_numpy(result.optimizer.iterations)),
        "slots": sorted(slots)}, slots


def main(method, prefix):
    if STRATEGY is not None:
        with STRATEGY.scope():
            outcome = run_hfp() if method == "hfp" else run_prunetrain()
    else:
        outcome = run_hfp() if method == "hfp" else run_prunetrain()
    model, info = outcome[0], outcome[1]
    arrays = {f"w{i}": keras.ops.convert_to_numpy(w) for i, w in enumerate(model.weights)}
    if len(outcome) > 2:
        arrays.update(outcome[2])
    info["widths"] = {w.path: list(w.shape) for w in model.weights}
    info["replicas"] = STRATEGY.num_replicas_in_sync if STRATEGY else 1
    np.savez(prefix + ".npz", **arrays)
    with open(prefix + ".json", "w") as f:
        json.dump(info, f, default=float)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
