"""Channel gates: the layer HFP and SMOF train, and folding it into weights.

`ChannelGate` is registered with a `LayerSpec` whose `fold` hook is
`fold_gates`, so `tfprune.rebuild` folds a gated model's gates into its
weights before slicing, without knowing any method.
"""

import keras

from tfprune.core.configs import (
    copy_weights_by_name,
    functional_serialized,
    history_of,
    output_histories,
    rewire_calls,
    unique_name,
)
from tfprune.core.graph import analyze
from tfprune.core.registry import LayerSpec, register_layer, spec_for

GATE = "ChannelGate"


@keras.saving.register_keras_serializable(package="tfprune")
class ChannelGate(keras.layers.Layer):
    """Multiplies each channel by a trainable factor in [0, 1] and a mask.

    One gate serves one channel group: where a group has several producers
    (the branches of a residual `Add`), the same layer is called on each, so
    the factors are shared and a channel is counted, and removed, once.
    The output is `inputs * gate * mask`; `mask` (not trainable, all ones at
    first) is set to 0 for channels chosen for removal (`harden`), so the
    gated model computes exactly what the pruned one will.

    Args:
        initial_value: starting value of every factor.
        **kwargs: base layer arguments (name, dtype, trainable).

    Example:

    ```python
    inputs = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(16, 3)(inputs)
    h = tfprune.methods.gates.ChannelGate(name="conv_gate")(h)
    ```
    """

    def __init__(self, initial_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        self.gate = self.add_weight(
            name="gate", shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.initial_value),
            constraint=lambda g: keras.ops.clip(g, 0.0, 1.0), trainable=True)
        self.mask = self.add_weight(
            name="mask", shape=(input_shape[-1],), initializer="ones",
            trainable=False)

    @property
    def factors(self):
        """The effective factor per channel: gate × mask (a tensor)."""
        return self.gate * self.mask

    def harden(self, keep):
        """Zeroes the channels not in `keep` (a bool array) for good."""
        keep = keras.ops.cast(keras.ops.convert_to_tensor(keep), self.mask.dtype)
        self.mask.assign(keep)
        self.gate.assign(self.gate * keep)

    def call(self, inputs):
        return inputs * keras.ops.cast(self.gate * self.mask, inputs.dtype)

    def load_own_variables(self, store):
        if len(store.keys()) == 1:  # saved before gates had a mask
            self.gate.assign(store["0"])
            self.mask.assign(keras.ops.ones(self.mask.shape))
            return
        super().load_own_variables(store)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial_value": self.initial_value}


def fold_gates(model):
    """The model without its gates, their factors folded into the weights.

    Args:
        model: a model with `ChannelGate` layers (e.g. from `tfprune.methods.hfp.gate`).

    Returns:
        A plain functional `keras.Model` computing the same function, or
        `model` itself when it has no gates.
    """
    graph = analyze(model)
    gate_nodes = [n for n in graph.nodes if n.class_name == GATE]
    if not gate_nodes:
        return model
    serialized = functional_serialized(model)
    config = serialized["config"]
    gate_names = {n.path[-1] for n in gate_nodes}
    mapping = {}
    for node in gate_nodes:
        index = int(node.outputs[0].rsplit(":", 2)[1])
        mapping[(node.path[-1], index, 0)] = tuple(history_of(node.inputs[0]))
    config["layers"] = [e for e in config["layers"]
                        if (e.get("name") or e["config"]["name"]) not in gate_names]
    rewire_calls(config["layers"], output_histories(config), mapping)
    plain = keras.saving.deserialize_keras_object(serialized)
    copy_weights_by_name(model, plain)
    producer_of = {key: n for n in graph.nodes for key in n.outputs}
    for node in gate_nodes:
        factors = keras.ops.convert_to_numpy(node.layer.factors)
        producer = producer_of[node.inputs[0]]
        _scale_outputs(plain.get_layer(producer.path[-1]), factors)
    return plain


def _scale_outputs(layer, factors):
    """Multiplies a layer's output channels by `factors`, in its weights."""
    values = {}
    spec = spec_for(layer)
    for w in layer.weights:
        value = keras.ops.convert_to_numpy(w)
        if isinstance(layer, keras.layers.BatchNormalization):
            if w.name in ("gamma", "beta"):
                value = value * factors
        else:
            axis = spec.weights[w.name].output_axis
            if axis is not None:
                shape = [1] * value.ndim
                shape[axis] = -1
                value = value * factors.reshape(shape)
        values[w.name] = value
    for w in layer.weights:
        w.assign(values[w.name])


def gate_positions(graph):
    """Group id -> tensor keys where its gate goes (one per producer).

    A gate goes after each producer's BatchNormalization (when it has gamma
    and beta, which fold the gate's factors) or after the producer itself.
    Groups that some tensor carries only in part, or whose producers are
    inside nested models, get no gate.
    """
    consumers = graph.consumers()
    producers = {n.name: n for n in graph.nodes if n.kind == "mixer" and n.first_call}
    positions = {}
    for group in graph.prunable_groups:
        if group.segments or any(p not in producers for p in group.producers):
            continue
        keys = []
        for name in group.producers:
            key = producers[name].outputs[0]
            while True:  # past a BN with gamma and beta: the gate scales those
                after = consumers.get(key, [])
                if (len(after) == 1 and after[0].class_name == "BatchNormalization"
                        and after[0].kind == "channelwise"
                        and after[0].config.get("scale", True)
                        and after[0].config.get("center", True)
                        and key not in graph.outputs):
                    key = after[0].outputs[0]
                else:
                    break
            keys.append(key)
        positions[group.id] = keys
    return positions


def insert_gates(serialized, graph, positions):
    """Inserts one `ChannelGate` per group into a serialised functional model.

    Args:
        serialized: `functional_serialized(...)` of the model `graph` was
            made from; edited in place.
        graph: its `ChannelGraph`.
        positions: group id -> tensor keys, as from `gate_positions`; the
            same gate layer is called on each key, so branches share it.

    Returns:
        The names of the inserted gate layers.
    """
    config = serialized["config"]
    entries = config["layers"]
    by_name = {e.get("name") or e["config"]["name"]: i for i, e in enumerate(entries)}
    mapping, inserts = {}, []
    for keys in positions.values():
        name = unique_name(f"{keys[0].split(':')[0]}_gate", by_name)
        by_name[name] = -1
        calls = []
        for call_index, key in enumerate(keys):
            hist = history_of(key)
            calls.append({"args": [{"class_name": "__keras_tensor__", "config": {
                "shape": list(graph.shapes[key]), "dtype": "float32",
                "keras_history": hist}}], "kwargs": {}})
            mapping[tuple(hist)] = (name, call_index, 0)
        after = max(by_name[history_of(k)[0]] for k in keys)
        dtype = entries[by_name[history_of(keys[0])[0]]]["config"].get("dtype")
        inserts.append((after, {
            "module": "tfprune.methods.gates", "class_name": GATE,
            "registered_name": "tfprune>ChannelGate", "name": name,
            "config": {"name": name, "trainable": True, "dtype": dtype,
                       "initial_value": 1.0},
            "inbound_nodes": calls}))
    rewire_calls(entries, output_histories(config), mapping)
    for after, entry in sorted(inserts, key=lambda t: -t[0]):
        entries.insert(after + 1, entry)
    return {entry["name"] for _, entry in inserts}


def functional_model(model):
    """`model` itself, or a Sequential model re-called as a functional one
    (gates and masks need a graph of nodes)."""
    if not isinstance(model, keras.Sequential):
        return model
    inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    x = inputs
    for layer in model.layers:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def model_structure(model):
    """(inputs, outputs) as the model was built: single tensors stay single."""
    def one(xs):
        return xs[0] if len(xs) == 1 else xs
    return one(model.inputs), one(model.outputs)


register_layer(ChannelGate, LayerSpec(
    kind="elementwise", weights={"gate": {"in": -1}, "mask": {"in": -1}},
    fold=fold_gates))
