"""An independent reference for the rebuilder: masking activations at run time.

`masked_reference(model, plan, x)` runs the *original* model, weights
untouched, layer call by layer call in topological order read from
`model.get_config()`, and multiplies every tensor a layer consumes by a 0/1
mask over its channel axis: 0 for the channels the plan removes. It shares
no code with `tfprune.rebuild` or `tfprune.core.rebuild.zero_out` (no config editing, no
weight copying or slicing, no layer registry); it only reads `plan.keep`,
the groups' offsets and `graph.channels` (which channel of the graph each
tensor carries).

Masking every consumed tensor is the same as masking only where mixers
(Conv, Dense, Depthwise) consume it: a removed channel only ever reaches
layers that act channel by channel, whose outputs on that channel are
removed channels again, masked at their own consumers; the model's outputs
are never pruned. Where the graph is wrong about a layer (say, it thinks a
layer acts channel by channel when it mixes channels), the reference and the
rebuilt model disagree, which is the point.
"""

import keras
import numpy as np


def kept_channels(plan):
    """Bool array over the graph's channel numbering, built from plan.keep."""
    graph = plan.graph
    kept = np.zeros(sum(g.size for g in graph.groups), dtype=bool)
    for group in graph.groups:
        kept[group.offset + np.asarray(plan.keep[group.id], dtype=np.int64)] = True
    return kept


def _key(prefix, history):
    name, node_index, tensor_index = history[:3]
    return "/".join(prefix + (name,)) + f":{node_index}:{tensor_index}"


def _is_tensor(obj):
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _tensor_keys(obj, prefix):
    if _is_tensor(obj):
        return [_key(prefix, obj["config"]["keras_history"])]
    if isinstance(obj, dict):
        return [k for v in obj.values() for k in _tensor_keys(v, prefix)]
    if isinstance(obj, (list, tuple)):
        return [k for v in obj for k in _tensor_keys(v, prefix)]
    return []


def _substitute(obj, prefix, read):
    if _is_tensor(obj):
        return read(_key(prefix, obj["config"]["keras_history"]))
    if isinstance(obj, dict):
        return {k: _substitute(v, prefix, read) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_substitute(v, prefix, read) for v in obj]
    return obj


def _histories(value):
    """[name, node, tensor] lists from a config's input/output layers entry."""
    if value and isinstance(value[0], str):
        return [value]
    return [list(v) for v in value]


class _Evaluator:
    def __init__(self, plan):
        self.graph = plan.graph
        self.kept = kept_channels(plan)

    def mask(self, value, key):
        chans = self.graph.channels.get(key)
        if chans is None:
            return value
        m = self.kept[chans]
        if m.all():
            return value
        return value * keras.ops.cast(keras.ops.convert_to_tensor(m), value.dtype)

    def run(self, model, prefix, inputs):
        """Runs `model` (functional or Sequential) on `inputs` (list)."""
        config = model.get_config()
        if isinstance(model, keras.Sequential) or "input_layers" not in config:
            return self.sequential(model, config, prefix, inputs)
        return self.functional(model, config, prefix, inputs)

    def call(self, op, args, kwargs, prefix, in_keys):
        if isinstance(op, keras.Model):
            return self.run(op, prefix + (op.name,), [self.values[k] for k in in_keys])
        if isinstance(op, keras.layers.Layer) and "training" not in kwargs:
            kwargs = {**kwargs, "training": False}
        return op(*args, **kwargs)

    def sequential(self, model, config, prefix, inputs):
        entries = config["layers"]
        if entries and entries[0]["class_name"] == "InputLayer":
            previous = entries[0]["config"]["name"]
        else:
            previous = "input"
        x = inputs[0]
        self.values = getattr(self, "values", {})
        for layer in model.layers:
            key = _key(prefix, [previous, 0, 0])
            x = self.mask(x, key)
            self.values[key] = x
            if isinstance(layer, keras.Model):
                x = self.run(layer, prefix + (layer.name,), [x])
            else:
                x = layer(x, training=False)
            previous = layer.name
        return x

    def functional(self, model, config, prefix, inputs):
        self.values = getattr(self, "values", {})
        ops = {op.name: op for op in model.operations}
        for hist, value in zip(_histories(config["input_layers"]), inputs):
            self.values[_key(prefix, hist)] = value
        pending = []
        for entry in config["layers"]:
            if entry["class_name"] == "InputLayer":
                continue
            name = entry.get("name") or entry["config"]["name"]
            for index, node in enumerate(entry.get("inbound_nodes", [])):
                pending.append((name, index, node))
        while pending:
            rest = []
            for name, index, node in pending:
                keys = _tensor_keys(node, prefix)
                if not all(k in self.values for k in keys):
                    rest.append((name, index, node))
                    continue

                def read(key):
                    return self.mask(self.values[key], key)

                args = _substitute(node.get("args", []), prefix, read)
                kwargs = _substitute(node.get("kwargs", {}), prefix, read)
                out = self.call(ops[name], args, kwargs, prefix, keys)
                outs = out if isinstance(out, (list, tuple)) else [out]
                for j, value in enumerate(outs):
                    self.values[_key(prefix, [name, index, j])] = value
            if len(rest) == len(pending):
                raise ValueError(f"oracle could not order the layers of {model.name}")
            pending = rest
        outs = [self.values[_key(prefix, h)] for h in _histories(config["output_layers"])]
        return outs[0] if len(outs) == 1 else outs


def masked_reference(model, plan, x):
    """The original model's output on `x` with the plan's removed channels
    multiplied by zero wherever a layer consumes them.

    Args:
        model: the unpruned model (not modified).
        plan: a `PruningPlan` made on `tfprune.analyze(model)`.
        x: a batch of inputs (an array, or a list for several inputs).

    Returns:
        The output as a NumPy array (or a list of them).
    """
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    inputs = [keras.ops.convert_to_tensor(v) for v in inputs]
    out = _Evaluator(plan).run(model, (), inputs)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)
