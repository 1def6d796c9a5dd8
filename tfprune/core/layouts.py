"""Where channels live in each supported layer's weights.

For every layer class tfprune slices, each weight (by its Keras name) lists
the axis indexed by input channels and the axis indexed by output channels.
The rebuilder slices along them, `zero_out` zeroes along the input axis, and
magnitude importance reduces over everything but the output axis.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WeightAxes:
    """Channel axes of one weight.

    Attributes:
        input_axis: axis indexed by the layer's input channels, or None.
        output_axis: axis indexed by the layer's output channels, or None.
        repeat: the input axis holds each input channel `repeat` times in a
            row (SeparableConv's pointwise kernel after a depth multiplier);
            0 means: read it from the layer's `depth_multiplier`.
    """

    input_axis: int = None
    output_axis: int = None
    repeat: int = 1


_CONV = {"kernel": WeightAxes(-2, -1), "bias": WeightAxes(None, 0)}
_TRANSPOSE = {"kernel": WeightAxes(-1, -2), "bias": WeightAxes(None, 0)}
_SEPARABLE = {
    "depthwise_kernel": WeightAxes(-2, None),
    "pointwise_kernel": WeightAxes(-2, -1, repeat=0),
    "bias": WeightAxes(None, 0),
}
# Depthwise kernels are (..., in, multiplier): channel c feeds outputs
# c*m .. c*m+m-1, so the input mask is enough to slice the kernel.
_DEPTHWISE = {"kernel": WeightAxes(-2, None), "bias": WeightAxes(None, 0)}
_PER_CHANNEL = WeightAxes(-1, None)

LAYOUTS = {
    "Conv1D": _CONV, "Conv2D": _CONV, "Conv3D": _CONV, "Dense": _CONV,
    "Conv1DTranspose": _TRANSPOSE, "Conv2DTranspose": _TRANSPOSE,
    "Conv3DTranspose": _TRANSPOSE,
    "SeparableConv1D": _SEPARABLE, "SeparableConv2D": _SEPARABLE,
    "DepthwiseConv1D": _DEPTHWISE, "DepthwiseConv2D": _DEPTHWISE,
    "BatchNormalization": {n: _PER_CHANNEL for n in
                           ("gamma", "beta", "moving_mean", "moving_variance")},
    "PReLU": {"alpha": _PER_CHANNEL},
    "ChannelGate": {"gate": _PER_CHANNEL, "mask": _PER_CHANNEL},
    "Normalization": {"mean": _PER_CHANNEL, "variance": _PER_CHANNEL,
                      "count": WeightAxes()},
}


def unknown_weights(layer, class_name):
    """Names of `layer`'s weights that its layout does not describe."""
    layout = LAYOUTS.get(class_name, {})
    return [w.name for w in layer.weights if w.name not in layout]


def _expand(mask, repeat):
    return np.repeat(mask, repeat) if repeat > 1 else mask


def _along(value, mask, axis):
    """`mask` for `value`'s `axis`, or None when that axis is broadcast."""
    size = value.shape[axis]
    if size == len(mask):
        return mask
    if mask.all():
        return None  # e.g. a grouped conv's kernel: nothing removed
    raise ValueError(
        f"cannot slice an axis of size {size} with a mask over {len(mask)} "
        "channels")


def slice_weight(value, axes, in_mask, out_mask, repeat):
    """Keeps the entries of `value` for the kept input/output channels."""
    if axes.input_axis is not None and in_mask is not None:
        mask = _along(value, _expand(in_mask, repeat if axes.repeat == 0 else 1),
                      axes.input_axis)
        if mask is not None:
            value = np.compress(mask, value, axis=axes.input_axis)
    if axes.output_axis is not None and out_mask is not None:
        mask = _along(value, out_mask, axes.output_axis)
        if mask is not None:
            value = np.compress(mask, value, axis=axes.output_axis)
    return value


def zero_inputs(value, axes, in_mask, out_mask, repeat):
    """Zeroes the entries of a channel-mixing weight for removed inputs.

    `out_mask` is unused: outputs keep their place (same signature as
    `slice_weight`, so both can drive the same weight copy).
    """
    if axes.input_axis is None or axes.output_axis is None or in_mask is None:
        return value
    mask = _along(value, _expand(in_mask, repeat if axes.repeat == 0 else 1),
                  axes.input_axis)
    if mask is None:
        return value
    value = value.copy()
    index = [slice(None)] * value.ndim
    index[axes.input_axis] = ~mask
    value[tuple(index)] = 0
    return value
