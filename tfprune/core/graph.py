"""Channel-dependency graph of a Keras 3 functional or Sequential model.

`analyze(model)` walks the model's public config (`model.get_config()`: its
layers, their configs and inbound nodes) and partitions every channel axis in
the model into *channel groups*: sets of channels that must be kept or removed
together. A Conv2D followed by BatchNormalization and ReLU gives one group;
two branches joined by `Add` share one group; `Concatenate` places several
groups side by side in one tensor; `Flatten` repeats a group's channels over
every spatial position.

How it works: every tensor's channel axis (the last axis, channels-last) is an
array of *atoms*. A layer that makes new channels (Conv, Dense, ...) creates
fresh atoms; a layer that maps channel `i` to channel `i` (BN, ReLU, pooling)
passes the same atoms on; `Add` and friends unify their inputs' atoms position
by position. Channels are the equivalence classes of atoms, and a group is the
set of channels tied together through the layers that created them.

How a layer treats channels comes from its `LayerSpec` in the layer registry
(`tfprune.core.registry`; built-in layers in `builtin_layers.py`). Merges,
Concatenate, Flatten, Reshape, Permute, nested models and `keras.ops` calls
are structural and handled here. A layer whose effect on channels tfprune
does not know becomes a *barrier*: its inputs and outputs are kept whole and
the rest of the model is still pruned. The graph lists barriers with the
reason (and how to register the layer), it never guesses.
"""

import dataclasses
import math

import keras
import numpy as np

from tfprune.compat import is_keras_op
from tfprune.core import builtin_layers  # noqa: F401 - registers the Keras layers
from tfprune.core.configs import MODEL_CLASSES, histories
from tfprune.core.registry import normalized_axes, spec_for
from tfprune.errors import TfpruneError, UnsupportedLayerError, UnsupportedModelError

MERGE_LAYERS = frozenset(
    {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
)
# keras.ops calls recorded in functional graphs that act channel by channel.
OP_MERGES = frozenset(
    {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum"})
OP_UNARY = frozenset(
    {"Relu", "Relu6", "Sigmoid", "HardSigmoid", "HardSwish", "Silu", "Swish",
     "Tanh", "Gelu", "Elu", "Selu", "LeakyRelu", "Softplus", "Abs", "Negative",
     "Exp", "Sqrt", "Square", "Clip"})


@dataclasses.dataclass
class Node:
    """One call of one layer in the model.

    Attributes:
        path: names from the outer model down to the layer (nested models
            give paths longer than one).
        layer: the live Keras layer.
        class_name: the layer's class name as serialised.
        config: the layer's config dict.
        inputs: keys of the tensors it consumes, flattened.
        outputs: keys of the tensors it produces.
        kind: how it treats channels: "input", "identity", "channelwise",
            "mixer", "depthwise", "merge", "concat", "flatten", "reshape"
            or "barrier".
        first_call: whether this is the layer's first call (its weights are
            sliced by the masks of its first call; later calls agree).
        constants: the call's arguments that are not tensors (scalars of a
            keras.ops call, for instance).
        spec: the layer's `LayerSpec` from the registry, or None.
    """

    path: tuple
    layer: object
    class_name: str
    config: dict
    inputs: list
    outputs: list
    kind: str = "identity"
    first_call: bool = True
    constants: list = dataclasses.field(default_factory=list)
    spec: object = None

    @property
    def name(self):
        return "/".join(self.path)


@dataclasses.dataclass
class ChannelGroup:
    """Channels that are kept or removed together.

    Attributes:
        id: index of the group in `ChannelGraph.groups`.
        size: number of channels.
        prunable: False when some channel is pinned (model input/output,
            barrier, grouped conv); such a group is always kept whole.
        reason: why the group is not prunable (empty when it is).
        producers: layers that create these channels (Conv, Dense, ...).
        consumers: layers that mix these channels into new ones.
        layers: every layer whose input or output carries these channels.
        offset: position of the group's first channel in the graph-wide
            channel numbering.
        segments: index arrays of the parts of the group that some tensor
            carries alone (e.g. one input of a Concatenate whose output is
            added to another tensor); a plan keeps at least one channel of
            each, or that tensor would be empty.
    """

    id: int
    size: int
    prunable: bool
    reason: str
    producers: list
    consumers: list
    layers: list
    offset: int
    segments: list = dataclasses.field(default_factory=list)

    def __repr__(self):
        flag = "prunable" if self.prunable else f"fixed: {self.reason}"
        return (
            f"ChannelGroup(id={self.id}, size={self.size}, {flag}, "
            f"producers={self.producers})"
        )


@dataclasses.dataclass
class Barrier:
    """A layer at which pruning stops, and why."""

    layer: str
    class_name: str
    reason: str


class ChannelGraph:
    """Channel groups of a model, and the tensors that carry them.

    Build it with `tfprune.analyze(model)`.

    Attributes:
        model: the analysed model (never modified).
        groups: list of `ChannelGroup`.
        barriers: list of `Barrier`.
        nodes: the layer calls in topological order.
        shapes: tensor key -> shape tuple (batch axis first, may hold None).
        channels: tensor key -> int array; entry i is the graph-wide channel
            number of the tensor's channel i.
        outputs: keys of the model's output tensors.

    Example:

    ```python
    graph = tfprune.analyze(model)
    for group in graph.groups:
        print(group.id, group.size, group.prunable, group.producers)
    plan = graph.plan(keep={graph.group_of("conv1").id: [0, 2, 5]})
    ```
    """

    def __init__(self, model):
        self.model = model
        self.nodes = []
        self.shapes = {}
        self.channels = {}
        self.groups = []
        self.barriers = []
        self.outputs = []
        self._builder = _GraphBuilder(self)
        self._builder.build(model)
        del self._builder

    @property
    def num_channels(self):
        """Number of channels over all groups."""
        return sum(g.size for g in self.groups)

    @property
    def prunable_groups(self):
        """The groups a plan may shrink (not pinned by an input, an output,
        a barrier or a grouped convolution)."""
        return [g for g in self.groups if g.prunable]

    def group_of(self, layer_name):
        """The group holding `layer_name`'s output channels.

        Args:
            layer_name: a layer name, or a "outer/inner" path for a layer in
                a nested model.

        Returns:
            A `ChannelGroup`.
        """
        node = self.node(layer_name)
        if not node.outputs:
            raise ValueError(f"layer '{layer_name}' has no output tensor.")
        chans = self.channels[node.outputs[0]]
        ids = sorted({self.group_id_of_channel(c) for c in np.unique(chans)})
        if len(ids) != 1:
            raise ValueError(
                f"layer '{layer_name}' outputs channels of several groups "
                f"{ids} (it concatenates); use graph.groups_of('{layer_name}')."
            )
        return self.groups[ids[0]]

    def groups_of(self, layer_name):
        """All groups whose channels appear in `layer_name`'s output."""
        node = self.node(layer_name)
        chans = np.unique(self.channels[node.outputs[0]])
        ids = sorted({self.group_id_of_channel(c) for c in chans})
        return [self.groups[i] for i in ids]

    def node(self, layer_name):
        """The first call of the layer named `layer_name` (or path)."""
        for node in self.nodes:
            if node.name == layer_name or (
                len(node.path) == 1 and node.path[0] == layer_name
            ):
                return node
        names = [n.name for n in self.nodes]
        hint = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise KeyError(f"no layer named '{layer_name}' in the model ({hint}).")

    def group_id_of_channel(self, channel):
        """Id of the group holding graph-wide channel number `channel`."""
        return int(self._group_of_channel[channel])

    def group_ids(self, channels):
        """Group id of each graph-wide channel number in `channels` (an array).

        Example:

        ```python
        graph = tfprune.analyze(model)
        node = graph.node("conv3")
        ids = np.unique(graph.group_ids(graph.channels[node.inputs[0]]))
        ```
        """
        return self._group_of_channel[np.asarray(channels, dtype=np.int64)]

    def consumers(self):
        """Dict tensor key -> the layer calls that read that tensor."""
        out = {}
        for node in self.nodes:
            for key in node.inputs:
                out.setdefault(key, []).append(node)
        return out

    def plan(self, keep=None, kernels=None):
        """A `PruningPlan` keeping `keep[group_id]` in each listed group.

        Args:
            keep: dict group id -> iterable of channel indices to keep.
                Groups not listed are kept whole.
            kernels: dict conv layer name -> smaller kernel size (SMOF).

        Returns:
            A validated `PruningPlan`.
        """
        from tfprune.core.plan import PruningPlan

        return PruningPlan(self, keep or {}, kernels=kernels)

    def summary(self):
        """A printable table of the groups and barriers."""
        lines = [f"{'group':>5}  {'size':>5}  {'prunable':<8}  layers"]
        for g in self.groups:
            if not g.producers:
                continue
            flag = "yes" if g.prunable else "no"
            names = ", ".join(g.producers[:4]) + (" ..." if len(g.producers) > 4 else "")
            lines.append(f"{g.id:>5}  {g.size:>5}  {flag:<8}  {names}")
            if not g.prunable:
                lines.append(f"{'':>24}({g.reason})")
        if self.barriers:
            lines.append("")
            lines.append("barriers (channels kept whole here):")
            for b in self.barriers:
                lines.append(f"  {b.layer} ({b.class_name}): {b.reason}")
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"<ChannelGraph of '{self.model.name}': {len(self.groups)} groups, "
            f"{len(self.prunable_groups)} prunable, {len(self.barriers)} barriers>"
        )


def analyze(model):
    """Builds the `ChannelGraph` of a functional or Sequential Keras model.

    Args:
        model: a built `keras.Model` (functional API or `keras.Sequential`).
            Subclassed models cannot be analysed: their `call` is Python code
            that tfprune cannot read.

    Returns:
        A `ChannelGraph`.

    Example:

    ```python
    model = tfprune.zoo.resnet20(input_shape=(28, 28, 1))
    graph = tfprune.analyze(model)
    print(graph.summary())
    ```
    """
    return ChannelGraph(model)


def model_config(model):
    """The model's config, checked to be a functional or Sequential one."""
    if not isinstance(model, keras.Model):
        raise UnsupportedModelError(
            f"expected a keras.Model, got {type(model).__name__}. Pass a "
            "functional or Sequential Keras 3 model (tf_keras models are not "
            "supported)."
        )
    if not model.built:
        raise UnsupportedModelError(
            f"model '{model.name}' is not built. Give it a keras.Input (or "
            "call it on a batch) before pruning."
        )
    try:
        config = model.get_config()
    except NotImplementedError:
        config = None
    if not config or "layers" not in config:
        raise UnsupportedModelError(
            f"model '{model.name}' ({type(model).__name__}) is a subclassed "
            "model; tfprune needs the layer graph, which only functional and "
            "Sequential models expose. Rebuild it with the functional API: "
            "inputs = keras.Input(...); outputs = ...; "
            "keras.Model(inputs, outputs)."
        )
    return config


def get_operation(model, name):
    """The layer (or keras.ops operation) called `name` in `model`."""
    for op in getattr(model, "operations", None) or model.layers:
        if op.name == name:
            return op
    return model.get_layer(name)  # raises Keras's own "no such layer" error


def _tensor_key(prefix, history):
    name, node_index, tensor_index = history
    return "/".join(prefix + (name,)) + f":{node_index}:{tensor_index}"


def _flat_tensors(obj):
    """Keras-tensor dicts in a serialised call's args, in order."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return [obj["config"]]
        out = []
        for v in obj.values():
            out.extend(_flat_tensors(v))
        return out
    if isinstance(obj, (list, tuple)):
        out = []
        for v in obj:
            out.extend(_flat_tensors(v))
        return out
    return []


def _flat_constants(obj):
    """Leaves of a serialised call's args that are not Keras tensors."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return []
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [c for v in obj for c in _flat_constants(v)]
    return [obj]


def _sequential_as_functional(config, model):
    """Rewrites a Sequential config into functional form (layers + nodes)."""
    entries = []
    layers = list(config["layers"])
    if layers and layers[0]["class_name"] == "InputLayer":
        input_entry = dict(layers.pop(0))
    else:
        shape = config.get("build_input_shape") or list(model.inputs[0].shape)
        input_entry = {
            "class_name": "InputLayer",
            "config": {"name": "input", "batch_shape": list(shape)},
        }
    input_name = input_entry["config"]["name"]
    input_entry["name"] = input_name
    input_entry["inbound_nodes"] = []
    entries.append(input_entry)
    prev = [input_name, 0, 0]
    shape = list(input_entry["config"]["batch_shape"])
    live = [l for l in model.layers]
    for entry, layer in zip(layers, live):
        entry = dict(entry)
        name = entry["config"]["name"]
        entry["name"] = name
        tensor = {"class_name": "__keras_tensor__",
                  "config": {"shape": shape, "keras_history": prev}}
        entry["inbound_nodes"] = [{"args": [tensor], "kwargs": {}}]
        entries.append(entry)
        shape = list(layer.output.shape) if _has_output(layer) else None
        prev = [name, 0, 0]
    return {
        "name": config.get("name"),
        "layers": entries,
        "input_layers": [[input_name, 0, 0]],
        "output_layers": [prev],
    }


def _has_output(layer):
    try:
        layer.output  # noqa: B018 - raises for layers with several calls
        return True
    except (AttributeError, ValueError):
        return False


def _functional_form(config, model):
    if isinstance(model, keras.Sequential) or "input_layers" not in config:
        return _sequential_as_functional(config, model)
    return config


class _GraphBuilder:
    """Walks a model config and fills a ChannelGraph (used once per graph)."""

    def __init__(self, graph):
        self.g = graph
        self.parent = []  # atom union-find
        self.origin = []  # atom -> index in self.origins
        self.origins = []  # name of the layer that created each batch of atoms
        self.pinned = {}  # atom -> reason
        self.atoms = {}  # tensor key -> np.ndarray of atom ids
        self.first_inputs = {}  # layer path -> atoms of its first call's inputs
        self.produced = {}  # layer path -> atoms it created (shared layers)
        self.n_outputs = {}  # first output key of a call -> number of outputs
        self.calls = {}  # layer path -> number of calls

    # -- atoms ---------------------------------------------------------
    def fresh(self, n, layer, pinned=""):
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.origin.extend([len(self.origins)] * n)
        self.origins.append(layer)
        atoms = np.arange(start, start + n, dtype=np.int64)
        if pinned:
            self.pin(atoms, pinned)
        return atoms

    def find(self, a):
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def unify(self, xs, ys):
        for x, y in zip(xs.tolist(), ys.tolist()):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[max(rx, ry)] = min(rx, ry)

    def pin(self, atoms, reason):
        for a in atoms.tolist():
            self.pinned.setdefault(a, reason)

    def barrier(self, node, ins, reason):
        node.kind = "barrier"
        self.g.barriers.append(Barrier(node.name, node.class_name, reason))
        for a in ins:
            if a is not None:
                self.pin(a, f"feeds barrier '{node.name}'")
        outs = []
        for key in node.outputs:
            shape = self.g.shapes.get(key)
            n = int(shape[-1]) if shape and len(shape) > 1 and shape[-1] else 0
            outs.append(self.fresh(n, node.name, f"output of barrier '{node.name}'"))
        return outs

    # -- walking -------------------------------------------------------
    def build(self, model):
        config = _functional_form(model_config(model), model)
        outputs = self.walk(config, (), model, None)
        for key in outputs:
            self.g.outputs.append(key)
            if key in self.atoms:
                self.pin(self.atoms[key], "model output")
        self.finalize()

    def walk(self, config, prefix, live_model, input_atoms):
        """Walks one functional config; returns its output tensor keys."""
        entries = config["layers"]
        outputs = histories(config["output_layers"])
        referenced = list(outputs)
        for entry in entries:  # shapes of every consumed tensor
            for call in entry.get("inbound_nodes", []):
                for t in _flat_tensors(call):
                    key = _tensor_key(prefix, t["keras_history"])
                    self.g.shapes[key] = tuple(t["shape"])
                    referenced.append(t["keras_history"])
        for hist, tensor in zip(outputs, getattr(live_model, "outputs", None) or []):
            self.g.shapes.setdefault(_tensor_key(prefix, hist), tuple(tensor.shape))
        for name, node_index, tensor_index in referenced:
            first = _tensor_key(prefix, [name, node_index, 0])
            self.n_outputs[first] = max(self.n_outputs.get(first, 1), tensor_index + 1)
        pending = []
        for entry in entries:
            name = entry.get("name") or entry["config"]["name"]
            if entry["class_name"] == "InputLayer":
                layer = None  # Sequential models do not list theirs
            else:
                layer = get_operation(live_model, name)
            calls = entry.get("inbound_nodes", [])
            self.calls[prefix + (name,)] = len(calls)
            if entry["class_name"] == "InputLayer" or not calls:
                pending.append((entry, name, layer, 0, None))
            for i, call in enumerate(calls):
                pending.append((entry, name, layer, i, call))
        while pending:
            progressed = False
            rest = []
            for item in pending:
                entry, name, layer, index, call = item
                tensors = _flat_tensors(call) if call else []
                keys = [_tensor_key(prefix, t["keras_history"]) for t in tensors]
                if all(k in self.atoms for k in keys):
                    self.visit(entry, prefix + (name,), layer, index, call, keys,
                               input_atoms)
                    progressed = True
                else:
                    rest.append(item)
            if not progressed:
                stuck = ", ".join(sorted({item[1] for item in rest})[:5])
                raise TfpruneError(
                    f"could not order the layers of '{config.get('name')}' "
                    f"(waiting: {stuck}); is the model config complete?"
                )
            pending = rest
        return [_tensor_key(prefix, h) for h in outputs]

    def visit(self, entry, path, layer, index, call, in_keys, input_atoms):
        class_name = entry["class_name"]
        cfg = entry.get("config", {})
        n_out = self.n_outputs.get(_tensor_key(path[:-1], [path[-1], index, 0]), 1)
        out_keys = [
            _tensor_key(path[:-1], [path[-1], index, j]) for j in range(n_out)
        ]
        node = Node(path, layer, class_name, cfg, in_keys, out_keys,
                    first_call=index == 0,
                    constants=_flat_constants(call["args"]) if call else [])
        ins = [self.atoms[k] for k in in_keys]
        if class_name == "InputLayer":
            key = out_keys[0]
            shape = tuple(cfg.get("batch_shape") or ())
            self.g.shapes.setdefault(key, shape)
            node.kind = "input"
            if input_atoms is not None:  # input of a nested model
                outs = [input_atoms[path[-1]]]
            else:
                n = int(shape[-1]) if len(shape) > 1 and shape[-1] else 0
                outs = [self.fresh(n, node.name, "model input")]
        else:
            self.g.nodes.append(node)
            outs = self.dispatch(node, ins)
        for key, atoms in zip(node.outputs, outs):
            self.atoms[key] = atoms

    def dispatch(self, node, ins):
        cls = node.class_name
        cfg = node.config
        layer = node.layer
        module = getattr(type(layer), "__module__", "")
        in_shapes = [self.g.shapes.get(k) for k in node.inputs]
        if is_keras_op(module) and cls in OP_MERGES | OP_UNARY:
            return self.op(node, ins)
        if (not module.startswith(("keras", "tfprune")) and cls not in MODEL_CLASSES
                and spec_for(layer) is None):
            return self.barrier(
                node, ins, "custom layer: tfprune cannot see how it treats "
                "channels (its channels are kept whole); describe it with "
                f"tfprune.register_layer({cls}, tfprune.LayerSpec(...)) to prune "
                "through it")
        if cfg.get("data_format") == "channels_first":
            return self.barrier(node, ins, "channels_first data format is not "
                                "supported; use channels_last")
        if isinstance(layer, keras.Model) or cls in MODEL_CLASSES:
            return self.nested(node, ins)
        x = ins[0] if ins else None
        rank = len(in_shapes[0]) if in_shapes and in_shapes[0] else 0
        spec = spec_for(layer)
        if spec is not None:
            return self.registered(node, ins, in_shapes, spec, rank)
        if cls in MERGE_LAYERS:
            node.kind = "merge"
            return [self.merge(node, ins)]
        if cls == "Concatenate":
            rank = len(in_shapes[0])
            if normalized_axes(cfg.get("axis", -1), rank) == {rank - 1}:
                node.kind = "concat"
                return [np.concatenate(ins)]
            node.kind = "merge"  # concatenating along space: channels align
            return [self.merge(node, ins)]
        if cls == "Flatten":
            spatial = in_shapes[0][1:-1]
            if any(d is None for d in spatial):
                return self.barrier(node, ins, "Flatten of a tensor with "
                                    "unknown spatial size")
            node.kind = "flatten"
            return [np.tile(x, int(np.prod(spatial, dtype=np.int64)))]
        if cls == "Reshape":
            target = list(cfg["target_shape"])
            src = list(in_shapes[0][1:])
            if _keeps_channel_axis(src, target):
                node.kind = "reshape"
                return [x]
            return self.barrier(node, ins, f"Reshape {tuple(src)} -> "
                                f"{tuple(target)} moves the channel axis")
        if cls == "Permute":
            dims = list(cfg["dims"])
            if dims[-1] == len(dims):
                node.kind = "identity"
                return [x]
            return self.barrier(node, ins, "Permute moves the channel axis")
        return self.barrier(node, ins, f"tfprune does not know how {cls} "
                            "treats channels (kept whole); describe it with "
                            f"tfprune.register_layer({cls}, tfprune.LayerSpec(...))")

    def registered(self, node, ins, in_shapes, spec, rank):
        """A layer described by a `LayerSpec` of the registry."""
        node.spec = spec
        layer, cfg = node.layer, node.config
        try:
            spec.validate(layer)
        except ValueError as e:
            raise UnsupportedLayerError(
                node.name, node.class_name,
                f"its registered LayerSpec does not fit the layer ({e}); fix "
                "the spec passed to tfprune.register_layer.") from None
        if spec.kind == "mixer" and cfg.get(spec.width_key) is None:
            raise UnsupportedLayerError(
                node.name, node.class_name,
                f"its LayerSpec names width_key='{spec.width_key}', but the "
                "layer's get_config() has no such entry; return the output "
                "width under that key.")
        reason = spec.check(cfg, rank) if spec.check else ""
        if reason:
            return self.barrier(node, ins, reason)
        unknown = spec.unknown_weights(layer)
        if unknown:
            return self.barrier(
                node, ins, "holds weights tfprune does not know how to slice: "
                f"{', '.join(unknown)}")
        if spec.kind == "mixer":
            return self.mixer(node, ins, spec)
        if spec.kind == "depthwise":
            node.kind = "depthwise"
            return [np.repeat(ins[0], spec.repeat_for(cfg))]
        if any(a.input_axis is not None or a.output_axis is not None
               for a in spec.weights.values()):
            node.kind = "channelwise"
            self.tie_shared(node, ins)
        else:
            node.kind = "identity"
        return [ins[0]]

    def op(self, node, ins):
        """A keras.ops call in the graph (e.g. `x + 3.0` in MobileNetV3)."""
        if any(not isinstance(c, (int, float, bool, type(None)))
               for c in node.constants):
            return self.barrier(node, ins, "a constant argument that is not a "
                                "scalar would not match a pruned tensor")
        node.kind = "merge" if len(ins) > 1 else "identity"
        if len(ins) > 1:
            return [self.merge(node, ins)]
        return [ins[0]]

    def tie_shared(self, node, ins):
        """A layer called several times slices one set of weights."""
        key = node.path
        if key in self.first_inputs:
            for a, b in zip(self.first_inputs[key], ins):
                self.unify(a, b)
        else:
            self.first_inputs[key] = ins

    def mixer(self, node, ins, spec):
        cfg = node.config
        node.kind = "mixer"
        groups = int(cfg.get(spec.groups_key, 1) or 1) if spec.groups_key else 1
        n_out = int(cfg[spec.width_key])
        self.tie_shared(node, ins)
        if groups > 1:
            reason = (f"grouped convolution '{node.name}' (groups={groups}) "
                      "keeps its channels: per-group widths must stay equal")
            self.pin(ins[0], reason)
            pinned = reason
        else:
            pinned = ""
        if node.path not in self.produced:
            self.produced[node.path] = self.fresh(n_out, node.name, pinned)
        return [self.produced[node.path]]

    def merge(self, node, ins):
        width = max(len(a) for a in ins)
        out = next(a for a in ins if len(a) == width)
        for a in ins:
            if len(a) == width:
                self.unify(out, a)
            else:  # broadcast over channels: keep that input whole
                self.pin(a, f"broadcast across channels in '{node.name}'")
        return out

    def nested(self, node, ins):
        layer = node.layer
        if self.calls.get(node.path, 1) > 1:
            return self.barrier(node, ins, "nested model called more than "
                                "once (kept whole)")
        config = _functional_form(model_config(layer), layer)
        names = [h[0] for h in histories(config["input_layers"])]
        node.kind = "model"
        self.g.nodes.remove(node)
        outs = self.walk(config, node.path, layer, dict(zip(names, ins)))
        for inner, outer in zip(outs, node.outputs):
            self.g.shapes.setdefault(inner, self.g.shapes.get(outer))
        return [self.atoms[k] for k in outs]

    # -- groups ----------------------------------------------------------
    def finalize(self):
        g = self.g
        n = len(self.parent)
        roots = np.array([self.find(a) for a in range(n)], dtype=np.int64)
        origin = np.array(self.origin, dtype=np.int64)
        # Origins joined by unified atoms form one group.
        oparent = list(range(len(self.origins)))

        def ofind(o):
            while oparent[o] != o:
                oparent[o] = oparent[oparent[o]]
                o = oparent[o]
            return o

        for a in range(n):
            ra, rb = ofind(origin[a]), ofind(origin[roots[a]])
            if ra != rb:
                oparent[max(ra, rb)] = min(ra, rb)
        group_root = np.array([ofind(origin[a]) for a in range(n)], dtype=np.int64)
        # Number channels (atom classes) group by group, in atom order.
        order = {}
        members = {}
        for a in range(n):
            gr = int(group_root[a])
            members.setdefault(gr, [])
            r = int(roots[a])
            if r not in order:
                order[r] = (gr, len(members[gr]))
                members[gr].append(r)
        channel_of_atom = np.zeros(n, dtype=np.int64)
        group_offset = {}
        offset = 0
        group_of_channel = []
        for gid, gr in enumerate(members):
            group_offset[gr] = (gid, offset)
            offset += len(members[gr])
            group_of_channel.extend([gid] * len(members[gr]))
        for a in range(n):
            gr, idx = order[int(roots[a])]
            channel_of_atom[a] = group_offset[gr][1] + idx
        g._group_of_channel = np.array(group_of_channel, dtype=np.int64)
        g.channels = {k: channel_of_atom[v] for k, v in self.atoms.items()}

        reasons = {}
        for a, why in self.pinned.items():
            reasons.setdefault(group_offset[int(group_root[a])][0], why)
        producers = {gid: [] for gid in range(len(members))}
        first_atom = {}
        for a in range(n):
            first_atom.setdefault(int(origin[a]), a)
        for o, a in first_atom.items():
            gid = group_offset[int(group_root[a])][0]
            name = self.origins[o]
            if name not in producers[gid]:
                producers[gid].append(name)
        layers = {gid: [] for gid in range(len(members))}
        consumers = {gid: [] for gid in range(len(members))}
        for node in g.nodes:
            touched = set()
            for key in node.inputs + node.outputs:
                if key in g.channels:
                    touched.update(g._group_of_channel[np.unique(g.channels[key])].tolist())
            for gid in touched:
                if node.name not in layers[gid]:
                    layers[gid].append(node.name)
            if node.kind == "mixer":
                for key in node.inputs:
                    for gid in np.unique(g._group_of_channel[g.channels[key]]).tolist():
                        if node.name not in consumers[gid]:
                            consumers[gid].append(node.name)
        # Tensors that carry only part of a group (one input of a Concatenate
        # that is later added to another tensor) must each keep a channel.
        segments = {gid: set() for gid in range(len(members))}
        for key, chans in g.channels.items():
            chans = np.unique(chans)
            owners = g._group_of_channel[chans]
            for gid in np.unique(owners).tolist():
                part = chans[owners == gid]
                if len(part) < len(members[list(members)[gid]]):
                    segments[gid].add(tuple((part - group_offset[list(members)[gid]][1]).tolist()))
        for gid, gr in enumerate(members):
            size = len(members[gr])
            reason = reasons.get(gid, "")
            if not reason and size < 2:
                reason = "a single channel cannot be pruned"
            g.groups.append(ChannelGroup(
                id=gid, size=size, prunable=not reason, reason=reason,
                producers=producers[gid], consumers=consumers[gid],
                layers=layers[gid], offset=group_offset[gr][1],
                segments=[np.array(p) for p in sorted(segments[gid])]))


def _keeps_channel_axis(src, target):
    """Whether a Reshape leaves the last axis (and so each channel) alone."""
    if not src or not target or src[-1] != target[-1] or src[-1] in (None, -1):
        return False
    s = [d for d in src[:-1]]
    t = [d for d in target[:-1]]
    if any(d is None for d in s):
        return False
    total = math.prod(s)
    known = [d for d in t if d != -1]
    if len(known) < len(t):  # one -1: inferred, always consistent
        return total % max(1, math.prod(known)) == 0
    return math.prod(known) == total
