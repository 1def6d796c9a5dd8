"""Removing residual branches whose width reached zero.

A `PruningPlan` keeps at least one channel of every group, because a tensor
with no channel cannot exist. When every channel of a group *inside* a
residual branch is dead (say the group between a ResNet block's two convs),
the branch computes a constant, and the right thing is to drop it: its
`Add` then gets the shortcut alone, and a two-input `Add` disappears, so the
block becomes an identity (followed by whatever came after the `Add`).

What counts as a removable branch: a fully dead, prunable group that no
merge or concatenation touches, whose every consumer reads only that group,
and from each consumer a chain of BatchNorm / activation / other
channel-by-channel layers, each used once, down to one input of an `Add`.
The consumer's output is then its bias alone, so the branch adds a constant
per channel (exactly zero when that bias and the BN shift are zero); the
removal drops it. Layers left without a use (the branch's convs, BN, ReLU)
go with it. Only top-level layers called once are touched.
"""

import copy
import dataclasses

import keras

from tfprune.core.configs import histories, history_of, is_tensor, rewire
from tfprune.errors import TfpruneError

_PASS_THROUGH = ("channelwise", "identity")


@dataclasses.dataclass(frozen=True)
class DeadBranch:
    """A residual branch to remove.

    Attributes:
        group: id of the dead group that makes the branch constant.
        add: name of the `Add` layer the branch feeds.
        tensor: key of the branch's tensor at that `Add`.
    """

    group: int
    add: str
    tensor: str


def _branch_end(graph, start, users, calls):
    """The `Add` reached from `start` through pass-through layers, or None."""
    key = start
    while True:
        after = users.get(key, [])
        if len(after) != 1 or key in graph.outputs:
            return None
        node = after[0]
        if len(node.path) != 1 or calls[node.path] != 1:
            return None
        if node.class_name == "Add":
            return node, key
        if node.kind not in _PASS_THROUGH or len(node.inputs) != 1:
            return None
        key = node.outputs[0]


def find_dead_branches(graph, dead):
    """The residual branches that dead channels make removable.

    Args:
        graph: a `ChannelGraph`.
        dead: bool array over the graph's channel numbering, True for a dead
            channel.

    Returns:
        A list of `DeadBranch`. An `Add` never loses all its inputs: when
        every branch into one is dead, none of them is listed.
    """
    nodes = {n.name: n for n in graph.nodes}
    calls = {}
    for node in graph.nodes:
        calls[node.path] = calls.get(node.path, 0) + 1
    users = graph.consumers()
    found = []
    for group in graph.prunable_groups:
        if group.segments or not group.consumers:
            continue
        if not dead[group.offset:group.offset + group.size].all():
            continue
        if any(nodes[name].kind in ("merge", "concat") for name in group.layers
               if name in nodes):
            continue  # a residual stream, not a branch
        ends = []
        for name in group.consumers:
            node = nodes[name]
            ids = graph.channels[node.inputs[0]]
            inside = (ids >= group.offset) & (ids < group.offset + group.size)
            end = _branch_end(graph, node.outputs[0], users, calls) \
                if inside.all() and calls[node.path] == 1 and len(node.path) == 1 \
                else None
            if end is None:
                ends = None
                break
            ends.append(end)
        if ends:
            found.extend(DeadBranch(group.id, add.name, key) for add, key in ends)
    by_add = {}
    for branch in found:
        by_add.setdefault(branch.add, set()).add(branch.tensor)
    keep = {add for add, tensors in by_add.items()
            if len(tensors) < len(nodes[add].inputs)}
    unique = {}
    for branch in found:
        if branch.add in keep:
            unique.setdefault((branch.add, branch.tensor), branch)
    return list(unique.values())


def _drop_tensor(obj, history):
    """`obj` (a serialised call's args) without the tensor from `history`."""
    if isinstance(obj, (list, tuple)):  # in memory, not yet JSON: tuples too
        return [_drop_tensor(v, history) for v in obj
                if not (is_tensor(v) and list(v["config"]["keras_history"]) == history)]
    if isinstance(obj, dict) and not is_tensor(obj):
        return {k: _drop_tensor(v, history) for k, v in obj.items()}
    return obj


def _tensors(obj):
    if is_tensor(obj):
        return [obj["config"]["keras_history"]]
    if isinstance(obj, dict):
        return [h for v in obj.values() for h in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [h for v in obj for h in _tensors(v)]
    return []


def remove_branches(model, branches):
    """A copy of `model` without the given residual branches.

    Each branch's tensor is taken out of its `Add`; an `Add` left with one
    input is replaced by that input; layers no longer used are dropped. The
    other layers keep their names, configs and weights.

    Args:
        model: a functional `keras.Model` (not modified).
        branches: `DeadBranch`es from `find_dead_branches`.

    Returns:
        A new, uncompiled `keras.Model`.

    Example:

    ```python
    from tfprune.core.branches import find_dead_branches, remove_branches
    from tfprune.methods.prunetrain import dead_channels
    graph = tfprune.analyze(model)
    dead = dead_channels(graph)
    slim = remove_branches(model, find_dead_branches(graph, dead))
    ```
    """
    serialized = copy.deepcopy(keras.saving.serialize_keras_object(model))
    serialized.pop("compile_config", None)
    config = serialized["config"]
    if "input_layers" not in config:
        raise TfpruneError(
            f"model '{model.name}' is Sequential and has no residual branch "
            "to remove; pass a functional model.")
    entries = {e.get("name") or e["config"]["name"]: e for e in config["layers"]}
    mapping = {}
    for branch in branches:
        entry = entries.get(branch.add)
        if entry is None or len(entry.get("inbound_nodes", [])) != 1:
            raise TfpruneError(
                f"'{branch.add}' is not an Add layer called once in model "
                f"'{model.name}'; find branches with find_dead_branches(graph).")
        call = entry["inbound_nodes"][0]
        call["args"] = _drop_tensor(call["args"], history_of(branch.tensor))
        left = _tensors(call["args"])
        if len(left) == 1:  # an Add of one tensor is that tensor
            mapping[(branch.add, 0, 0)] = tuple(left[0])
    for entry in entries.values():
        rewire(entry.get("inbound_nodes", []), mapping)
    outputs = histories(config["output_layers"])
    config["output_layers"] = [list(mapping.get(tuple(h), h)) for h in outputs]
    # Keep the layers the outputs still depend on (and the model inputs).
    used = set()
    stack = [h[0] for h in config["output_layers"] + histories(config["input_layers"])]
    while stack:
        name = stack.pop()
        if name not in used:
            used.add(name)
            stack.extend(h[0] for h in _tensors(entries[name].get("inbound_nodes", [])))
    config["layers"] = [e for name, e in entries.items() if name in used]
    new = keras.saving.deserialize_keras_object(serialized)
    for layer in new.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new

