"""Cost model: parameters and multiply-accumulates (MACs) per layer.

The formulas come from each layer's `LayerSpec` in the layer registry
(params from its weights' channel axes, MACs per position from the spec),
written over the *number of kept channels* of the tensors a layer reads and
writes. Called with exact counts it gives the cost
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


def _weights_params(graph, node, cin, cout, config):
    """Every weight's size, its channel axes scaled to the kept counts.

    A weight axis counts as channel-indexed only when its size matches the
    tensor's channels (times the spec's repeat); otherwise (a grouped
    conv's kernel, a PReLU alpha shared over channels) it is kept whole.
    A kernel whose spatial axes have the layer's kernel size takes the size
    in `config` (a plan may shrink it).
    """
    old_k = node.config.get(node.spec.kernel_size_key) if node.spec.kernel_size_key else None
    new_k = config.get(node.spec.kernel_size_key) if old_k else None
    full_in = len(graph.channels[node.inputs[0]])
    full_out = len(graph.channels[node.outputs[0]])
    params = 0
    for w in node.layer.weights:
        axes = node.spec.weights[w.name]
        shape = tuple(w.shape)
        size, taps = math.prod(shape), 1
        axes_k = node.spec.kernel_axes
        if (old_k and new_k is not None and len(shape) > len(axes_k)
                and tuple(shape[a] for a in axes_k) == tuple(old_k)):
            # Sizes stay ints; the kept taps may be a soft (tensor) count.
            size, taps = size // math.prod(old_k), math.prod(new_k)
        scale_in = (axes.input_axis is not None and full_in
                    and shape[axes.input_axis] == full_in * axes.repeat_for(node.config))
        scale_out = (axes.output_axis is not None and full_out
                     and shape[axes.output_axis] == full_out)
        denom = (full_in if scale_in else 1) * (full_out if scale_out else 1)
        coef = size // denom if size % denom == 0 else size / denom
        term = coef * taps
        if scale_in:
            term = term * cin
        if scale_out:
            term = term * cout
        params = params + term
    return params


def node_cost(graph, node, count, kernels=None):
    """Params and MACs of one layer call.

    Layers registered with a `LayerSpec` are costed from it: params from
    their weights (channel axes scaled to the kept counts) or the spec's
    `params`, MACs as positions x the spec's `macs` per position. Other
    layers count their weights whole and no MACs.

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
    layer, spec = node.layer, node.spec
    cfg = node.config
    if kernels and node.name in kernels:
        cfg = kernel_config(cfg, kernels[node.name], spec.kernel_size_key)
    if node.kind in ("mixer", "depthwise", "channelwise"):
        cin, cout = count(node.inputs[0]), count(node.outputs[0])
        if spec.params is not None:
            params = spec.params(cfg, cin, cout)
        else:
            params = _weights_params(graph, node, cin, cout, cfg)
        if node.kind == "channelwise":
            macs = 0
        else:
            where = node.inputs[0] if spec.positions == "input" else node.outputs[0]
            macs = _spatial(graph.shapes.get(where)) * spec.macs_per_position(
                cfg, cin, cout)
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
    plan = tfprune.prune(model, tfprune.Budget(macs=0.5))
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
        params, macs = int(round(params)), int(round(macs))
        prev = per_layer.get(node.name)
        if prev:
            prev.params += params
            prev.macs += macs
        else:
            per_layer[node.name] = LayerCost(params, macs)
        total_params += params
        total_macs += macs
    return Cost(total_params, total_macs, per_layer)
