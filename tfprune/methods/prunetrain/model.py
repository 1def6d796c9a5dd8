"""The trainable PruneTrain model: a wrapper whose inner network can shrink.

Keras's `fit` holds on to the model object it was called on for the whole
run (its callbacks' `self.model`, the History, the train function it calls
every step). So the object `fit` sees never changes: `PruneTrainModel`
wraps the functional network that really computes, and a reconfiguration
swaps that inner network (and the optimizer, its slots sliced) and drops the
traced train/test/predict functions, which `fit` looks up at every step.
"""

import contextlib

import keras

from tfprune.compat import replace_tracked_layer
from tfprune.core.cost import cost
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.plan import PruningPlan
from tfprune.errors import TfpruneError
from tfprune.methods.prunetrain.callback import Reconfigure
from tfprune.methods.prunetrain.checkpoint import RunState
from tfprune.methods.prunetrain.reconfigure import reconfigure
from tfprune.methods.registry import Method, Option, TrainingSession, register_method
from tfprune.methods.regularizers import MODES, GroupLasso
from tfprune.training.optimizer_state import new_optimizer
from tfprune.training.replicas import MultiWorkerFit, num_replicas, per_replica


@keras.saving.register_keras_serializable(package="tfprune")
class PruneTrainModel(MultiWorkerFit, keras.Model):
    """A model trained with group lasso, whose network shrinks as it trains.

    Made by `tfprune.methods.prunetrain.wrap`. Compile and fit it as usual;
    with `tfprune.methods.prunetrain.Reconfigure` in the callbacks, dead channels are
    removed during `fit`. Its training loss is the compiled loss plus λ·R
    (R: the `GroupLasso` penalty), λ set at the first training step so that
    λ·R is a share `penalty_ratio` of that step's loss. In "proximal" mode
    λ·R is reported in the loss but not differentiated: after every
    optimizer step the groups are soft-thresholded by learning rate × λ
    (for SGD with momentum β, the effective rate lr/(1−β): see
    `effective_rate`).

    `layers` and `get_layer` reach the inner network's layers, so code
    written for the functional model keeps working.

    Args:
        network: the functional (or Sequential) model that computes.
        penalty_ratio: r in [0, 1); 0 trains without penalty.
        mode: "proximal" or "subgradient" (see `tfprune.methods.regularizers`).

    Attributes:
        network: the current inner model.
        penalty_weight: λ, a variable (negative until the first step).
        samples_seen: training samples processed.
        run: bookkeeping of the run (epochs, reconfigurations, FLOPs).
    """

    def __init__(self, network, penalty_ratio=0.2, mode="proximal", **kwargs):
        kwargs.setdefault("name", network.name)
        super().__init__(**kwargs)
        penalty_ratio = float(penalty_ratio)
        if not 0.0 <= penalty_ratio < 1.0:
            raise ValueError(
                f"penalty_ratio must be in [0, 1), got {penalty_ratio}; 0.2 is "
                "the paper's default.")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if mode == "proximal" and keras.backend.backend() == "jax":
            raise TfpruneError(
                "the proximal group-lasso step is not available on the JAX "
                "backend (its train step is stateless); use mode='subgradient'.")
        self.network = network
        self.penalty_ratio = penalty_ratio
        self.mode = mode
        # Replicas under a distribution strategy (every worker's) set λ to
        # the mean of their first-step estimates, which is the estimate from
        # the global batch. Each adds its batch times the number of replicas
        # to the sample count, and the mean of those is the global batch.
        # ("sum" would be the natural aggregation, but under a multi-worker
        # strategy an `assign_add` then sums the updated values, doubling
        # the count at every step with two workers. A mean needs a float;
        # float64 counts exactly up to 2**53.)
        self.penalty_weight = keras.Variable(
            -1.0, trainable=False, name="penalty_weight", dtype="float32",
            aggregation="mean")
        self.samples_seen = keras.Variable(
            0.0, trainable=False, name="samples_seen", dtype="float64",
            aggregation="mean")
        self._lasso = None
        self.run = RunState(model_name=network.name,
                            dense_macs=float(cost(network).macs))
        self.built = True

    @property
    def layers(self):
        return self.network.layers

    @property
    def lasso(self):
        """The `GroupLasso` over the current network (None when r is 0)."""
        if self._lasso is None and self.penalty_ratio > 0:
            self._lasso = GroupLasso(self.network, mode=self.mode)
        return self._lasso

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)
        loss = keras.ops.cast(loss, "float32")
        if training:
            batch = keras.ops.shape(keras.tree.flatten(x)[0])[0]
            self.samples_seen.assign_add(keras.ops.cast(batch * num_replicas(), "float64"))
        if self.lasso is None:
            return loss
        penalty = self.lasso.penalty()
        if self.mode == "proximal":
            penalty = keras.ops.stop_gradient(penalty)
        # Under a strategy the compiled loss comes divided by the number of
        # replicas (their gradients are summed); the penalty is divided alike,
        # and λ is estimated from the undivided (global-batch) loss.
        if not training:
            return loss + per_replica(keras.ops.maximum(self.penalty_weight, 0.0) * penalty)
        r = self.penalty_ratio
        first = keras.ops.stop_gradient(
            r * loss * num_replicas() / ((1.0 - r) * penalty))
        weight = keras.ops.where(self.penalty_weight < 0, first, self.penalty_weight)
        self.penalty_weight.assign(weight)
        return loss + per_replica(weight * penalty)

    def train_step(self, *args, **kwargs):
        if self.mode != "proximal" or self.lasso is None:
            return super().train_step(*args, **kwargs)
        rate = effective_rate(self.optimizer)  # the rate this step applies
        logs = super().train_step(*args, **kwargs)
        # λ is the global-batch value (see compute_loss), the step's whole.
        weight = keras.ops.maximum(keras.ops.convert_to_tensor(self.penalty_weight), 0.0)
        self.lasso.proximal_step(rate * weight)
        return logs

    def strategy_scope(self):
        """The distribution strategy's scope, where new variables belong."""
        strategy = getattr(self, "distribute_strategy", None)
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    def swap(self, network, optimizer=None):
        """Replaces the inner network (and optimizer) in the middle of `fit`.

        The traced train, test and predict functions are dropped and the
        train function is made again at once (`fit` calls it at the next
        step without asking for a new one).

        Args:
            network: the new inner model.
            optimizer: the optimizer for it, built for its variables with
                its state loaded; None keeps the current one.
        """
        replace_tracked_layer(self, self.network, network)
        self.network = network
        if optimizer is not None:
            self.optimizer = optimizer
        self._lasso = None
        self.train_function = self.test_function = self.predict_function = None
        if self.compiled and self.optimizer is not None:
            _ = self.lasso  # analyse now, not while tracing the train step
            self.make_train_function(force=True)

    def reconfigure(self, threshold=1e-4, drop_branches=True, custom_objects=None,
                    epoch=None):
        """Removes dead channels and branches now (see `prunetrain.reconfigure`).

        Args:
            threshold: a weight below this in absolute value counts as zero.
            drop_branches: remove dead residual branches.
            custom_objects: as for `tfprune.rebuild`.
            epoch: the epoch it happens before, for `run`.

        Returns:
            The `Reconfiguration`.
        """
        optimizer = getattr(self, "optimizer", None)
        with self.strategy_scope():
            step = reconfigure(self.network, optimizer, threshold, custom_objects,
                               drop_branches=drop_branches)
            if step.changed:
                self.swap(step.model, step.optimizer)
        for name, kept in step.kept.items():
            before = self.run.kept.get(name)
            self.run.kept[name] = (kept if before is None
                                   else [before[i] for i in kept])
        after = cost(self.network)
        self.run.reconfigured_at = self.run.epoch if epoch is None else epoch
        self.run.reconfigurations.append({
            "epoch": self.run.reconfigured_at, "macs": after.macs,
            "params": after.params, "removed_channels": step.removed_channels,
            "removed_branches": step.removed_branches})
        return step

    def get_weights(self):
        return _Snapshot(super().get_weights(), self.network, self.run.kept)

    def set_weights(self, weights):
        """Sets the weights; a snapshot of a wider network restores its width.

        `get_weights` returns a list that remembers the network it came
        from, so a callback restoring it after a reconfiguration
        (EarlyStopping's best weights) brings back that network. The
        optimizer then starts afresh (its state fits the other width).
        """
        source = getattr(weights, "network_config", None)
        if source is not None and weights.network_id != id(self.network):
            current = [tuple(w.shape) for w in self.network.weights]
            if current != weights.shapes:
                with self.strategy_scope():
                    network = self.network.__class__.from_config(source)
                    optimizer = None
                    if getattr(self, "optimizer", None) is not None:
                        optimizer = new_optimizer(self.optimizer)
                        optimizer.build(network.trainable_variables)
                    self.swap(network, optimizer)
                # the restored network's channels come from where they came then
                self.run.kept = {name: list(indices)
                                 for name, indices in weights.kept.items()}
        super().set_weights(list(weights))

    def get_config(self):
        return {"name": self.name, "penalty_ratio": self.penalty_ratio,
                "mode": self.mode,
                "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(
            config.pop("network"), custom_objects=custom_objects)
        return cls(network, **config)


def effective_rate(optimizer):
    """The step size a constant gradient gets per step, in the long run.

    SGD with momentum β moves a weight by lr/(1−β) per step under a
    constant gradient; the subgradient form's penalty gets that much, so the
    proximal step shrinks by λ·lr/(1−β) to be the same penalty. Other
    optimizers: their learning rate (Adam's per-weight scaling is not
    modelled).
    """
    rate = keras.ops.cast(optimizer.learning_rate, "float32")
    momentum = float(getattr(optimizer, "momentum", 0.0) or 0.0)
    if isinstance(optimizer, keras.optimizers.SGD) and 0.0 < momentum < 1.0:
        rate = rate / (1.0 - momentum)
    return rate


class _Snapshot(list):
    """Weights, with the network they belong to and its channels' origin."""

    def __init__(self, values, network, kept):
        super().__init__(values)
        self.kept = {name: list(indices) for name, indices in kept.items()}
        self.network_id = id(network)
        self.network_config = network.get_config()
        self.shapes = [tuple(w.shape) for w in network.weights]


def wrap(model, penalty_ratio=0.2, mode="proximal"):
    """A trainable PruneTrain model around a copy of `model`.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        penalty_ratio: r in [0, 1): the penalty's share of the first
            step's loss (0.2 is the paper's default).
        mode: "proximal" (default) or "subgradient" group lasso.

    Returns:
        A `PruneTrainModel`; compile it and fit it with `Reconfigure` among
        the callbacks to shrink it while it trains.

    Example:

    ```python
    pt = tfprune.methods.prunetrain.wrap(model, penalty_ratio=0.2)
    pt.compile(keras.optimizers.SGD(0.1, momentum=0.9),
               "sparse_categorical_crossentropy")
    pt.fit(x, y, epochs=2, verbose=0,
           callbacks=[tfprune.methods.prunetrain.Reconfigure(every=1)])
    slim = pt.network  # the reconfigured functional model
    ```
    """
    analyze(model)  # a clear error now for a model tfprune cannot walk
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pt = PruneTrainModel(copy, penalty_ratio=penalty_ratio, mode=mode)
    if pt.penalty_ratio > 0 and pt.lasso.num_groups == 0:
        raise TfpruneError(
            f"model '{model.name}' has no prunable channel (see "
            "tfprune.analyze(model).summary()); PruneTrain has nothing to "
            "remove. Use model.fit instead.")
    return pt


def trained_plan(original, model):
    """The plan of what PruneTrain removed from `original`, as a `PruningPlan`.

    Args:
        original: the model given to `wrap` (or its `ChannelGraph`).
        model: the `PruneTrainModel` after training.

    Returns:
        A `PruningPlan` of `original` keeping the channels the trained
        network still has. A group whose every producer was removed with a
        dead residual branch keeps one channel (a plan cannot remove a
        whole group); `model.run.reconfigurations` lists those branches.
    """
    graph = original if isinstance(original, ChannelGraph) else analyze(original)
    present = {layer.name for layer in model.network.layers}
    keep = {}
    for group in graph.prunable_groups:
        alive = [name for name in group.producers if name in present]
        if not alive:
            keep[group.id] = [0]
        elif alive[0] in model.run.kept:
            keep[group.id] = model.run.kept[alive[0]]
    return PruningPlan(graph, keep)


def attach(model, budget=None, penalty_ratio=0.2, mode="proximal", reconfigure_every=5,
           threshold=1e-4):
    """Starts PruneTrain: a model that sheds channels while it trains.

    PruneTrain takes no budget: the penalty ratio decides how much is removed.

    Args:
        model: a functional or Sequential `keras.Model`, usually freshly
            built (not modified).
        budget: None.
        penalty_ratio, mode: as for `wrap`.
        reconfigure_every, threshold: as for `Reconfigure`'s `every` and
            `threshold`.

    Returns:
        A `TrainingSession`; compile and fit `session.model` (a
        `PruneTrainModel`) with `session.callbacks`; `session.rebuild()` is
        the trained, already slim network and `session.plan()` describes
        what was removed from `model` (`trained_plan`).

    Example:

    ```python
    session = tfprune.methods.prunetrain.attach(model, reconfigure_every=1)
    session.model.compile("sgd", "sparse_categorical_crossentropy")
    session.model.fit(x, y, epochs=2, callbacks=session.callbacks, verbose=0)
    slim = session.rebuild()
    ```
    """
    if budget is not None:
        raise ValueError("PruneTrain takes no budget: its penalty_ratio decides how "
                         "much is removed.")
    graph = analyze(model)
    pt = wrap(model, penalty_ratio=penalty_ratio, mode=mode)
    return TrainingSession(
        pt, [Reconfigure(every=reconfigure_every, threshold=threshold)],
        plan=lambda: trained_plan(graph, pt), rebuild=lambda: pt.network)


register_method("prunetrain", Method(
    attach=attach, budget=False, round_to=False,
    summary="train from scratch with group lasso; dead channels are removed while "
            "it trains",
    paper="Lym et al. 2019, PruneTrain: Fast Neural Network Training by Dynamic "
          "Sparse Model Reconfiguration",
    options=[Option("penalty_ratio", float, 0.2, "the penalty's share of the first "
                    "step's loss"),
             Option("mode", str, "proximal", "group-lasso step",
                    choices=("proximal", "subgradient")),
             Option("reconfigure_every", int, 5, "epochs between reconfigurations"),
             Option("threshold", float, 1e-4, "a weight below this counts as zero")]))
