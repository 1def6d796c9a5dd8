"""Cost model: parameters and multiply-accumulates (MACs) per layer.

One formula per layer kind, written over the *number of kept channels* of the
tensors a layer reads and writes. Called with exact counts it gives the cost
of a plan (reports, budget checks, search fitness); called with soft counts
(sums of gate values as `keras.ops` tensors) the same formulas are
differentiable, which is how a budget loss can steer training.

Conventions: MACs count the multiply-accumulates of convolutions and dense
layers (the work that dominates inference; BatchNorm folds into the preceding
convolution on export, and activations, pooling and merges are counted as
zero). Params count every weight the rebuilt model holds, trainable or not,
so `cost(model, plan).params == rebuild(model, plan).count_params()`.
"""

import dataclasses
import math

import numpy as np

from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.kernels import kernel_config

_TRANSPOSE = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")


@dataclasses.dataclass
class LayerCost:
    params: float
    macs: float


@dataclasses.dataclass
class Cost:
    """Params and MACs of a model (or of a model pruned by a plan).

    Attributes:
        params: number of weights.
        macs: multiply-accumulates for one input sample.
        per_layer: dict layer name -> `LayerCost`.
    """

    params: float
    macs: float
    per_layer: dict

    def ratio(self, other):
        """(params ratio, MACs ratio) of this cost to `other`."""
        return self.params / other.params, self.macs / other.macs


def _spatial(shape):
    """Product of the axes between batch and channels (None counts as 1)."""
    dims = [d for d in (shape or ())[1:-1] if d is not None]
    return math.prod(dims) if dims else 1


def _kernel_size(cfg):
    return math.prod(cfg.get("kernel_size") or (1,))


def node_cost(graph, node, count, kernels=None):
    """Params and MACs of one layer call.

    Args:
        graph: the `ChannelGraph`.
        node: a `Node` of the graph.
        count: function tensor key -> number of kept channels on that
            tensor's channel axis (an int, or a tensor for a soft count).
        kernels: optional dict layer name -> kernel size replacing the
            layer's own (a plan's `kernels`; soft sizes are fine too).

    Returns:
        (params, macs). Params are 0 for calls after a layer's first one.
    """
    cfg = node.config
    if kernels and node.name in kernels:
        cfg = kernel_config(cfg, kernels[node.name])
    layer = node.layer
    kind = node.kind
    if kind == "mixer":
        cls = node.class_name
        cin, cout = count(node.inputs[0]), count(node.outputs[0])
        bias = cout if cfg.get("use_bias", True) else 0
        in_shape, out_shape = graph.shapes.get(node.inputs[0]), graph.shapes.get(node.outputs[0])
        if cls == "Dense":
            params, macs = cin * cout + bias, _spatial(out_shape) * cin * cout
        elif cls in _SEPARABLE:
            k, m = _kernel_size(cfg), int(cfg.get("depth_multiplier", 1))
            per_pixel = k * cin * m + cin * m * cout
            params, macs = per_pixel + bias, _spatial(out_shape) * per_pixel
        elif cls in _TRANSPOSE:
            k = _kernel_size(cfg)
            params, macs = k * cin * cout + bias, _spatial(in_shape) * k * cin * cout
        else:
            k, groups = _kernel_size(cfg), int(cfg.get("groups", 1) or 1)
            # Grouped convs keep their channels, so the counts are ints here.
            weights = k * cin * cout // groups if groups > 1 else k * cin * cout
            params, macs = weights + bias, _spatial(out_shape) * weights
    elif kind == "depthwise":
        cout = count(node.outputs[0])
        k = _kernel_size(cfg)
        bias = cout if cfg.get("use_bias", True) else 0
        params, macs = k * cout + bias, _spatial(graph.shapes.get(node.outputs[0])) * k * cout
    elif kind == "channelwise":
        key = node.inputs[0]
        full = len(graph.channels[key])
        cin = count(key)
        params = 0
        for w in layer.weights:
            size = math.prod(w.shape)
            if len(w.shape) and w.shape[-1] == full:
                params = params + size // full * cin
            else:
                params = params + size
        macs = 0
    else:
        params = layer.count_params() if getattr(layer, "weights", None) else 0
        macs = 0
    if not node.first_call:
        params = 0
    return params, macs


def cost(model, plan=None):
    """Params and MACs of `model`, or of `model` pruned by `plan`.

    Args:
        model: a `keras.Model` or its `ChannelGraph`.
        plan: optional `PruningPlan`; without it, the unpruned model's cost.

    Returns:
        A `Cost`.

    Example:

    ```python
    before = tfprune.cost(model)
    after = tfprune.cost(model, plan)
    print(after.macs / before.macs)
    ```
    """
    graph = model if isinstance(model, ChannelGraph) else (
        plan.graph if plan is not None and plan.graph.model is model else analyze(model))
    kernels = plan.kernels if plan is not None else None
    if plan is None:
        def count(key):
            return len(graph.channels[key])
    else:
        kept = plan.kept_channels

        def count(key):
            return int(np.count_nonzero(kept[graph.channels[key]]))

    per_layer = {}
    total_params = total_macs = 0
    for node in graph.nodes:
        params, macs = node_cost(graph, node, count, kernels)
        params, macs = int(params), int(macs)
        prev = per_layer.get(node.name)
        if prev:
            prev.params += params
            prev.macs += macs
        else:
            per_layer[node.name] = LayerCost(params, macs)
        total_params += params
        total_macs += macs
    return Cost(total_params, total_macs, per_layer)
