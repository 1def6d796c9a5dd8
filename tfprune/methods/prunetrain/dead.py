"""Dead channels: those every tied Conv/Dense weight has left at zero."""

import keras
import numpy as np

from tfprune.core.graph import ChannelGraph, analyze
from tfprune.methods.regularizers import channel_slices


def channel_magnitudes(model):
    """Largest |w| among the Conv/Dense weights tied to each channel.

    Args:
        model: a `keras.Model` or its `ChannelGraph`.

    Returns:
        A float array over the graph's channel numbering: for each channel,
        the largest absolute value among the filters (and biases) that
        write it and the kernel slices that read it.
    """
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    peak = np.zeros(graph.num_channels)
    for s in channel_slices(graph):
        value = np.abs(keras.ops.convert_to_numpy(s.variable))
        others = tuple(a for a in range(value.ndim) if a != s.axis)
        np.maximum.at(peak, s.channels, value.max(axis=others) if others else value)
    return peak


def dead_channels(model, threshold=1e-4):
    """Channels whose every tied Conv/Dense weight is below `threshold`.

    Args:
        model: a `keras.Model` or its `ChannelGraph`.
        threshold: the magnitude under which a weight counts as zero.

    Returns:
        A bool array over the graph's channel numbering (True: dead).
    """
    return channel_magnitudes(model) < threshold


def keep_alive(graph, peak, dead):
    """Plan indices: the live channels of each prunable group."""
    keep = {}
    for group in graph.prunable_groups:
        span = slice(group.offset, group.offset + group.size)
        if not dead[span].any():
            continue
        strength = peak[span]
        alive = set(np.flatnonzero(~dead[span]).tolist())
        for part in group.segments:  # every tensor of the group keeps one
            if not alive.intersection(part.tolist()):
                alive.add(int(part[np.argmax(strength[part])]))
        if not alive:  # a whole group died where no branch can go
            alive = {int(np.argmax(strength))}
        keep[group.id] = sorted(alive)
    return keep
