"""Kernel-size pruning: smaller, centred kernels with unchanged output shapes.

A plan may shrink a convolution's kernel by whole rings (3x3 -> 1x1,
5x5 -> 3x3, ...), keeping the centre taps. This module holds everything
that depends on it: checking the requested sizes, the padding arithmetic
that keeps every output shape and value, the config edit and the kernel
slicing the rebuilder applies.

Geometry. Along one spatial axis, with kernel size k, dilation d and
stride s, a kernel that keeps taps r .. k-r-1 reads the same input
positions as the original reads with those taps, shifted by d*r. So the
smaller kernel equals the original with its outer ring zeroed if its input
is padded by `(left - d*r, right - d*r)` (a negative amount is a crop),
where `(left, right)` is the original padding:

- `valid`: (0, 0), so the input is cropped by d*r on each side;
- `causal` (Conv1D): (d*(k-1), 0);
- `same`: TF pads `total = max((ceil(n/s) - 1)*s + d*(k-1) + 1 - n, 0)`
  split `(total // 2, total - total // 2)`. With the smaller kernel the
  total drops by exactly 2*d*r (same parity, same split) whenever the new
  extent d*(k'-1)+1 is at least the stride, so `same` stays `same`;
  otherwise (a strided conv shrunk to 1x1, say) the split depends on n mod
  s and the layer becomes `valid` behind explicit crop/pad layers.

When the layer keeps its padding mode only `kernel_size` changes; else its
padding becomes `valid` and a `Cropping{1,2}D` and/or `ZeroPadding{1,2}D`
layer named `<conv>_kcrop` / `<conv>_kpad` is inserted in front of it.
"""

import copy

import keras
import numpy as np

from tfprune.core.configs import containers, entry_name, layer_entries, unique_name
from tfprune.core.registry import registered_layers, spec_for
from tfprune.errors import InvalidPlanError


def spatial_kernel(layer):
    """Name of the weight holding the prunable spatial kernel of `layer` (a
    layer, a layer class or a graph node), from its `LayerSpec`'s
    `spatial_kernel`; None when its kernel size cannot be pruned."""
    if isinstance(layer, type) or isinstance(layer, keras.layers.Layer):
        spec = spec_for(layer)
    else:  # a graph node
        spec = layer.spec
    return spec.spatial_kernel if spec is not None else None


def _shrinkable_classes():
    return sorted(cls.__name__ for cls, spec in registered_layers().items()
                  if spec.spatial_kernel)


def _tuple(value, rank):
    if isinstance(value, int):
        return (value,) * rank
    return tuple(int(v) for v in value)


def geometry(config, key="kernel_size"):
    """(kernel size, strides, dilation, padding) of a conv config, as tuples;
    `key` is the config entry holding the kernel size."""
    kernel = tuple(int(k) for k in _as_list(config[key]))
    rank = len(kernel)
    return (kernel, _tuple(config.get("strides", 1), rank),
            _tuple(config.get("dilation_rate", 1), rank), config.get("padding", "valid"))


def _as_list(value):
    return [value] if isinstance(value, int) else list(value)


def _spatial(shape, rank):
    return tuple(shape[1:1 + rank]) if shape is not None else (None,) * rank


def axis_pads(padding, n, k, k_new, s, d):
    """Input (left, right) padding that makes a `valid` conv with the centred
    `k_new` taps compute what the original computes with its ring zeroed.

    Args:
        padding: the original mode, "valid", "same" or "causal".
        n: input length along the axis (may be None unless needed).
        k, k_new: original and new kernel size.
        s, d: stride and dilation.

    Returns:
        (left, right); negative values are crops.
    """
    extent = d * (k - 1) + 1
    shift = d * (k - k_new) // 2
    if padding == "valid":
        left = right = 0
    elif padding == "causal":
        left, right = extent - 1, 0
    else:
        out = -(-n // s)
        total = max((out - 1) * s + extent - n, 0)
        left, right = total // 2, total - total // 2
    return left - shift, right - shift


def resize(node, graph, size):
    """How a conv becomes one with kernel `size`.

    Returns:
        (padding mode, pads): pads is None when the layer keeps its padding
        mode, else a list of (left, right) per spatial axis (negative:
        crop) in front of a `valid` conv.
    """
    kernel, strides, dilation, padding = geometry(node.config, node.spec.kernel_size_key)
    if all(a == b for a, b in zip(kernel, size)):
        return padding, None
    if padding == "same" and all(
            kn == k or d * (kn - 1) + 1 >= s
            for k, kn, s, d in zip(kernel, size, strides, dilation)):
        return "same", None
    lengths = _spatial(graph.shapes.get(node.inputs[0]), len(kernel))
    if padding == "same" and None in lengths:
        raise InvalidPlanError(
            f"layer '{node.name}': a {size} kernel at stride {strides} with 'same' "
            "padding needs the input's spatial size, which the model leaves "
            "undefined; give the model a fixed input size or a larger kernel.")
    pads = [axis_pads(padding, n, k, kn, s, d)
            for n, k, kn, s, d in zip(lengths, kernel, size, strides, dilation)]
    return "valid", pads


def check_kernels(graph, kernels):
    """Validated kernel sizes: dict layer name -> tuple, changed ones only.

    Args:
        graph: the `ChannelGraph`.
        kernels: dict layer name (or nested path) -> kernel size (int or
            tuple); each size odd, positive and not larger than the layer's.

    Raises:
        InvalidPlanError: naming the layer and what is wrong.
    """
    out = {}
    for name, size in (kernels or {}).items():
        try:
            node = graph.node(name)
        except KeyError as e:
            raise InvalidPlanError(f"kernel plan: {e.args[0]}") from None
        if spatial_kernel(node) is None:
            raise InvalidPlanError(
                f"kernel plan: layer '{name}' is a {node.class_name}, whose kernel size "
                f"cannot be pruned; only {', '.join(_shrinkable_classes())} kernels "
                "(layers whose LayerSpec names a spatial_kernel) can be shrunk.")
        kernel, _, _, padding = geometry(node.config, node.spec.kernel_size_key)
        try:
            size = _tuple(size, len(kernel))
        except (TypeError, ValueError):
            raise InvalidPlanError(
                f"kernel plan: layer '{name}': kernel size {size!r} is not an int "
                "or a tuple of ints.") from None
        if len(size) != len(kernel):
            raise InvalidPlanError(
                f"kernel plan: layer '{name}' has a {len(kernel)}-D kernel "
                f"{kernel}; got {size} ({len(size)} sizes).")
        if size == kernel:
            continue
        for k, kn in zip(kernel, size):
            if kn < 1 or kn % 2 == 0 or kn > k or (k - kn) % 2:
                raise InvalidPlanError(
                    f"kernel plan: layer '{name}' has kernel {kernel}; {size} is "
                    "not a centred sub-kernel (each size odd, at least 1 and at "
                    "most the original, shrunk by whole rings).")
        if node.config.get("data_format", "channels_last") != "channels_last":
            raise InvalidPlanError(
                f"kernel plan: layer '{name}' is channels_first; kernel sizes "
                "are only changed on channels_last layers.")
        if padding not in ("valid", "same", "causal"):
            raise InvalidPlanError(
                f"kernel plan: layer '{name}' has padding '{padding}'.")
        calls = sum(1 for n in graph.nodes if n.path == node.path)
        if calls > 1:
            raise InvalidPlanError(
                f"kernel plan: layer '{name}' is called {calls} times; shrink the "
                "kernel of a layer called once.")
        resize(node, graph, size)  # raises if the padding cannot be derived
        out[node.name] = size
    return out


def kernel_config(config, size, key="kernel_size"):
    """A copy of a layer config with kernel size `size` in entry `key` (for
    the cost model; `size` may hold soft counts, e.g. tensors)."""
    return {**config, key: tuple(size)}


def centre_slices(kernel, size):
    return tuple(slice((k - kn) // 2, (k - kn) // 2 + kn) for k, kn in zip(kernel, size))


def slice_kernel(value, size):
    """The centre `size` taps of a kernel weight (spatial axes first)."""
    return np.asarray(value)[centre_slices(value.shape[:len(size)], size)]


def zero_ring(value, size):
    """A copy of a kernel weight with every tap outside the centre zeroed."""
    value = np.asarray(value)
    out = np.zeros_like(value)
    index = centre_slices(value.shape[:len(size)], size)
    out[index] = value[index]
    return out


def kernel_op(kernels, op):
    """`op` (slice_kernel or zero_ring) applied to the kernel weight of
    every layer of `kernels`: a function (node, {weight name: value}) -> dict."""
    def apply(node, values):
        size = kernels.get(node.name)
        if size is None:
            return values
        name = spatial_kernel(node)
        return {**values, name: op(values[name], size)}
    return apply


def _layer_entry(layer, name, dtype):
    entry = keras.saving.serialize_keras_object(layer)
    entry["config"]["name"] = name
    entry["name"] = name
    if dtype is not None:
        entry["config"]["dtype"] = copy.deepcopy(dtype)
    return entry


def edit_config(serialized, graph, kernels):
    """Writes the kernel sizes of `kernels` into a serialised model, in place.

    Sets `kernel_size` (and `padding` where it must change) and inserts the
    crop/pad layers that keep the output shape and values.
    """
    if not kernels:
        return serialized
    nodes = {n.path: n for n in graph.nodes if n.name in kernels}
    root = serialized["config"]
    taken = {entry_name(e) for _, e in layer_entries(root)}
    top_sequential = serialized.get("class_name") == "Sequential"
    for prefix, config, sequential in containers(root, sequential=top_sequential):
        entries = config.get("layers", [])
        for entry in list(entries):
            node = nodes.get(prefix + (entry_name(entry),))
            if node is None:
                continue
            size = kernels[node.name]
            mode, pads = resize(node, graph, size)
            cfg = entry["config"]
            cfg[node.spec.kernel_size_key] = list(size)
            cfg["padding"] = mode
            if pads is None:
                continue
            new = _pad_layers(node.name, pads, cfg.get("dtype"), taken)
            at = entries.index(entry)
            if not sequential:
                source = entry["inbound_nodes"][0]["args"][0]
                for layer_entry in new:
                    layer_entry["inbound_nodes"] = [
                        {"args": [copy.deepcopy(source)], "kwargs": {}}]
                    source = copy.deepcopy(source)
                    source["config"]["keras_history"] = [layer_entry["name"], 0, 0]
                call = entry["inbound_nodes"][0]
                call["args"] = [source] + list(call["args"][1:])
            entries[at:at] = new
    return serialized


def _pad_layers(name, pads, dtype, taken):
    rank = len(pads)
    crops = [(max(-a, 0), max(-b, 0)) for a, b in pads]
    adds = [(max(a, 0), max(b, 0)) for a, b in pads]
    out = []
    if any(a or b for a, b in crops):
        arg = crops[0] if rank == 1 else tuple(crops)
        cls = keras.layers.Cropping1D if rank == 1 else keras.layers.Cropping2D
        crop = unique_name(f"{name.split('/')[-1]}_kcrop", taken)
        taken.add(crop)
        out.append(_layer_entry(cls(arg), crop, dtype))
    if any(a or b for a, b in adds):
        arg = adds[0] if rank == 1 else tuple(adds)
        cls = keras.layers.ZeroPadding1D if rank == 1 else keras.layers.ZeroPadding2D
        pad = unique_name(f"{name.split('/')[-1]}_kpad", taken)
        taken.add(pad)
        out.append(_layer_entry(cls(arg), pad, dtype))
    return out
