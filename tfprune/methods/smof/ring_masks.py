"""Kernel-ring masks: the layer SMOF trains, and folding it back into weights.

A `KernelRingMask` wraps one convolution and multiplies each ring of its
kernel (the taps at Chebyshev distance j from the centre, j >= 1) by a
trainable factor in [0, 1]; the centre tap is never masked. Removing every
ring beyond radius j leaves a centred (2j+1)-wide kernel (never wider than
the original along an axis), which `tfprune.rebuild` realises as a smaller
convolution.

`KernelRingMask` is registered with a `LayerSpec` whose `fold` hook is
`unwrap_kernel_masks`, so `tfprune.rebuild` multiplies each kernel by its
ring factors before it slices.
"""

import copy

import keras
import numpy as np

from tfprune.core.configs import copy_weights_by_name, functional_serialized
from tfprune.core.kernels import spatial_kernel
from tfprune.core.registry import LayerSpec, register_layer

KERNEL_MASK = "KernelRingMask"

L = keras.layers
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_CONV = (L.Conv1D, L.Conv2D)


def maskable(layer):
    """Whether a `KernelRingMask` can wrap `layer`: its `LayerSpec` names a
    `spatial_kernel` and it is a Keras Conv1D/2D, DepthwiseConv1D/2D or
    SeparableConv1D/2D (or a subclass), whose forward pass the mask
    re-computes with the masked kernel."""
    return spatial_kernel(layer) is not None and isinstance(
        layer, _SEPARABLE + _DEPTHWISE + _CONV)


def ring_index(kernel_size):
    """Int array over the kernel's taps: each tap's ring (0 = centre)."""
    grids = np.meshgrid(*[np.abs(np.arange(k) - (k - 1) // 2) for k in kernel_size],
                        indexing="ij")
    return np.max(np.stack(grids), axis=0)


def num_rings(kernel_size):
    return int(ring_index(kernel_size).max())


def size_for_radius(kernel_size, radius):
    """Kernel size after removing every ring beyond `radius`."""
    return tuple(min(k, 2 * int(radius) + 1) for k in kernel_size)


@keras.saving.register_keras_serializable(package="tfprune")
class KernelRingMask(keras.layers.Wrapper):
    """A convolution whose kernel rings are scaled by trainable factors.

    Wraps a `Conv1D`, `Conv2D`, `DepthwiseConv1D`, `DepthwiseConv2D`,
    `SeparableConv1D` or `SeparableConv2D` (its depthwise kernel) with
    `same` or `valid` padding. Factors start at `initial_value` and are
    clipped to [0, 1]; `rings[j-1]` scales ring j.

    Args:
        layer: the convolution to wrap (keeps its weights).
        initial_value: starting value of every ring factor.
        **kwargs: base layer arguments (name, dtype, trainable).

    Example:

    ```python
    inputs = keras.Input((12, 12, 1))
    conv = keras.layers.Conv2D(16, 3, padding="same")
    h = tfprune.methods.smof.KernelRingMask(conv, name="conv")(inputs)
    ```
    """

    def __init__(self, layer, initial_value=1.0, **kwargs):
        super().__init__(layer, **kwargs)
        if not maskable(layer):
            raise ValueError(
                f"KernelRingMask wraps a Conv1D/2D, DepthwiseConv1D/2D or "
                f"SeparableConv1D/2D whose LayerSpec names a spatial_kernel; got "
                f"{type(layer).__name__} ('{layer.name}').")
        if layer.padding not in ("same", "valid"):
            raise ValueError(
                f"KernelRingMask: layer '{layer.name}' has padding '{layer.padding}'; "
                "only 'same' and 'valid' are supported.")
        self.initial_value = float(initial_value)
        self.kernel_name = spatial_kernel(layer)
        self._taps = ring_index(tuple(layer.kernel_size))

    def build(self, input_shape):
        super().build(input_shape)
        self.rings = self.add_weight(
            name="rings", shape=(max(num_rings(self._taps.shape), 0),),
            initializer=keras.initializers.Constant(self.initial_value),
            constraint=lambda r: keras.ops.clip(r, 0.0, 1.0), trainable=True)

    def tap_mask(self):
        """The factor of every kernel tap, shaped like the spatial kernel."""
        one = keras.ops.ones((1,), dtype=self.rings.dtype)
        factors = keras.ops.concatenate([one, keras.ops.convert_to_tensor(self.rings)])
        return keras.ops.take(factors, self._taps)

    def call(self, inputs):
        layer = self.layer
        mask = self.tap_mask()
        mask = keras.ops.reshape(mask, tuple(self._taps.shape) + (1, 1))
        kernel = getattr(layer, self.kernel_name)
        kernel = kernel * keras.ops.cast(mask, kernel.dtype)
        if isinstance(layer, _SEPARABLE):
            out = keras.ops.separable_conv(
                inputs, kernel, layer.pointwise_kernel, strides=layer.strides,
                padding=layer.padding, dilation_rate=layer.dilation_rate,
                data_format=layer.data_format)
        elif isinstance(layer, _DEPTHWISE):
            out = keras.ops.depthwise_conv(
                inputs, kernel, strides=layer.strides, padding=layer.padding,
                dilation_rate=layer.dilation_rate, data_format=layer.data_format)
        else:
            out = layer.convolution_op(inputs, kernel)
        if layer.use_bias:
            out = out + keras.ops.reshape(layer.bias, (-1,))
        if layer.activation is not None:
            out = layer.activation(out)
        return out

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "initial_value": self.initial_value}


def unwrap_kernel_masks(model, fold=True):
    """The model with each `KernelRingMask` replaced by its convolution.

    Args:
        model: a functional model (or subclass) with `KernelRingMask` layers.
        fold: multiply each kernel by its ring factors (the result computes
            what `model` computes); False copies the kernels unmasked.

    Returns:
        A plain functional `keras.Model` with the convolutions under the
        wrappers' names, or `model` itself when it has no masks.
    """
    masks = [layer for layer in model.layers if type(layer).__name__ == KERNEL_MASK]
    if not masks:
        return model
    serialized = functional_serialized(model)
    for entry in serialized["config"]["layers"]:
        if entry["class_name"] != KERNEL_MASK:
            continue
        inner = copy.deepcopy(entry["config"]["layer"])
        name = entry["config"]["name"]
        inner["config"]["name"] = name
        inner["name"] = name
        inner["inbound_nodes"] = entry["inbound_nodes"]
        inner.pop("build_config", None)
        entry.clear()
        entry.update(inner)
    plain = keras.saving.deserialize_keras_object(serialized)
    names = {m.name for m in masks}
    copy_weights_by_name(model, plain, skip=names)
    for mask in masks:
        values = {w.name: keras.ops.convert_to_numpy(w) for w in mask.layer.weights}
        if fold:
            taps = keras.ops.convert_to_numpy(mask.tap_mask())
            kernel = values[mask.kernel_name]
            values[mask.kernel_name] = kernel * taps.reshape(taps.shape + (1, 1))
        for w in plain.get_layer(mask.name).weights:
            w.assign(values[w.name])
    return plain


register_layer(KernelRingMask, LayerSpec(
    kind="elementwise", fold=unwrap_kernel_masks,
    check=lambda config, rank: (
        "a SMOF kernel-ring mask (tfprune.methods.smof); tfprune.rebuild folds "
        "it into its convolution")))
