"""Channel importance: one score per channel of every group.

An importance criterion maps a `ChannelGraph` to a dict group id -> float
array (higher means more worth keeping). Scores of a group sum the
contributions of every layer in it, so two branches tied by `Add` are judged
together, as Torch-Pruning's group importance does.
"""

import keras
import numpy as np


def _per_output_channel(node, p):
    """Norm of each output filter of a Conv/Dense/Depthwise layer."""
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in node.layer.weights}
    axes = node.spec.weights
    if node.kind == "depthwise":  # (..., in, multiplier) -> in*multiplier filters
        name = next(n for n in weights if axes[n].input_axis is not None)
        kernel = np.moveaxis(weights[name], axes[name].input_axis, -2)
        flat = kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
        axis = 0
    else:  # the weight mixing inputs into outputs (kernel, pointwise kernel)
        name = next(n for n in weights
                    if axes[n].input_axis is not None and axes[n].output_axis is not None)
        flat = weights[name]
        axis = axes[name].output_axis % flat.ndim
        flat = np.moveaxis(flat, axis, -1).reshape(-1, flat.shape[axis])
        axis = 0
    if p == 1:
        return np.abs(flat).sum(axis=axis)
    return np.sqrt((flat.astype(np.float64) ** 2).sum(axis=axis))


def consumer_inputs(graph):
    """(node, input-channel weight, its `WeightAxes`) for every channel mixer.

    The first weight with an input axis is the one whose slice scales what
    the layer reads of a channel (the kernel; a separable conv's depthwise
    kernel, whose output feeds the pointwise one).
    """
    out = []
    for node in graph.nodes:
        if node.kind != "mixer" or not node.first_call:
            continue
        layout = node.spec.weights if node.spec is not None else {}
        weights = {w.name: w for w in node.layer.weights}
        for name, axes in layout.items():
            if axes.input_axis is not None and name in weights:
                out.append((node, weights[name], axes))
                break
    return out


def _per_input_channel(weight, axes, p):
    """Sum of |w|^p over the slice of `weight` that reads each input feature."""
    value = keras.ops.convert_to_numpy(weight).astype(np.float64)
    flat = np.moveaxis(value, axes.input_axis, 0).reshape(value.shape[axes.input_axis], -1)
    return (np.abs(flat) ** p).sum(axis=1)


def _scatter(graph, contributions, flat=False):
    """Sums (tensor key, per-channel values) pairs into per-group arrays (or,
    with `flat`, one array in the graph-wide channel numbering)."""
    total = np.zeros(graph.num_channels, dtype=np.float64)
    for key, values in contributions:
        np.add.at(total, graph.channels[key], values)
    if flat:
        return total
    return {g.id: total[g.offset:g.offset + g.size] for g in graph.groups}


def top_channels(scores, k):
    """Indices of the `k` highest `scores`, in ascending order.

    Ties go to the lower index, so the choice is reproducible.

    Example:

    ```python
    from tfprune.ranking.importance import magnitude, top_channels
    graph = tfprune.analyze(model)
    group = graph.group_of("conv3")
    keep = top_channels(magnitude(graph)[group.id], 8)
    ```
    """
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])


def magnitude(graph, p=1):
    """L1 (p=1) or L2 (p=2) norm of the filters producing each channel.

    Args:
        graph: a `ChannelGraph`.
        p: 1 or 2.

    Returns:
        dict group id -> array of scores, summed over the group's producers
        (Conv, Dense, Depthwise, ...).

    Example:

    ```python
    scores = tfprune.ranking.importance.magnitude(tfprune.analyze(model), p=1)
    ```
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}.")
    contributions = [
        (node.outputs[0], _per_output_channel(node, p))
        for node in graph.nodes
        if node.first_call and node.kind in ("mixer", "depthwise")
    ]
    return _scatter(graph, contributions)


def group_magnitude(graph, p=1):
    """L1 or L2 norm of every weight slice that writes or reads each channel.

    Where `magnitude` looks only at the filters producing a channel, this
    also counts the consumers' input slices (how strongly the next layers
    use the channel) and |gamma| of BatchNormalization: behind a
    BatchNormalization a filter's own scale is normalised away, so the
    reading side is what tells an idle channel from a used one. The
    contributions are summed over the group, as Torch-Pruning's group
    magnitude importance does (up to a factor common to the group).

    Args:
        graph: a `ChannelGraph`.
        p: 1 or 2.

    Returns:
        dict group id -> array of scores.

    Example:

    ```python
    graph = tfprune.analyze(model)
    scores = tfprune.ranking.importance.group_magnitude(graph, p=1)
    plan = tfprune.ranking.fit.fit_plan(graph, scores, tfprune.Budget(macs=0.5))
    ```
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}.")
    consumed = np.zeros(graph.num_channels, dtype=np.float64)
    for node, weight, axes in consumer_inputs(graph):
        powers, chans = _per_input_channel(weight, axes, p), graph.channels[node.inputs[0]]
        # a grouped conv reads only its group's channels: no per-channel slice
        if len(powers) != len(chans):
            continue
        # one norm per layer and channel (a Dense after Flatten reads a
        # channel at every position: one slice)
        per_layer = np.zeros(graph.num_channels, dtype=np.float64)
        np.add.at(per_layer, chans, powers)
        consumed += per_layer ** (1.0 / p)
    # gamma is a one-element slice per channel: its L1 and L2 norms are |gamma|
    consumed += _scatter(graph, [(key, np.abs(gamma)) for key, gamma in _bn_gammas(graph)],
                         flat=True)
    produced = magnitude(graph, p)
    return {g.id: produced[g.id] + consumed[g.offset:g.offset + g.size]
            for g in graph.groups}


def _bn_gammas(graph):
    """(input tensor key, gamma) of every BatchNormalization with a scale."""
    out = []
    for node in graph.nodes:
        if node.first_call and node.class_name == "BatchNormalization" and node.kind == "channelwise":
            gamma = [w for w in node.layer.weights if w.name == "gamma"]
            if gamma:
                out.append((node.inputs[0], keras.ops.convert_to_numpy(gamma[0])))
    return out


def bn_scale(graph):
    """|gamma| of the BatchNormalization layers in each group (Liu et al. 2017).

    Channels of groups without BatchNormalization score 0 plus their L1 norm
    scaled down by 1e-6, so they still rank by magnitude among themselves.
    """
    scores = _scatter(graph, [(key, np.abs(gamma)) for key, gamma in _bn_gammas(graph)])
    fallback = magnitude(graph, p=1)
    return {gid: s + 1e-6 * fallback[gid] for gid, s in scores.items()}


CRITERIA = {
    "l1": lambda graph: magnitude(graph, p=1),
    "l2": lambda graph: magnitude(graph, p=2),
    "bn": bn_scale,
    "group_l1": lambda graph: group_magnitude(graph, p=1),
    "group_l2": lambda graph: group_magnitude(graph, p=2),
}
