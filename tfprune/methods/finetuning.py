"""Fine-tuning a pruned model, distilling from its original by default.

A rebuilt model has lost channels and, with them, accuracy; a few epochs of
training bring most of it back. `finetune` distils from the unpruned
original whenever it is given it as `teacher` (the CLI passes it:
`tfprune prune ... --finetune-epochs 3 --data fashion_mnist`), and trains on
the labels alone otherwise.

The optimiser is SGD with Nesterov momentum 0.9, decoupled weight decay 5e-4
and a one-cycle learning rate (linear warm-up over the first 30% of the
steps, cosine down to 0).
"""

import math

import keras

from tfprune.methods.distill import Distiller


@keras.saving.register_keras_serializable(package="tfprune")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over the first `warmup` of the steps to `peak`, cosine to 0.

    Args:
        peak: the highest learning rate.
        total_steps: length of the schedule in optimiser steps.
        warmup: fraction of the steps spent warming up.

    Example:

    ```python
    schedule = tfprune.methods.finetuning.OneCycle(0.05, total_steps=3 * len(train))
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    ```
    """

    def __init__(self, peak, total_steps, warmup=0.3):
        if peak <= 0:
            raise ValueError(f"peak must be positive, got {peak}.")
        if int(total_steps) < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}.")
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}.")
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


def sgd(peak_lr, total_steps, momentum=0.9, weight_decay=5e-4, warmup=0.3):
    """SGD with Nesterov momentum, decoupled weight decay and `OneCycle`."""
    return keras.optimizers.SGD(learning_rate=OneCycle(peak_lr, total_steps, warmup),
                                momentum=momentum, nesterov=True,
                                weight_decay=weight_decay)


def _steps_per_epoch(data, batch_size):
    if isinstance(data, (tuple, list)):
        n = len(data[0])
        if n == 0:
            raise ValueError("the fine-tuning data is empty; give at least one sample.")
        return math.ceil(n / batch_size)
    try:
        steps = len(data)
    except TypeError:
        steps = None
    if steps is None or steps < 0:
        cardinality = getattr(data, "cardinality", None)
        steps = int(cardinality()) if cardinality is not None else -1
    if steps == 0:
        raise ValueError("the fine-tuning data set is empty; give at least one batch.")
    if steps < 0:
        raise ValueError(
            "cannot tell how many batches the fine-tuning data has (an infinite or "
            "filtered tf.data dataset?); pass steps_per_epoch=N.")
    return steps


def finetune(model, data, teacher=None, *, epochs=3, learning_rate=0.05,
             batch_size=128, steps_per_epoch=None, temperature=4.0, alpha=0.9,
             from_logits=True, validation_data=None, callbacks=None, verbose="auto"):
    """Fine-tunes a pruned classifier in place, distilling from `teacher`.

    Args:
        model: the pruned model (e.g. from `tfprune.rebuild`); trained in
            place.
        data: training data: `(x, y)` arrays (integer labels), or a batched
            `tf.data.Dataset` / `keras.utils.PyDataset` of `(x, y)`.
        teacher: the unpruned original. When given (recommended), the loss
            is `(1 - alpha) * CE + alpha * T^2 * KL` as in
            `tfprune.methods.distill.Distiller`; when None, cross-entropy on the
            labels only. The teacher is not modified.
        epochs: fine-tuning epochs.
        learning_rate: the peak of the one-cycle learning rate.
        batch_size: batch size when `data` are arrays.
        steps_per_epoch: batches per epoch, only needed when it cannot be
            read from `data`.
        temperature, alpha: distillation temperature and weight.
        from_logits: whether the models output logits.
        validation_data, callbacks, verbose: as for `keras.Model.fit`.

    Returns:
        The `keras.callbacks.History` of the run. `model` is left compiled
        with cross-entropy and accuracy, ready for `evaluate`.

    Example:

    ```python
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    tfprune.finetune(slim, train, teacher=model, epochs=1, verbose=0)
    slim.evaluate(x, y, verbose=0)
    ```
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    steps = steps_per_epoch or _steps_per_epoch(data, batch_size)
    optimizer = sgd(learning_rate, epochs * steps)
    fit_kwargs = dict(epochs=epochs, validation_data=validation_data,
                      callbacks=callbacks, verbose=verbose,
                      steps_per_epoch=steps_per_epoch)
    if isinstance(data, (tuple, list)):
        fit_kwargs.update(x=data[0], y=data[1], batch_size=batch_size)
    else:  # a dataset shuffles itself
        fit_kwargs.update(x=data, shuffle=False)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    if teacher is None:
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        return model.fit(**fit_kwargs)
    distiller = Distiller(student=model, teacher=teacher, temperature=temperature,
                          alpha=alpha, from_logits=from_logits)
    distiller.compile(optimizer, metrics=["accuracy"])
    history = distiller.fit(**fit_kwargs)
    model.compile(loss=loss, metrics=["accuracy"])
    return history
