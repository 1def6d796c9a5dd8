"""Small calibration sets: arrays from whatever data a user passes, and loss/accuracy on them.

Methods that look at data (sensitivity, the genetic search, PruneNet) take
arrays, a tuple or a batched `tf.data` dataset; these helpers turn any of
those into arrays and score a model on them.
"""

import keras
import numpy as np


def as_arrays(data, limit=None):
    """(x, y) numpy arrays from arrays, a tuple, or a batched tf.data dataset."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    else:
        xs, ys, n = [], [], 0
        for batch in data:
            xs.append(np.asarray(batch[0]))
            ys.append(np.asarray(batch[1]))
            n += len(xs[-1])
            if limit and n >= limit:
                break
        if not xs:
            raise ValueError("the data set is empty; give at least one batch.")
        x, y = np.concatenate(xs), np.concatenate(ys)
    if limit:
        x, y = x[:limit], y[:limit]
    if len(x) == 0:
        raise ValueError("the data set is empty; give at least one sample.")
    return x, y


def evaluate(model, x, y, from_logits=True, batch_size=256):
    """(accuracy, mean cross-entropy) of a classifier on arrays."""
    logits = np.concatenate([model.predict_on_batch(x[i:i + batch_size])
                             for i in range(0, len(x), batch_size)])
    loss = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(
        y, logits, from_logits=from_logits)).mean()
    return float((logits.argmax(-1) == y).mean()), float(loss)
