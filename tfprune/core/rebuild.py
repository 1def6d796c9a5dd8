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

from tfprune.core.graph import MODEL_CLASSES, analyze, get_operation
from tfprune.core.layouts import LAYOUTS, slice_weight, zero_inputs
from tfprune.core.plan import PruningPlan
from tfprune.errors import InvalidPlanError, TfpruneError


def _layer_entries(config, prefix=()):
    """Yields (path, entry) for every layer entry, nested models included."""
    for entry in config.get("layers", []):
        name = entry.get("name") or entry["config"]["name"]
        path = prefix + (name,)
        yield path, entry
        if entry["class_name"] in MODEL_CLASSES and "layers" in entry["config"]:
            yield from _layer_entries(entry["config"], path)


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
        refits = plan.refits
        plan = PruningPlan.from_dict(plan.to_dict(), analyze(model))
        plan.refits = refits
    return plan


def _edit_config(serialized, graph, masks):
    """Writes the kept widths into a copy of the serialised model."""
    serialized = copy.deepcopy(serialized)
    serialized.pop("compile_config", None)
    nodes = {n.path: n for n in graph.nodes if n.first_call}
    for path, entry in _layer_entries(serialized["config"]):
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
            cfg["units" if node.class_name == "Dense" else "filters"] = width
        elif node.kind == "reshape" and cfg["target_shape"][-1] != -1:
            cfg["target_shape"] = list(cfg["target_shape"][:-1]) + [
                int(masks[node.outputs[0]].sum())]
    return serialized


def _copy_weights(target, graph, masks, transform, refits=None):
    """Copies each layer's weights into `target`, through `transform`.

    `transform(value, axes, in_mask, out_mask, repeat)` maps one weight of a
    layer with a known layout; other layers are copied as they are. A
    weight in `refits[layer name]` replaces the original and is already
    restricted to the kept inputs: only its outputs are sliced.
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
        layout = LAYOUTS.get(node.class_name)
        if layout is None or node.kind == "barrier" or isinstance(layer, keras.Model):
            new_layer.set_weights(layer.get_weights())
            continue
        in_mask = masks[node.inputs[0]]
        out_mask = masks[node.outputs[0]]
        repeat = int(node.config.get("depth_multiplier", 1) or 1)
        values = {}
        for w in layer.weights:
            refit = refits.get(node.name, {}).get(w.name)
            if refit is None:
                values[w.name] = transform(keras.ops.convert_to_numpy(w), layout[w.name],
                                           in_mask, out_mask, repeat)
            else:
                values[w.name] = transform(np.asarray(refit), layout[w.name],
                                           None, out_mask, repeat)
        for w in new_layer.weights:
            w.assign(values[w.name])


def _clone(model, graph, masks, custom_objects):
    serialized = _edit_config(keras.saving.serialize_keras_object(model), graph, masks)
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


def rebuild(model, plan, custom_objects=None):
    """Builds the pruned model: a new, slimmer `keras.Model`.

    Args:
        model: the `keras.Model` the plan was made for. It is not modified.
        plan: a `PruningPlan`.
        custom_objects: dict of custom layer classes, if the model has any
            that are not registered with Keras.

    Returns:
        A new, uncompiled `keras.Model` with the same layer names, dtype
        policies and trainable flags, and the kept channels' weights. The
        `ChannelGate`s of a gated model are folded into the weights.

    Example:

    ```python
    plan = tfprune.prune(model, criterion="l1", target_macs=0.5)
    slim = tfprune.rebuild(model, plan)
    slim.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ```
    """
    if any(type(layer).__name__ == "ChannelGate" for layer in model.layers):
        from tfprune.core.gates import fold_gates

        model = fold_gates(model)  # gate factors go into the producers' weights
    plan = _check_plan(model, plan)
    masks = plan.masks()
    slim = _clone(model, plan.graph, masks, custom_objects)

    _copy_weights(slim, plan.graph, masks, slice_weight, plan.refits)
    return slim


def zero_out(model, plan, custom_objects=None):
    """A copy of `model`, same size, with the plan's removed channels unused.

    Every channel-mixing layer (Conv, Dense, ...) gets zero weights for the
    input channels the plan removes, so the copy computes exactly what
    `rebuild(model, plan)` computes. Useful to evaluate a plan without
    changing shapes, and as the reference in equivalence tests.

    Args:
        model: a `keras.Model` (not modified).
        plan: a `PruningPlan` for it.
        custom_objects: as for `rebuild`.

    Returns:
        A new `keras.Model` with the original architecture.
    """
    plan = _check_plan(model, plan)
    graph = plan.graph
    full = {k: np.ones(len(v), dtype=bool) for k, v in graph.channels.items()}
    copy_ = _clone(model, graph, full, custom_objects)
    _copy_weights(copy_, graph, plan.masks(), zero_inputs)
    return copy_


def weight_slicers(graph, masks):
    """Weight key -> the slicing `rebuild` applies to that weight."""
    out = {}
    for node in graph.nodes:
        layout = LAYOUTS.get(node.class_name)
        if (layout is None or not node.first_call or node.kind == "barrier"
                or isinstance(node.layer, keras.Model)):
            continue
        in_mask, out_mask = masks[node.inputs[0]], masks[node.outputs[0]]
        repeat = int(node.config.get("depth_multiplier", 1) or 1)
        for w in node.layer.weights:
            axes = layout[w.name]
            out[(node.path, w.name)] = (
                lambda v, a=axes, i=in_mask, o=out_mask, r=repeat: slice_weight(v, a, i, o, r))
    return out
