"""Training under `tf.distribute`: scopes, loss scaling, agreed decisions.

Everything here is a no-op on one device and on backends other than
TensorFlow (JAX shards with `keras.distribution`, which needs none of it).

Three things a method that trains must get right under a strategy such as
`MultiWorkerMirroredStrategy`:

- Variables it creates (a rebuilt model, a new optimizer, a callback's
  state) must be created under the strategy's scope, or they live on one
  device and are never synchronised: `strategy_scope(model)`.
- Keras divides the compiled loss by the number of replicas, since the
  strategy sums the replicas' gradients. A term a model adds to its loss
  in `compute_loss` must be divided the same way, or it counts once per
  replica: `per_replica(value)`.
- A decision taken in numpy (which channels are dead) must be the same on
  every worker. Synchronised weights make it so; `from_first_replica(values)`
  makes it so even if a worker's arithmetic differed, by handing every
  worker the first replica's values before deciding.
"""

import contextlib

import keras
import numpy as np

from tfprune.compat import SymbolicBuildHook, distribute_strategy, in_multi_worker_mode


def _tf():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


def _strategy(model=None):
    tf = _tf()
    if tf is None:
        return None
    if tf.distribute.has_strategy():
        return tf.distribute.get_strategy()
    return distribute_strategy(model)


def strategy_scope(model=None):
    """The scope of the strategy `model` was built under (or the current one).

    Args:
        model: a `keras.Model` or None.

    Returns:
        A context manager: the strategy's `scope()` when a `tf.distribute`
        strategy is current or `model` was created under one, otherwise one
        that does nothing.

    Example:

    ```python
    from tfprune.training.replicas import strategy_scope
    with strategy_scope(model):
        clone = keras.models.clone_model(model)
    ```
    """
    strategy = _strategy(model)
    if strategy is None:
        return contextlib.nullcontext()
    return strategy.scope()


def num_replicas():
    """Replicas summing their gradients in the current context (1 without)."""
    tf = _tf()
    if tf is None:
        return 1
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def per_replica(value):
    """`value` divided by the number of replicas, as Keras scales its loss.

    Args:
        value: a loss term computed identically on every replica.

    Returns:
        The term each replica adds, so that the sum over replicas counts it
        once.
    """
    n = num_replicas()
    return value if n == 1 else value * (1.0 / n)


def from_first_replica(values, model=None):
    """The first replica's `values`, on every replica of every worker.

    Call it at the same point on every worker: under a multi-worker strategy
    it is a collective operation (a sum in which only replica 0 contributes,
    so the result is its values bit for bit).

    Args:
        values: a numpy array, computed on each worker.
        model: the model whose strategy to use when none is current.

    Returns:
        A numpy array of the same shape and dtype, identical on every worker.
    """
    tf = _tf()
    strategy = _strategy(model)
    if tf is None or strategy is None or strategy.num_replicas_in_sync == 1:
        return values
    array = np.asarray(values)
    wide = array.astype("float64")

    def share():
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        return tf.where(first, tf.constant(wide), tf.zeros_like(wide))

    with strategy.scope():
        agreed = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(share), axis=None)
    return np.asarray(agreed.numpy()).astype(array.dtype)


class MultiWorkerFit(SymbolicBuildHook):
    """Mixin: `fit` and `evaluate` of a `keras.Model` under several workers.

    Keras 3.15's TensorFlow trainer has two faults with a
    `MultiWorkerMirroredStrategy` of more than one worker, which this mixin
    works around for tfprune's own models (`GatedModel`, `PruneTrainModel`):

    - Before `fit` it builds the model by reducing its first distributed
      batch, `(x, y)` at once, with `strategy.reduce`, which cannot reduce a
      tuple ("Attempt to convert a value (PerReplica...)"): here each tensor
      is reduced alone.
    - It reduces the step's logs with `strategy.reduce("MEAN", v, axis=0)`,
      which fails on the scalar losses and metrics ("Invalid reduction
      dimension 0"): here the step returns each as a one-element vector,
      whose mean over axis 0 and the replicas is the scalar Keras expects.

    With one worker, or on another backend, it changes nothing.
    """

    def symbolic_build(self, iterator, data_batch, default):
        tf = _tf()
        strategy = distribute_strategy(self)
        if tf is None or iterator is None or not in_multi_worker_mode(strategy):
            return default(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues) else v, batch)
            break
        return default(data_batch=data_batch)

    def _vector_logs(self, logs):
        if _tf() is None or not in_multi_worker_mode(distribute_strategy(self)):
            return logs
        return {k: keras.ops.reshape(v, (1,)) if len(keras.ops.shape(v)) == 0 else v
                for k, v in logs.items()}

    # (*args: JAX's trainer passes (state, data) and gets (logs, state) back.)
    def train_step(self, *args):
        return self._vector_logs(super().train_step(*args))

    def test_step(self, *args):
        return self._vector_logs(super().test_step(*args))
