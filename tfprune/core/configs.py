"""Helpers for editing a serialised functional model config.

A functional config names each tensor by its `keras_history`
`[layer name, node index, tensor index]`; tfprune's tensor keys are the
same triple written as "name:node:tensor".
"""

import copy

import keras

from tfprune.compat import FUNCTIONAL_MODULE

_FUNCTIONAL_KEYS = ("name", "trainable", "layers", "input_layers", "output_layers")
# Class names of serialised models (nested models hold their own "layers").
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})


def entry_name(entry):
    """The layer name of a serialised layer entry."""
    return entry.get("name") or entry["config"]["name"]


def containers(config, prefix=(), sequential=False):
    """Yields (path prefix, config holding "layers", is Sequential) for a
    serialised model's config and every model nested in it."""
    yield prefix, config, sequential
    for entry in config.get("layers", []):
        if entry["class_name"] in MODEL_CLASSES and "layers" in entry["config"]:
            yield from containers(entry["config"], prefix + (entry_name(entry),),
                                  entry["class_name"] == "Sequential")


def layer_entries(config):
    """Yields (path, entry) for every layer entry, nested models included."""
    for prefix, container, _ in containers(config):
        for entry in container.get("layers", []):
            yield prefix + (entry_name(entry),), entry


def unique_name(name, taken):
    """`name`, or `name_1`, `name_2`, ...: the first not in `taken`."""
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    return candidate


def history_of(key):
    """A tensor key "name:node:tensor" as a keras_history list."""
    name, node_index, tensor_index = key.rsplit(":", 2)
    return [name, int(node_index), int(tensor_index)]


def histories(spec):
    """`input_layers` / `output_layers`: one [name, i, j] or a list of them."""
    return [spec] if spec and isinstance(spec[0], str) else list(spec)


def is_tensor(obj):
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def rewire(obj, mapping):
    """Points every serialised tensor in `obj` found in `mapping` elsewhere.

    `mapping` maps keras_history tuples to new ones. Serialised calls hold
    tuples as well as lists while still in memory, so both are walked.
    """
    if is_tensor(obj):
        hist = tuple(obj["config"]["keras_history"])
        if hist in mapping:
            obj["config"]["keras_history"] = list(mapping[hist])
    elif isinstance(obj, dict):
        for v in obj.values():
            rewire(v, mapping)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            rewire(v, mapping)


def rewire_calls(entries, outputs, mapping):
    """Replaces keras_history references according to `mapping`."""
    rewire([entry.get("inbound_nodes", []) for entry in entries], mapping)
    for i, hist in enumerate(outputs):
        if tuple(hist) in mapping:
            outputs[i] = list(mapping[tuple(hist)])


def functional_serialized(model):
    """A deep copy of `model` serialised as a plain functional model."""
    serialized = copy.deepcopy(keras.saving.serialize_keras_object(model))
    serialized.pop("compile_config", None)
    serialized.update(module=FUNCTIONAL_MODULE, class_name="Functional",
                      registered_name="Functional")
    # Subclasses of Functional (GatedModel, ...) add their own keys.
    serialized["config"] = {k: v for k, v in serialized["config"].items()
                            if k in _FUNCTIONAL_KEYS}
    return serialized


def output_histories(config):
    config["output_layers"] = histories(config["output_layers"])
    return config["output_layers"]


def copy_weights_by_name(source, target, skip=()):
    for layer in target.layers:
        if layer.name not in skip and layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
