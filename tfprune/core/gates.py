"""Channel gates: the layer HFP trains, and folding it back into weights.

The gate lives in the core because the rebuilder folds gates before it
slices: a gated model is rebuilt like any other.
"""

import keras

from tfprune.core.configs import (
    copy_weights_by_name,
    functional_serialized,
    history_of,
    output_histories,
    rewire_calls,
)
from tfprune.core.graph import analyze
from tfprune.core.registry import LayerSpec, register_layer, spec_for

GATE = "ChannelGate"


@keras.saving.register_keras_serializable(package="tfprune")
class ChannelGate(keras.layers.Layer):
    """Multiplies each channel by a trainable factor in [0, 1].

    One gate serves one channel group: where a group has several producers
    (the branches of a residual `Add`), the same layer is called on each, so
    the factors are shared and a channel is counted, and removed, once.

    Args:
        initial_value: starting value of every factor.
        **kwargs: base layer arguments (name, dtype, trainable).

    Example:

    ```python
    x = keras.layers.Conv2D(16, 3)(inputs)
    x = tfprune.layers.ChannelGate(name="conv_gate")(x)
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

    def call(self, inputs):
        return inputs * keras.ops.cast(self.gate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial_value": self.initial_value}


register_layer(ChannelGate, LayerSpec(kind="elementwise", weights={"gate": {"in": -1}}))


def fold_gates(model):
    """The model without its gates, their factors folded into the weights.

    Args:
        model: a model with `ChannelGate` layers (e.g. from `attach`).

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
        factors = keras.ops.convert_to_numpy(node.layer.gate)
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
