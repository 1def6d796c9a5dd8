"""Rebuilds a slimmer model from a `PruningPlan`.

The rebuilder edits widths in the model's serialised config (filters, units,
Reshape targets, nested models' input shapes), re-creates the model with
`keras.saving.deserialize_keras_object`, and copies every weight across,
sliced to the kept channels. Layer names, dtype policies and trainable flags
come through the config unchanged. The input model is never modified.

Correctness contract: the rebuilt model computes what the original computes
with the removed channels zeroed where they are consumed, which is exactly
what `zero_out(model, plan)` builds at the original size.
"""

import copy

import keras
import numpy as np

from tfprune.core import kernels as kernel_plans
from tfprune.core.configs import layer_entries
from tfprune.core.graph import analyze, get_operation
from tfprune.core.plan import PruningPlan
from tfprune.core.registry import slice_weight, spec_for, zero_inputs
from tfprune.errors import InvalidPlanError, TfpruneError


def _get_layer(model, path):
    layer = model
    for name in path:
        layer = get_operation(layer, name)
    return layer


def _check_plan(model, plan):
    if not isinstance(plan, PruningPlan):
        raise InvalidPlanError(
            f"expected a PruningPlan, got {type(plan).__name__}; make one with "
            "graph.plan(keep=...) or tfprune.prune(...).")
    if plan.graph.model is not model:
        # A plan made on another instance of the same architecture: re-check.
        plan = PruningPlan.from_dict(plan.to_dict(), analyze(model))  # refits too
    return plan


def _edit_config(serialized, graph, masks):
    """Writes the kept widths into a copy of the serialised model."""
    serialized = copy.deepcopy(serialized)
    serialized.pop("compile_config", None)
    nodes = {n.path: n for n in graph.nodes if n.first_call}
    for path, entry in layer_entries(serialized["config"]):
        entry.pop("build_config", None)  # shapes change: build on call
        cfg = entry["config"]
        node = nodes.get(path)
        key = "/".join(path) + ":0:0"
        if entry["class_name"] == "InputLayer" and len(path) > 1 and key in masks:
            cfg["batch_shape"] = list(cfg["batch_shape"][:-1]) + [int(masks[key].sum())]
        if entry["class_name"] == "Sequential" and cfg.get("build_input_shape"):
            inner = [n for n in graph.nodes if n.path[:-1] == path]
            if inner:
                width = int(masks[inner[0].inputs[0]].sum())
                cfg["build_input_shape"] = list(cfg["build_input_shape"][:-1]) + [width]
        if node is None:
            continue
        if node.kind == "mixer":
            width = int(masks[node.outputs[0]].sum())
            cfg[node.spec.width_key] = width
        elif node.kind == "reshape" and cfg["target_shape"][-1] != -1:
            cfg["target_shape"] = list(cfg["target_shape"][:-1]) + [
                int(masks[node.outputs[0]].sum())]
    return serialized


def _copy_weights(target, graph, masks, transform, refits=None, kernel_op=None):
    """Copies each layer's weights into `target`, through `transform`.

    `transform(value, axes, in_mask, out_mask, repeat)` maps one weight of a
    layer registered with a `LayerSpec`; other layers are copied as they are. A
    weight in `refits[layer name]` replaces the original and is already
    restricted to the kept inputs: only its outputs are sliced.
    `kernel_op(node, values)`, if given, then maps the kernel weights of
    layers whose kernel size the plan changes.
    """
    refits = refits or {}
    done = set()
    for node in graph.nodes:
        if not node.first_call or node.path in done:
            continue
        done.add(node.path)
        if not getattr(node.layer, "weights", None):
            continue
        layer, new_layer = node.layer, _get_layer(target, node.path)
        if node.spec is None or node.kind == "barrier" or isinstance(layer, keras.Model):
            values = layer.get_weights()
            if kernel_op is not None and not isinstance(layer, keras.Model):
                named = {w.name: v for w, v in zip(layer.weights, values)}
                changed = {k: v for k, v in kernel_op(node, dict(named)).items()
                           if v is not named.get(k)}
                values = [changed.get(w.name, v) for w, v in zip(layer.weights, values)]
            # By position: weights without a name of their own get generated
            # names ("variable_18") that differ between the two models.
            new_layer.set_weights(values)
            continue
        layout = node.spec.weights
        in_mask = masks[node.inputs[0]]
        out_mask = masks[node.outputs[0]]
        values = {}
        for w in layer.weights:
            axes = layout[w.name]
            repeat = axes.repeat_for(node.config)
            refit = refits.get(node.name, {}).get(w.name)
            if refit is None:
                values[w.name] = transform(keras.ops.convert_to_numpy(w), axes,
                                           in_mask, out_mask, repeat)
            else:
                values[w.name] = transform(np.asarray(refit), axes,
                                           None, out_mask, repeat)
        if kernel_op is not None:
            values = kernel_op(node, values)
        for old, w in zip(layer.weights, new_layer.weights):  # by position, as above
            if (old.name in refits.get(node.name, {})
                    and tuple(values[old.name].shape) != tuple(w.shape)):
                raise InvalidPlanError(
                    f"re-fitted weight '{node.name}/{old.name}' sliced to the kept "
                    f"outputs has shape {tuple(values[old.name].shape)}, but the "
                    f"pruned layer needs {tuple(w.shape)}; the plan's refits do "
                    "not belong to its kept channels.")
            w.assign(values[old.name])


def _clone(model, graph, masks, custom_objects, kernels=None):
    serialized = _edit_config(keras.saving.serialize_keras_object(model), graph, masks)
    kernel_plans.edit_config(serialized, graph, kernels)
    try:
        with keras.saving.custom_object_scope(custom_objects or {}):
            return keras.saving.deserialize_keras_object(serialized)
    except (TypeError, ValueError) as e:
        raise TfpruneError(
            f"could not re-create model '{model.name}' from its config ({e}). "
            "Custom layers must be registered with "
            "@keras.saving.register_keras_serializable() or passed as "
            "custom_objects=."
        ) from e


def fold_layers(model):
    """`model` without the layers whose `LayerSpec` has a `fold` hook.

    Each such class is folded by its hook, wrappers (`keras.layers.Wrapper`)
    first: other layers' folds scale the weights of the layer a wrapper
    holds, which must be a plain layer by then.

    Args:
        model: a `keras.Model` (not modified).

    Returns:
        A model computing the same function, or `model` itself when it has
        no such layer.
    """
    while True:
        foldable = [layer for layer in model.layers
                    if getattr(spec_for(layer), "fold", None) is not None]
        if not foldable:
            return model
        wrappers = [layer for layer in foldable
                    if isinstance(layer, keras.layers.Wrapper)]
        folded = spec_for((wrappers or foldable)[0]).fold(model)
        if folded is model:
            raise TfpruneError(
                f"the fold hook of {type((wrappers or foldable)[0]).__name__} left "
                "the model unchanged; a LayerSpec's fold must return a model "
                "without that layer class.")
        model = folded


def rebuild(model, plan, custom_objects=None):
    """Builds the pruned model: a new, slimmer `keras.Model`.

    Args:
        model: the `keras.Model` the plan was made for. It is not modified.
        plan: a `PruningPlan`.
        custom_objects: dict of custom layer classes, if the model has any
            that are not registered with Keras.

    Returns:
        A new, uncompiled `keras.Model` with the same layer names, dtype
        policies and trainable flags, and the kept channels' weights. Layers
        whose `LayerSpec` has a `fold` (the gates and masks that training-time
        methods insert) are folded into the weights first.

    Example:

    ```python
    plan = tfprune.prune(model, tfprune.Budget(macs=0.5), criterion="l1")
    slim = tfprune.rebuild(model, plan)
    slim.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ```
    """
    model = fold_layers(model)
    plan = _check_plan(model, plan)
    masks = plan.masks()
    slim = _clone(model, plan.graph, masks, custom_objects, plan.kernels)
    _copy_weights(slim, plan.graph, masks, slice_weight, plan.refits,
                  kernel_plans.kernel_op(plan.kernels, kernel_plans.slice_kernel))
    return slim


def zero_out(model, plan, custom_objects=None):
    """A copy of `model`, same size, with the plan's removed channels unused.

    Every channel-mixing layer (Conv, Dense, ...) gets zero weights for the
    input channels the plan removes, so the copy computes exactly what
    `rebuild(model, plan)` computes. Kernels the plan shrinks keep their
    size with the removed outer taps set to zero. Useful to evaluate a plan
    without changing shapes, and as the reference in equivalence tests.

    Args:
        model: a `keras.Model` (not modified).
        plan: a `PruningPlan` for it.
        custom_objects: as for `rebuild`.

    Returns:
        A new `keras.Model` with the original architecture.
    """
    model = fold_layers(model)
    plan = _check_plan(model, plan)
    graph = plan.graph
    full = {k: np.ones(len(v), dtype=bool) for k, v in graph.channels.items()}
    copy_ = _clone(model, graph, full, custom_objects)
    _copy_weights(copy_, graph, plan.masks(), zero_inputs,
                  kernel_op=kernel_plans.kernel_op(plan.kernels, kernel_plans.zero_ring))
    return copy_


def weight_slicers(graph, masks, kernels=None):
    """Weight key -> the slicing `rebuild` applies to that weight."""
    kernels = kernels or {}
    out = {}
    for node in graph.nodes:
        if (node.spec is None or not node.first_call or node.kind == "barrier"
                or isinstance(node.layer, keras.Model)):
            continue
        in_mask, out_mask = masks[node.inputs[0]], masks[node.outputs[0]]
        size = kernels.get(node.name)
        spatial = kernel_plans.spatial_kernel(node) if size else None
        for w in node.layer.weights:
            axes = node.spec.weights[w.name]
            repeat = axes.repeat_for(node.config)
            if w.name == spatial:
                out[(node.path, w.name)] = (
                    lambda v, a=axes, i=in_mask, o=out_mask, r=repeat, k=size:
                    slice_weight(kernel_plans.slice_kernel(v, k), a, i, o, r))
            else:
                out[(node.path, w.name)] = (
                    lambda v, a=axes, i=in_mask, o=out_mask, r=repeat:
                    slice_weight(v, a, i, o, r))
    return out
