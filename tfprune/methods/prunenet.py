"""PruneNet: one global, data-driven channel importance; widths follow from it.

After Khetan & Karnin, "PruneNet: Channel Pruning via Global Importance"
(arXiv 2005.11282, 2020). The paper's point: start from a trained network,
score every channel on *one* scale with a light, data-driven step (a few
batches, no training run), cut one global ranking at the FLOPs target, so
each layer's width is discovered rather than set by a uniform fraction or by
weight statistics whose scale differs from layer to layer; then fine-tune.

The estimator is tfprune's choice, made to satisfy those requirements:

- Score: the expected loss increase from removing a channel, estimated to
  first order on calibration batches. Removing channel `c` means its
  consumers stop reading it (exactly what `tfprune.core.rebuild.zero_out`
  does), i.e. every consumer's input-channel slice `W_c` is scaled by `t`
  from 1 to 0, so `dL/dt = sum(W_c * dL/dW_c)`, summed over all consumers
  of the channel (every branch of a residual group, every position of a
  Flatten->Dense).
  Per batch this term is squared (a removal hurts whichever its sign, as in
  Molchanov et al. 2019's Taylor criterion) and the squares are averaged
  over batches. A channel nobody reads, or read through zero weights, scores
  exactly 0.
- Global scale, no per-layer normalisation: every score is in units of the
  loss, so the scores of a stem convolution and of a classifier input
  compare as they are. This is the difference with `tfprune.prune(...,
  scope="global")`, which must divide each group's weight norms by their
  mean before ranking them together. The ranking is cut by
  `tfprune.ranking.fit.fit_plan(..., normalize=False)`, which finds the
  least pruning that meets the MACs/params targets.
- One-shot by default; `iterative_steps=k` cuts in k steps towards the
  target (geometrically), re-scoring on a copy of the model with the
  channels removed so far zeroed (`zero_out`), so later scores see the
  already thinned network. Still only forward/backward passes, no training.
  A first-order estimate is only good for small removals, which is what
  re-scoring between steps keeps each cut to.
- Fine-tuning is not part of the plan: rebuild, then fine-tune as usual
  (`tfprune.finetune`, distilling from the unpruned model).
- BatchNormalization runs in inference mode (`training=False`) while
  scoring: the network is judged as it will be used.

Gradients are the one backend-specific step; `_loss_gradients` isolates it
(TensorFlow and JAX backends).
"""

import keras
import numpy as np

from tfprune.core.budget import check_budget
from tfprune.core.data import as_arrays
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.rebuild import zero_out
from tfprune.methods.registry import Method, Option, register_method
from tfprune.ranking.fit import fit_plan
from tfprune.ranking.importance import consumer_inputs


def _loss_gradients(model, variables, x, y, loss_fn):
    """Gradients of the mean loss on (x, y) with respect to `variables`.

    The model runs in inference mode. The only backend-specific code of the
    method.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            for v in variables:
                tape.watch(v.value)
            loss = loss_fn(y, model(x, training=False))
        grads = tape.gradient(loss, [v.value for v in variables])
        return [np.zeros(v.shape, "float32") if g is None else
                keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads)]
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]
        ids = {id(v): i for i, v in enumerate(model.trainable_variables)}
        fixed_ids = {id(v): i for i, v in enumerate(model.non_trainable_variables)}

        def loss_of(trainable, fixed):
            pred, _ = model.stateless_call(trainable, fixed, x, training=False)
            return loss_fn(y, pred)

        g_train, g_fixed = jax.grad(loss_of, argnums=(0, 1))(trainable, fixed)
        return [np.asarray(g_train[ids[id(v)]]) if id(v) in ids
                else np.asarray(g_fixed[fixed_ids[id(v)]]) for v in variables]
    raise NotImplementedError(
        f"tfprune.methods.prunenet needs gradients; the '{backend}' Keras backend is not "
        "supported yet (use KERAS_BACKEND=tensorflow or jax).")


def _default_loss(from_logits):
    base = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return lambda y, pred: base(y, pred)


def scores(model, data, loss=None, from_logits=True, num_samples=512,
           batch_size=64, seed=0, verbose=1):
    """Global channel importance: the first-order loss increase of removing it.

    Args:
        model: a trained functional or Sequential `keras.Model` (not
            modified).
        data: calibration data: `(x, y)` arrays, or a batched `tf.data`
            dataset / iterable of `(x, y)` batches.
        loss: `loss(y_true, y_pred)` returning a scalar; by default sparse
            categorical cross-entropy.
        from_logits: for the default loss, whether the model outputs logits.
        num_samples: calibration samples drawn from `data` (all of them when
            `data` has fewer).
        batch_size: samples per forward/backward pass.
        seed: seeds which samples are drawn and their order.
        verbose: 1 shows a `keras.utils.Progbar` over the batches.

    Returns:
        dict group id (of `tfprune.analyze(model)`) -> float64 array of
        scores per channel, >= 0, higher = more important, all groups on one
        scale.

    Raises:
        ValueError: when `data` is empty or the arguments are out of range.

    Example:

    ```python
    s = tfprune.methods.prunenet.scores(model, (x, y), verbose=0)
    graph = tfprune.analyze(model)
    print(s[graph.group_of("conv3").id])
    ```
    """
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    return _scores(graph, graph.model, data, loss, from_logits, num_samples,
                   batch_size, seed, verbose)


def _calibration(data, num_samples, seed):
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    x, y = as_arrays(data)
    order = np.random.default_rng(seed).permutation(len(x))[:num_samples]
    return x[order], y[order]


def _scores(graph, model, data, loss, from_logits, num_samples, batch_size, seed,
            verbose, arrays=None):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    x, y = arrays if arrays is not None else _calibration(data, num_samples, seed)
    loss_fn = loss or _default_loss(from_logits)
    consumers = consumer_inputs(graph)
    # weights of `model` (it may be a zeroed copy of graph.model: same names)
    variables = [_same_weight(model, node, var) for node, var, _ in consumers]
    total = np.zeros(graph.num_channels, dtype=np.float64)
    batches = range(0, len(x), batch_size)
    progress = keras.utils.Progbar(len(batches), verbose=1 if verbose else 0,
                                   unit_name="batch")
    for i, start in enumerate(batches):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        grads = _loss_gradients(model, variables, xb, yb, loss_fn)
        taylor = np.zeros(graph.num_channels, dtype=np.float64)
        for (node, _, axes), var, grad in zip(consumers, variables, grads):
            axis = axes.input_axis
            w = keras.ops.convert_to_numpy(var).astype(np.float64)
            term = np.moveaxis(w * grad, axis, 0).reshape(w.shape[axis], -1).sum(axis=1)
            chans = graph.channels[node.inputs[0]]
            if len(chans) != len(term):  # SeparableConv pointwise repeat etc.
                continue
            np.add.at(taylor, chans, term)
        total += taylor ** 2
        progress.update(i + 1)
    total /= max(1, len(batches))
    return {g.id: total[g.offset:g.offset + g.size] for g in graph.groups}


def _same_weight(model, node, var):
    """`var`'s counterpart in `model` (a copy of the graph's model)."""
    if model is node.layer or model.get_layer(node.path[0]) is node.layer:
        return var
    layer = model
    for name in node.path:
        layer = layer.get_layer(name)
    return next(w for w in layer.weights if w.name == var.name)


def plan(model, budget, data, *, iterative_steps=1, loss=None, from_logits=True,
         num_samples=512, batch_size=64, seed=0, verbose=1):
    """A `PruningPlan` from PruneNet's global importance, within `budget`.

    Args:
        model: a trained functional or Sequential `keras.Model` (or its
            `ChannelGraph`); not modified.
        budget: a `tfprune.Budget` (MACs and/or params).
        data: calibration data, as for `scores`.
        iterative_steps: cut in this many steps, re-scoring after each on
            the model with the channels removed so far zeroed (1: one-shot).
        loss, from_logits, num_samples, batch_size, seed, verbose: as for
            `scores`; every step uses the same calibration samples.

    Returns:
        A `PruningPlan` (the least pruning within every target), for
        `tfprune.rebuild`.

    Raises:
        TargetUnreachableError: when no plan can meet the targets.
        ValueError: on empty data or bad arguments.

    Example:

    ```python
    budget = tfprune.Budget(macs=0.5)
    plan = tfprune.methods.prunenet.plan(model, budget, (x, y), verbose=0)
    slim = tfprune.rebuild(model, plan)  # then fine-tune slim
    ```
    """
    check_budget(budget)
    if budget.latency is not None:
        raise ValueError("PruneNet takes no latency target; give macs= or params=.")
    if isinstance(iterative_steps, bool) or not isinstance(iterative_steps, int) \
            or iterative_steps < 1:
        raise ValueError(
            f"iterative_steps must be a positive integer, got {iterative_steps!r}.")
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    # as fractions of the original, so intermediate steps can interpolate
    fractions = budget.fractions(graph)
    arrays = _calibration(data, num_samples, seed)
    chosen, working = None, graph.model
    for step in range(1, iterative_steps + 1):
        s = _scores(graph, working, None, loss, from_logits, num_samples, batch_size,
                    seed, verbose, arrays=arrays)
        if chosen is not None:  # channels already removed stay last in line
            for gid, kept in chosen.keep.items():
                removed = np.setdiff1d(np.arange(graph.groups[gid].size), kept)
                s[gid] = s[gid].copy()
                s[gid][removed] = -1.0
        if step == iterative_steps:
            step_budget = budget
        else:  # part of the way, geometrically (a count above the model: no cut)
            share = step / iterative_steps
            step_budget = budget.replace(**{k: min(f, 1.0) ** share
                                            for k, f in fractions.items()})
        chosen = fit_plan(graph, s, step_budget, scope="global", normalize=False)
        if step < iterative_steps:
            working = zero_out(graph.model, chosen)
    return chosen


register_method("prunenet", Method(
    plan=lambda model, budget, data=None, iterative_steps=1, seed=0: plan(
        model, budget, data, iterative_steps=iterative_steps, seed=seed),
    summary="one global, loss-based channel importance from calibration batches",
    paper="Khetan & Karnin 2020, PruneNet: Channel Pruning via Global Importance",
    needs_data=True,
    options=[Option("iterative_steps", int, 1, "cut in this many steps, "
                    "re-scoring after each"),
             Option("seed", int, 0, "which calibration samples are drawn")]))
