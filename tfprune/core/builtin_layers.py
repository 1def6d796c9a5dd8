"""Specs of the built-in Keras layers, registered like any user layer.

Every Keras layer tfprune prunes through is described here with
`register_layer`, the same public call a user makes for a custom layer.
Importing this module (done by `tfprune.core.graph`) fills the registry.
"""

import keras

from tfprune.core.registry import (
    LayerSpec,
    kernel_elements,
    normalized_axes,
    register_layer,
)

L = keras.layers


def _activation_name(cfg):
    act = cfg.get("activation")
    if isinstance(act, dict):
        act = act.get("config", {}).get("name") or act.get("class_name")
    return str(act).lower() if act else ""


def _channel_axis_only(cfg, rank):
    axis = cfg.get("axis", -1)
    if normalized_axes(axis, rank) != {rank - 1}:
        return f"axis={axis} is not the channel axis"
    return ""


def _normalization_check(cfg, rank):
    reason = _channel_axis_only(cfg, rank)
    if not reason and cfg.get("mean") is not None:
        return "mean/variance are fixed in the config; they are kept whole"
    return reason


def _softmax_check(cfg, rank):
    if (rank - 1) in normalized_axes(cfg.get("axis", -1), rank):
        return "softmax normalises across channels"
    return ""


def _activation_check(cfg, rank):
    if _activation_name(cfg) in ("softmax", "log_softmax"):
        return "softmax normalises across channels"
    return ""


def _layer_norm_check(cfg, rank):
    if (rank - 1) in normalized_axes(cfg.get("axis", -1), rank):
        return ("LayerNormalization normalises across channels; removing "
                "a channel would change every other channel's output")
    return ""


def _rescaling_check(cfg, rank):
    if isinstance(cfg.get("scale"), (list, dict)) or isinstance(
            cfg.get("offset"), (list, dict)):
        return "per-channel scale/offset in the config is kept whole"
    return ""


def _separable_macs(cfg, cin, cout):
    k = kernel_elements(cfg)
    m = int(cfg.get("depth_multiplier", 1))
    return k * cin * m + cin * m * cout


_CONV_WEIGHTS = {"kernel": {"in": -2, "out": -1}, "bias": {"out": 0}}
_TRANSPOSE_WEIGHTS = {"kernel": {"in": -1, "out": -2}, "bias": {"out": 0}}
# The pointwise kernel's input axis holds each input channel
# `depth_multiplier` times in a row.
_SEPARABLE_WEIGHTS = {
    "depthwise_kernel": {"in": -2},
    "pointwise_kernel": {"in": -2, "out": -1, "repeat": "depth_multiplier"},
    "bias": {"out": 0},
}
# Depthwise kernels are (..., in, multiplier): channel c feeds outputs
# c*m .. c*m+m-1, so the input mask is enough to slice the kernel.
_DEPTHWISE_WEIGHTS = {"kernel": {"in": -2}, "bias": {"out": 0}}


def _spatial_axes(rank):
    return tuple(range(rank))


for _cls, _rank in ((L.Conv1D, 1), (L.Conv2D, 2), (L.Conv3D, 3)):
    register_layer(_cls, LayerSpec(
        kind="mixer", width_key="filters", weights=_CONV_WEIGHTS,
        groups_key="groups", kernel_size_key="kernel_size",
        kernel_axes=_spatial_axes(_rank), refit="conv" if _rank < 3 else None,
        # Kernel-size pruning inserts Cropping/ZeroPadding 1D/2D layers.
        spatial_kernel="kernel" if _rank < 3 else None))

for _cls, _rank in ((L.Conv1DTranspose, 1), (L.Conv2DTranspose, 2),
                    (L.Conv3DTranspose, 3)):
    register_layer(_cls, LayerSpec(
        kind="mixer", width_key="filters", weights=_TRANSPOSE_WEIGHTS,
        kernel_size_key="kernel_size", kernel_axes=_spatial_axes(_rank),
        positions="input"))

register_layer(L.Dense, LayerSpec(
    kind="mixer", width_key="units", weights=_CONV_WEIGHTS, refit="dense"))

for _cls, _rank in ((L.SeparableConv1D, 1), (L.SeparableConv2D, 2)):
    register_layer(_cls, LayerSpec(
        kind="mixer", width_key="filters", weights=_SEPARABLE_WEIGHTS,
        macs=_separable_macs, kernel_size_key="kernel_size",
        kernel_axes=_spatial_axes(_rank), spatial_kernel="depthwise_kernel"))

for _cls, _rank in ((L.DepthwiseConv1D, 1), (L.DepthwiseConv2D, 2)):
    register_layer(_cls, LayerSpec(
        kind="depthwise", weights=_DEPTHWISE_WEIGHTS,
        multiplier_key="depth_multiplier", kernel_size_key="kernel_size",
        kernel_axes=_spatial_axes(_rank), spatial_kernel="kernel"))

# Elementwise layers with one weight entry per channel.
register_layer(L.BatchNormalization, LayerSpec(
    kind="elementwise",
    weights={n: {"in": -1} for n in ("gamma", "beta", "moving_mean", "moving_variance")},
    check=_channel_axis_only))
register_layer(L.PReLU, LayerSpec(kind="elementwise", weights={"alpha": {"in": -1}}))
register_layer(L.Normalization, LayerSpec(
    kind="elementwise",
    weights={"mean": {"in": -1}, "variance": {"in": -1}, "count": {}},
    check=_normalization_check))

# Elementwise layers without per-channel weights.
_PLAIN = (
    L.ReLU, L.LeakyReLU, L.ELU, L.Dropout, L.SpatialDropout1D,
    L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout,
    L.AlphaDropout, L.ActivityRegularization, L.Identity,
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
    L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
    L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
    L.Cropping1D, L.Cropping2D, L.Cropping3D,
    L.UpSampling1D, L.UpSampling2D, L.UpSampling3D, L.Resizing,
)
for _cls in _PLAIN:
    register_layer(_cls, LayerSpec(kind="elementwise"))
register_layer(L.Activation, LayerSpec(kind="elementwise", check=_activation_check))
register_layer(L.Softmax, LayerSpec(kind="elementwise", check=_softmax_check))
register_layer(L.Rescaling, LayerSpec(kind="elementwise", check=_rescaling_check))
# Its gamma/beta span the normalised axes, which never include the channel
# axis once the check passes: they are copied whole.
register_layer(L.LayerNormalization, LayerSpec(
    kind="elementwise", weights={"gamma": {}, "beta": {}}, check=_layer_norm_check))
