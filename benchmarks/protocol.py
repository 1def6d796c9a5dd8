"""The Fashion-MNIST benchmark protocol, as code.

One place for what every benchmark row shares: data (all 60,000 training
images, the 10,000-image test set, standardised with the training mean/std,
random flip and 2-pixel shift while training), the optimiser (SGD, Nesterov
momentum 0.9, weight decay 5e-4, one-cycle learning rate), the epochs (8 for
baselines, 3 for fine-tuning at a peak of 0.05), and cached baselines.
"""

import math
import os
import platform
import time

import keras
import numpy as np

from tfprune import datasets, zoo
from tfprune.core.fileio import save_model, write_atomic

CACHE_DIR = os.path.join(os.path.dirname(__file__), "cache")
SEED = 0
BATCH = 128
BASELINE_EPOCHS = 8
BASELINE_PEAK_LR = 0.1
FINETUNE_EPOCHS = 3
FINETUNE_PEAK_LR = 0.05
WEIGHT_DECAY = 5e-4

# Models benchmarked, built for 28x28x1 Fashion-MNIST and 10 classes.
MODELS = {
    "resnet20": lambda: zoo.resnet20(input_shape=(28, 28, 1), classes=10),
    "vgg11": lambda: zoo.vgg11(input_shape=(28, 28, 1), classes=10, width=0.5),
}


@keras.saving.register_keras_serializable(package="tfprune_benchmarks")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over the first 30% of steps to `peak`, cosine to ~0.

    Args:
        peak: the highest learning rate.
        total_steps: length of the schedule in optimiser steps.
        warmup: fraction of the steps spent warming up.
    """

    def __init__(self, peak, total_steps, warmup=0.3):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup = float(warmup)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = max(1.0, self.warmup * self.total_steps)
        down = max(1.0, self.total_steps - up)
        rising = self.peak * step / up
        t = keras.ops.clip((step - up) / down, 0.0, 1.0)
        falling = self.peak * 0.5 * (1.0 + keras.ops.cos(math.pi * t))
        return keras.ops.where(step < up, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup": self.warmup}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def data(limit=None, train_images=None, batch_size=BATCH):
    """(train dataset, test dataset) under the protocol.

    `limit` cuts both splits (smoke tests); `train_images` only the training
    split (reduced protocols, still tested on the full test set).
    """
    train = datasets.load("fashion_mnist", split="train", batch_size=batch_size,
                          augment=True, seed=SEED, limit=limit or train_images)
    test = datasets.load("fashion_mnist", split="test", batch_size=512, limit=limit)
    return train, test


def optimizer(peak_lr, epochs, steps_per_epoch):
    """The protocol's SGD: Nesterov momentum 0.9, weight decay, one-cycle LR."""
    return keras.optimizers.SGD(
        learning_rate=OneCycle(peak_lr, epochs * steps_per_epoch),
        momentum=0.9, nesterov=True, weight_decay=WEIGHT_DECAY)


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


def accuracy(model, test_ds):
    if not model.compiled:
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    return float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])


def baseline(name, train_ds=None, test_ds=None, epochs=BASELINE_EPOCHS, limit=None):
    """The trained baseline of `name`, from the cache or trained now.

    Returns:
        (model, test accuracy, wall seconds spent training now or before).
    """
    os.makedirs(CACHE_DIR, exist_ok=True)
    tag = f"{name}_e{epochs}" + (f"_n{limit}" if limit else "")
    path = os.path.join(CACHE_DIR, f"{tag}.keras")
    meta = path + ".txt"
    if train_ds is None:
        train_ds, test_ds = data(limit)
    if os.path.exists(path) and os.path.exists(meta):
        model = keras.saving.load_model(path, compile=False)
        acc, wall = (float(v) for v in open(meta).read().split())
        return model, acc, wall
    keras.utils.set_random_seed(SEED)
    model = MODELS[name]()
    wall = train(model, train_ds, epochs, BASELINE_PEAK_LR)
    acc = accuracy(model, test_ds)
    save_model(model, path)  # a killed run never leaves a half-written cache
    write_atomic(meta, f"{acc} {wall}")
    return model, acc, wall


def set_seed():
    keras.utils.set_random_seed(SEED)
    np.random.seed(SEED)
