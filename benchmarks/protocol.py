"""The Fashion-MNIST benchmark protocol, as code.

One place for what every benchmark row shares: data (all 60,000 training
images, the 10,000-image test set, standardised with the training mean/std,
random flip and 2-pixel shift while training), the optimiser (SGD, Nesterov
momentum 0.9, weight decay 5e-4, one-cycle learning rate), the epochs (8 for
baselines, 3 for fine-tuning at a peak of 0.05), and cached baselines.

A cached baseline is named by a hash of the model's config and of the
protocol's settings that shape its training (`baseline_key`), so a change to
either trains a new baseline instead of reusing a stale one.
"""

import hashlib
import json
import os
import time

import keras
import numpy as np

from tfprune import datasets, zoo
from tfprune.fileio import save_model, write_atomic
from tfprune.methods import finetuning

CACHE_DIR = os.path.join(os.path.dirname(__file__), "cache")
SEED = 0
BATCH = 128
BASELINE_EPOCHS = 8
BASELINE_PEAK_LR = 0.1
FINETUNE_EPOCHS = 3
FINETUNE_PEAK_LR = 0.05
WEIGHT_DECAY = 5e-4
MOMENTUM = 0.9
WARMUP = 0.3

# Models benchmarked, built for 28x28x1 Fashion-MNIST and 10 classes.
MODELS = {
    "resnet20": lambda: zoo.resnet20(input_shape=(28, 28, 1), classes=10),
    "vgg11": lambda: zoo.vgg11(input_shape=(28, 28, 1), classes=10, width=0.5),
}


@keras.saving.register_keras_serializable(package="tfprune_benchmarks")
class OneCycle(finetuning.OneCycle):
    """`tfprune.methods.finetuning.OneCycle` under the name older benchmark files were saved with."""


def data(limit=None, train_images=None, batch_size=BATCH, seed=SEED):
    """(train dataset, test dataset) under the protocol.

    `limit` cuts both splits (smoke tests); `train_images` only the training
    split (reduced protocols, still tested on the full test set); `seed` the
    training data's order and augmentation.
    """
    train = datasets.load("fashion_mnist", split="train", batch_size=batch_size,
                          augment=True, seed=seed, limit=limit or train_images)
    test = datasets.load("fashion_mnist", split="test", batch_size=512, limit=limit)
    return train, test


def optimizer(peak_lr, epochs, steps_per_epoch):
    """The protocol's SGD: Nesterov momentum, weight decay, one-cycle LR
    (the optimiser `tfprune.finetune` uses)."""
    return finetuning.sgd(peak_lr, epochs * steps_per_epoch, MOMENTUM, WEIGHT_DECAY,
                          WARMUP)


def compile_for_training(model, peak_lr, epochs, steps_per_epoch):
    model.compile(optimizer=optimizer(peak_lr, epochs, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train(model, train_ds, epochs, peak_lr, verbose=2):
    """Trains under the protocol; returns wall seconds."""
    steps = int(train_ds.cardinality())
    compile_for_training(model, peak_lr, epochs, steps)
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=verbose, shuffle=False)  # tf.data shuffles
    return time.perf_counter() - start


def finetune(student, teacher, train_ds, test_ds, distill, epochs=FINETUNE_EPOCHS):
    """The protocol's fine-tuning by `tfprune.finetune` (distilling from
    `teacher` when `distill`); returns the test accuracy."""
    import tfprune

    tfprune.finetune(student, train_ds, teacher if distill else None, epochs=epochs,
                     learning_rate=FINETUNE_PEAK_LR, verbose=2)
    return accuracy(student, test_ds)


def accuracy(model, test_ds):
    if not model.compiled:
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    return float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])


def baseline_key(name, epochs=BASELINE_EPOCHS, limit=None):
    """12 hex digits naming a trained baseline: a SHA-256 of the model's
    config and of the protocol settings its training uses.

    Args:
        name: a key of `MODELS`.
        epochs: training epochs.
        limit: images per split (smoke tests), or None for the full sets.
    """
    if name not in MODELS:
        raise ValueError(f"unknown benchmark model {name!r}; choose one of "
                         f"{', '.join(sorted(MODELS))}")
    settings = {
        "model": MODELS[name]().get_config(),
        "protocol": {"dataset": "fashion_mnist", "augment": True, "seed": SEED,
                     "batch": BATCH, "epochs": epochs, "limit": limit,
                     "peak_lr": BASELINE_PEAK_LR, "warmup": WARMUP,
                     "momentum": MOMENTUM, "nesterov": True,
                     "weight_decay": WEIGHT_DECAY},
    }
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def baseline_path(name, epochs=BASELINE_EPOCHS, limit=None):
    """Where the trained baseline of `name` is cached (it may not exist yet)."""
    return os.path.join(CACHE_DIR, f"{name}_{baseline_key(name, epochs, limit)}.keras")


def baseline(name, train_ds=None, test_ds=None, epochs=BASELINE_EPOCHS, limit=None):
    """The trained baseline of `name`, from the cache or trained now.

    Returns:
        (model, test accuracy, wall seconds spent training now or before).
    """
    os.makedirs(CACHE_DIR, exist_ok=True)
    path = baseline_path(name, epochs, limit)
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        model = keras.saving.load_model(path, compile=False)
        with open(meta) as f:
            info = json.load(f)
        return model, info["test_acc"], info["wall_s"]
    if train_ds is None:
        train_ds, test_ds = data(limit)
    keras.utils.set_random_seed(SEED)
    model = MODELS[name]()
    wall = train(model, train_ds, epochs, BASELINE_PEAK_LR)
    acc = accuracy(model, test_ds)
    save_model(model, path)  # a killed run never leaves a half-written cache
    write_atomic(meta, json.dumps({"model": name, "epochs": epochs, "limit": limit,
                                   "test_acc": acc, "wall_s": wall,
                                   "key": baseline_key(name, epochs, limit)}))
    return model, acc, wall


def set_seed(seed=SEED):
    keras.utils.set_random_seed(seed)
    np.random.seed(seed)
