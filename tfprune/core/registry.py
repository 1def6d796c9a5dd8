"""The layer registry: the one place a layer kind is described.

For every layer class tfprune can prune through, a `LayerSpec` says how the
layer treats channels (its kind), where its output width is configured,
which axis of which weight holds its input and output channels, and what it
costs. The graph, the cost model, the rebuilder, group lasso, importance
criteria and the genetic search's re-fit all read this table. Built-in Keras
layers are registered in `tfprune/core/builtin_layers.py` through the same
`register_layer` a user calls for their own layer.

Kinds:

- "mixer": reads the input channels and writes new ones (Conv, Dense). The
  output width is the config entry `width_key`; the layer's output channels
  form a new group.
- "elementwise": output channel i depends on input channel i only, through
  per-channel weights or none (BatchNorm, activations, pooling).
- "depthwise": each input channel gives `multiplier_key` output channels
  (DepthwiseConv).

Example:

```python
@keras.saving.register_keras_serializable("my_package")
class MyDense(keras.layers.Layer):
    ...  # holds `kernel` (in, units) and `bias` (units,), config key "units"

tfprune.register_layer(MyDense, tfprune.LayerSpec(
    kind="mixer", width_key="units",
    weights={"kernel": {"in": 0, "out": 1}, "bias": {"out": 0}}))
```
"""

import dataclasses
import math

import numpy as np

KINDS = ("mixer", "elementwise", "depthwise")

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class WeightAxes:
    """Channel axes of one weight.

    Attributes:
        input_axis: axis indexed by the layer's input channels, or None.
        output_axis: axis indexed by the layer's output channels, or None.
        repeat: the input axis holds each input channel `repeat` times in a
            row (SeparableConv's pointwise kernel after a depth multiplier):
            an int, or the name of the config entry holding it.
    """

    input_axis: int = None
    output_axis: int = None
    repeat: object = 1

    def repeat_for(self, config):
        """The repeat of the input axis for a layer with `config`."""
        if isinstance(self.repeat, str):
            return int(config.get(self.repeat, 1) or 1)
        return int(self.repeat)


def kernel_elements(config, key="kernel_size"):
    """Number of kernel positions: the product of `config[key]` (1 if absent)."""
    size = config.get(key) if key else None
    if size is None:
        return 1
    if isinstance(size, int):
        return size
    return math.prod(size)


def default_macs(spec):
    """MACs per position: kernel elements x kept inputs x kept outputs."""

    def macs(config, cin, cout):
        per_position = kernel_elements(config, spec.kernel_size_key) * cin * cout
        groups = int(config.get(spec.groups_key, 1) or 1) if spec.groups_key else 1
        # Grouped convs keep their channels, so the counts are ints here.
        return per_position // groups if groups > 1 else per_position

    return macs


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How one layer class treats channels.

    Args:
        kind: "mixer", "elementwise" or "depthwise" (see the module doc).
        width_key: config entry holding the output width (a mixer's
            "filters" or "units"); the rebuilder writes the kept width there.
        weights: dict weight name (as in `layer.weights[i].name`) -> dict
            with optional "in" (axis of the input channels), "out" (axis of
            the output channels) and "repeat" (the input axis holds each
            input channel that many times in a row; an int or a config key
            such as "depth_multiplier"). A weight with neither axis is
            copied whole. A layer holding a weight not listed here is kept
            whole (a barrier), never sliced wrongly.
        macs: function (config, kept inputs, kept outputs) -> MACs per
            position (counts may be ints or soft `keras.ops` tensors).
            Default for mixers: kernel elements x in x out (divided by
            `groups`); depthwise: kernel elements x out; elementwise: 0.
        positions: "output" (MACs are per output position, the default) or
            "input" (per input position, as for a transposed convolution).
        params: function (config, kept inputs, kept outputs) -> parameter
            count; default: every weight's size with its channel axes
            scaled to the kept counts.
        multiplier_key: config entry holding a depthwise layer's channel
            multiplier (default "depth_multiplier").
        groups_key: config entry holding a grouped convolution's groups
            (its channels are then kept whole), or None.
        kernel_size_key: config entry holding the kernel size, or None.
        kernel_axes: axes of the kernel weight that are spatial (for
            kernel-size pruning), e.g. (0, 1) for a Conv2D kernel.
        spatial_kernel: name of the weight whose leading `kernel_axes`
            are the kernel taps ("kernel" for Conv, "depthwise_kernel" for
            SeparableConv), when the layer's kernel size can be pruned:
            a plan may then shrink it by whole rings (`ChannelGraph.plan(
            kernels=...)`, `tfprune.methods.smof`), and `rebuild` keeps the centre
            taps. The layer must be a convolution in the Keras sense: its
            config holds `kernel_size_key`, "strides", "dilation_rate" and
            "padding" ("same", "valid" or "causal") with the usual meaning.
            None (the default): the kernel size is never changed.
        check: function (config, input rank) -> "" when the layer can be
            pruned through with this config, else the reason it cannot
            (then it is a barrier).
        refit: how its weight named "kernel", laid out (..., in, out), can
            be re-fitted by least squares (the genetic search): "dense"
            (output = input @ kernel along the last axis), "conv" (a plain
            convolution with `strides`/`padding`/`dilation_rate`), or None.
        fold: for a layer that a method inserts while it trains (a channel
            gate, a kernel mask): function (model) -> a model without any
            layer of this class that computes the same function, the
            layers' factors folded into the neighbouring weights.
            `tfprune.rebuild` and `tfprune.core.rebuild.zero_out` call it before they
            slice, so a model carrying such layers is rebuilt like any
            other. None (the default): the layer stays in the model.

    Example:

    ```python
    spec = tfprune.LayerSpec(
        kind="mixer", width_key="units",
        weights={"kernel": {"in": -2, "out": -1}, "bias": {"out": 0}})
    ```
    """

    kind: str
    width_key: str = None
    weights: dict = dataclasses.field(default_factory=dict)
    macs: object = None
    positions: str = "output"
    params: object = None
    multiplier_key: str = "depth_multiplier"
    groups_key: str = None
    kernel_size_key: str = None
    kernel_axes: tuple = ()
    spatial_kernel: str = None
    check: object = None
    refit: str = None
    fold: object = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown layer kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.kind == "mixer" and not self.width_key:
            raise ValueError(
                "a 'mixer' spec needs width_key, the config entry holding the "
                "output width (e.g. 'filters' or 'units').")
        if self.positions not in ("output", "input"):
            raise ValueError(
                f"positions must be 'output' or 'input', got {self.positions!r}.")
        if self.refit not in (None, "dense", "conv"):
            raise ValueError(f"refit must be None, 'dense' or 'conv', got {self.refit!r}.")
        for name, value in (("macs", self.macs), ("params", self.params),
                            ("check", self.check), ("fold", self.fold)):
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be a function, got {value!r}.")
        if self.spatial_kernel is not None and not (
                self.kernel_size_key and self.kernel_axes
                and tuple(self.kernel_axes) == tuple(range(len(self.kernel_axes)))):
            raise ValueError(
                f"spatial_kernel={self.spatial_kernel!r} needs kernel_size_key (the "
                "config entry holding the kernel size) and kernel_axes, the leading "
                "axes of that weight, e.g. (0, 1) for a 2-D kernel.")
        if not isinstance(self.weights, dict):
            raise ValueError("weights must be a dict weight name -> {'in': axis, 'out': axis}.")
        axes = {}
        for name, entry in self.weights.items():
            if isinstance(entry, WeightAxes):
                axes[name] = entry
                continue
            if not isinstance(entry, dict) or set(entry) - {"in", "out", "repeat"}:
                raise ValueError(
                    f"weight '{name}': expected a dict with keys 'in', 'out' "
                    f"and/or 'repeat', got {entry!r}.")
            for key in ("in", "out"):
                if entry.get(key) is not None and not isinstance(entry[key], int):
                    raise ValueError(f"weight '{name}': axis {key!r} must be an int, "
                                     f"got {entry[key]!r}.")
            if self.kind == "elementwise" and entry.get("in") is not None \
                    and entry.get("out") is not None:
                raise ValueError(
                    f"weight '{name}': an elementwise layer's weights are indexed by "
                    "its channels once; give 'in' only.")
            axes[name] = WeightAxes(entry.get("in"), entry.get("out"),
                                    entry.get("repeat", 1))
        if self.spatial_kernel is not None and self.spatial_kernel not in axes:
            raise ValueError(
                f"spatial_kernel {self.spatial_kernel!r} is not one of the spec's "
                f"weights ({', '.join(axes) or 'none'}).")
        object.__setattr__(self, "weights", axes)

    def macs_per_position(self, config, cin, cout):
        """MACs per position (see `positions`) for the kept counts."""
        if self.macs is not None:
            return self.macs(config, cin, cout)
        if self.kind == "mixer":
            return default_macs(self)(config, cin, cout)
        if self.kind == "depthwise":
            return kernel_elements(config, self.kernel_size_key) * cout
        return 0

    def repeat_for(self, config):
        """Output channels per input channel of a depthwise layer."""
        if self.kind != "depthwise":
            return 1
        return int(config.get(self.multiplier_key, 1) or 1)

    def unknown_weights(self, layer):
        """Names of `layer`'s weights that this spec does not describe."""
        return [w.name for w in layer.weights if w.name not in self.weights]

    def validate(self, layer):
        """Checks the weight axes against a built `layer`'s weights.

        Raises:
            ValueError: an axis is out of range for its weight.
        """
        for w in getattr(layer, "weights", []):
            axes = self.weights.get(w.name)
            if axes is None:
                continue
            rank = len(w.shape)
            for side, axis in (("in", axes.input_axis), ("out", axes.output_axis)):
                if axis is not None and not -rank <= axis < rank:
                    raise ValueError(
                        f"{type(layer).__name__} '{layer.name}': weight '{w.name}' "
                        f"has rank {rank}, so axis {side}={axis} is out of range.")


def register_layer(layer_class, spec):
    """Tells tfprune how `layer_class` treats channels, so it can prune it.

    A registered layer is analysed, costed, rebuilt (its width config entry
    edited and its weights sliced along the spec's axes) and scored exactly
    like a built-in one. Registering a class again replaces its spec.
    The class must also be serialisable by Keras
    (`@keras.saving.register_keras_serializable`) for `rebuild` to re-create
    it from its config.

    Args:
        layer_class: a `keras.layers.Layer` subclass. Only this exact class
            is matched (subclasses need their own spec: they may treat
            channels differently).
        spec: a `LayerSpec`.

    Returns:
        `layer_class`.

    Raises:
        ValueError: `spec` is not a `LayerSpec`, or it contradicts itself.

    Example:

    ```python
    @keras.saving.register_keras_serializable("my_package")
    class MyDense(keras.layers.Layer):
        ...  # holds `kernel` (in, units) and `bias` (units,), config key "units"

    tfprune.register_layer(MyDense, tfprune.LayerSpec(
        kind="mixer", width_key="units",
        weights={"kernel": {"in": 0, "out": 1}, "bias": {"out": 0}}))
    ```
    """
    if not isinstance(layer_class, type):
        raise ValueError(f"register_layer expects a layer class, got {layer_class!r}.")
    if not isinstance(spec, LayerSpec):
        raise ValueError(
            f"register_layer expects a tfprune.LayerSpec for {layer_class.__name__}, "
            f"got {type(spec).__name__}.")
    _REGISTRY[layer_class] = spec
    return layer_class


def spec_for(layer):
    """The `LayerSpec` registered for `layer`'s class (or a class), or None."""
    cls = layer if isinstance(layer, type) else type(layer)
    return _REGISTRY.get(cls)


def registered_layers():
    """Dict layer class -> `LayerSpec` of every registered layer."""
    return dict(_REGISTRY)


def normalized_axes(axis, rank):
    """The set of non-negative axes named by a config's `axis` (int or list)."""
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return {a % rank if rank else a for a in axes}


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


def slice_weight(value, axes, in_mask, out_mask, repeat=1):
    """Keeps the entries of `value` for the kept input/output channels.

    Args:
        value: the weight as a NumPy array.
        axes: its `WeightAxes`.
        in_mask, out_mask: bool masks over the layer's input and output
            channels (None: keep that side whole).
        repeat: the input axis repeat (`axes.repeat_for(config)`).
    """
    if axes.input_axis is not None and in_mask is not None:
        mask = _along(value, _expand(in_mask, repeat), axes.input_axis)
        if mask is not None:
            value = np.compress(mask, value, axis=axes.input_axis)
    if axes.output_axis is not None and out_mask is not None:
        mask = _along(value, out_mask, axes.output_axis)
        if mask is not None:
            value = np.compress(mask, value, axis=axes.output_axis)
    return value


def zero_inputs(value, axes, in_mask, out_mask, repeat=1):
    """Zeroes the entries of a channel-mixing weight for removed inputs.

    `out_mask` is unused: outputs keep their place (same signature as
    `slice_weight`, so both can drive the same weight copy).
    """
    if axes.input_axis is None or axes.output_axis is None or in_mask is None:
        return value
    mask = _along(value, _expand(in_mask, repeat), axes.input_axis)
    if mask is None:
        return value
    value = value.copy()
    index = [slice(None)] * value.ndim
    index[axes.input_axis] = ~mask
    value[tuple(index)] = 0
    return value
