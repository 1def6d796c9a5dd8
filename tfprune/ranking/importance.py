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


def _scatter(graph, contributions):
    """Sums (tensor key, per-channel values) pairs into per-group arrays."""
    total = np.zeros(graph.num_channels, dtype=np.float64)
    for key, values in contributions:
        np.add.at(total, graph.channels[key], values)
    return {g.id: total[g.offset:g.offset + g.size] for g in graph.groups}


def top_channels(scores, k):
    """Indices of the `k` highest `scores`, in ascending order.

    Ties go to the lower index, so the choice is reproducible.

    Example:

    ```python
    keep = top_channels(tfprune.importance.magnitude(graph)[group.id], 8)
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
    scores = tfprune.importance.magnitude(tfprune.analyze(model), p=1)
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


def bn_scale(graph):
    """|gamma| of the BatchNormalization layers in each group (Liu et al. 2017).

    Channels of groups without BatchNormalization score 0 plus their L1 norm
    scaled down by 1e-6, so they still rank by magnitude among themselves.
    """
    contributions = []
    for node in graph.nodes:
        if node.first_call and node.class_name == "BatchNormalization" and node.kind == "channelwise":
            gamma = [w for w in node.layer.weights if w.name == "gamma"]
            if gamma:
                contributions.append((node.inputs[0],
                                      np.abs(keras.ops.convert_to_numpy(gamma[0]))))
    scores = _scatter(graph, contributions)
    fallback = magnitude(graph, p=1)
    return {gid: s + 1e-6 * fallback[gid] for gid, s in scores.items()}


CRITERIA = {
    "l1": lambda graph: magnitude(graph, p=1),
    "l2": lambda graph: magnitude(graph, p=2),
    "bn": bn_scale,
}
