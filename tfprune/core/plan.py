"""PruningPlan: which channels of each group a pruned model keeps.

A plan is plain data (group id -> kept indices) checked against the
`ChannelGraph` it was made for. Every pruning method in tfprune produces one;
`tfprune.rebuild` consumes it.
"""

import base64
import io
import json

import numpy as np

from tfprune.core.kernels import check_kernels
from tfprune.errors import InvalidPlanError

PLAN_FORMAT = "tfprune.PruningPlan/1"


def _is_int(value):
    """True for ints (numpy ints too), never for bools, floats or strings."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _indices(values, where):
    """The kept indices as Python ints; refuses anything but whole numbers.

    A float such as 1.7 is refused rather than truncated, and so are
    strings ("1"), bools and None, so a damaged plan never keeps channels
    nobody chose.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise InvalidPlanError(
                f"{where}: kept indices must be an integer array, got dtype "
                f"{values.dtype}.")
        return [int(i) for i in values.ravel()]
    if values is None or isinstance(values, (str, bytes, dict)) or not hasattr(
            values, "__iter__"):
        raise InvalidPlanError(
            f"{where}: kept indices must be a list of channel numbers, got "
            f"{values!r}.")
    result = []
    for value in values:
        if not _is_int(value):
            raise InvalidPlanError(
                f"{where}: kept index {value!r} is not a whole number; list "
                "channel numbers such as [0, 2, 5].")
        result.append(int(value))
    return result


def _check_entry(entry, number):
    """The types of one group entry of a plan's JSON form."""
    if not isinstance(entry, dict):
        raise InvalidPlanError(
            f"plan group entry {number} is {type(entry).__name__}, not an "
            "object with id, size, producers and keep.")
    missing = [k for k in ("id", "size", "producers", "keep") if k not in entry]
    if missing:
        raise InvalidPlanError(
            f"plan group entry {number} lacks {', '.join(map(repr, missing))}; "
            "every entry has id, size, producers and keep.")
    for key in ("id", "size"):
        if not _is_int(entry[key]) or entry[key] < 0:
            raise InvalidPlanError(
                f"plan group entry {number}: {key} {entry[key]!r} is not a "
                "non-negative whole number.")
    producers = entry["producers"]
    if not isinstance(producers, list) or not all(isinstance(p, str) for p in producers):
        raise InvalidPlanError(
            f"plan group entry {number}: producers must be a list of layer "
            f"names, got {producers!r}.")
    _indices(entry["keep"], f"plan group {entry['id']}")


class PruningPlan:
    """The channels kept in every group of a `ChannelGraph`.

    Args:
        graph: the `ChannelGraph` of the model to prune.
        keep: dict group id -> iterable of channel indices to keep. Groups
            not listed are kept whole.
        round_to: if given, every pruned group must keep a multiple of this
            many channels (or all of them); checked here.
        kernels: optional dict conv layer name -> smaller kernel size (an
            odd int or tuple, at most the original; the centre is kept).

    Attributes:
        keep: dict group id -> sorted int array of kept indices, for every
            group of the graph.
        kernels: dict layer name -> kernel size tuple, for the convs whose
            kernel the plan shrinks.

    Example:

    ```python
    graph = tfprune.analyze(model)
    group = graph.group_of("conv1")
    plan = tfprune.PruningPlan(graph, {group.id: [0, 1, 4]})
    slim = tfprune.rebuild(model, plan)
    ```
    """

    def __init__(self, graph, keep, round_to=None, kernels=None):
        self.graph = graph
        self.kernels = check_kernels(graph, kernels)
        self.keep = {}
        # Layer name -> {weight name: value} replacing the kept-input slice of
        # that weight on rebuild (consumer weights re-fitted by a method, e.g.
        # the genetic search); outputs are still sliced by the plan. Stored
        # in the JSON form as base64 .npy data.
        self.refits = {}
        if not isinstance(keep, dict):
            raise InvalidPlanError(
                f"keep must be a dict group id -> kept channel indices, got "
                f"{type(keep).__name__}.")
        for gid in keep:
            if not _is_int(gid):
                raise InvalidPlanError(
                    f"plan group id {gid!r} is not a whole number; group ids "
                    f"are ints 0..{len(graph.groups) - 1}.")
        unknown = set(keep) - {g.id for g in graph.groups}
        if unknown:
            raise InvalidPlanError(
                f"plan names group ids {sorted(unknown)} that the model does "
                f"not have (it has groups 0..{len(graph.groups) - 1})."
            )
        for group in graph.groups:
            if group.id not in keep:
                self.keep[group.id] = np.arange(group.size)
                continue
            where = f"group {group.id} (layers {', '.join(group.producers[:3])})"
            idx = np.asarray(sorted(_indices(keep[group.id], where)), dtype=np.int64)
            if len(idx) == 0:
                raise InvalidPlanError(
                    f"{where} keeps no channel; keep at least one.")
            if len(np.unique(idx)) != len(idx):
                raise InvalidPlanError(f"{where} lists a channel twice.")
            if idx[0] < 0 or idx[-1] >= group.size:
                raise InvalidPlanError(
                    f"{where} has {group.size} channels; index "
                    f"{idx[0] if idx[0] < 0 else idx[-1]} is out of range.")
            if len(idx) < group.size and not group.prunable:
                raise InvalidPlanError(
                    f"{where} cannot be pruned ({group.reason}); keep all "
                    f"{group.size} channels or leave it out of the plan.")
            if round_to and len(idx) < group.size and len(idx) % round_to:
                raise InvalidPlanError(
                    f"{where} keeps {len(idx)} channels, not a multiple of "
                    f"round_to={round_to}.")
            for part in group.segments:
                if not np.isin(part, idx).any():
                    raise InvalidPlanError(
                        f"{where}: channels {part.tolist()} are all removed, "
                        "which would leave a tensor of that group with no "
                        "channel; keep at least one of them.")
            self.keep[group.id] = idx

    @property
    def kept_channels(self):
        """Bool array over the graph's channel numbering: True where kept."""
        mask = np.zeros(self.graph.num_channels, dtype=bool)
        for group in self.graph.groups:
            mask[group.offset + self.keep[group.id]] = True
        return mask

    def mask(self, tensor_key):
        """Bool mask over the channel axis of one tensor of the graph."""
        return self.kept_channels[self.graph.channels[tensor_key]]

    def masks(self):
        """Dict tensor key -> bool mask over its channel axis."""
        kept = self.kept_channels
        return {k: kept[v] for k, v in self.graph.channels.items()}

    def widths(self):
        """Dict group id -> number of kept channels."""
        return {gid: len(idx) for gid, idx in self.keep.items()}

    @property
    def is_identity(self):
        return not self.kernels and all(
            len(self.keep[g.id]) == g.size for g in self.graph.groups)

    def to_dict(self):
        groups = []
        for g in self.graph.groups:
            if not g.producers:
                continue
            groups.append({
                "id": g.id,
                "size": g.size,
                "producers": g.producers,
                "keep": self.keep[g.id].tolist(),
            })
        data = {"format": PLAN_FORMAT, "model": self.graph.model.name,
                "groups": groups,
                "kernels": {k: list(v) for k, v in self.kernels.items()}}
        if self.refits:
            data["refits"] = {layer: {name: _encode_array(value)
                                      for name, value in weights.items()}
                              for layer, weights in self.refits.items()}
        return data

    def to_json(self, indent=None):
        """The plan as JSON text (round-trips through `from_json`)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data, graph):
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise InvalidPlanError(
                f"not a tfprune plan (expected format '{PLAN_FORMAT}').")
        keep = {}
        if not isinstance(data.get("groups"), list):
            raise InvalidPlanError(
                "plan has no 'groups' list; it is damaged or was not written "
                "by PruningPlan.to_json.")
        for number, entry in enumerate(data["groups"]):
            _check_entry(entry, number)
            gid = entry["id"]
            if gid >= len(graph.groups):
                raise InvalidPlanError(
                    f"plan group {gid} does not exist in model "
                    f"'{graph.model.name}': the plan was made for another model.")
            group = graph.groups[gid]
            pruned = len(entry["keep"]) < entry["size"]
            if group.size != entry["size"] or (
                    pruned and group.producers != entry["producers"]):
                raise InvalidPlanError(
                    f"plan group {gid} ({entry['producers'][:3]}, size "
                    f"{entry['size']}) does not match the model's group "
                    f"({group.producers[:3]}, size {group.size}): the plan was "
                    "made for another model.")
            keep[gid] = entry["keep"]
        plan = cls(graph, keep, kernels=data.get("kernels"))
        plan.refits = _decode_refits(data.get("refits"), graph)
        return plan

    @classmethod
    def from_json(cls, text, graph):
        """Reads a plan written by `to_json`, checked against `graph`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidPlanError(f"plan is not valid JSON: {e}") from None
        return cls.from_dict(data, graph)

    def __repr__(self):
        pruned = [g for g in self.graph.groups if len(self.keep[g.id]) < g.size]
        return (f"<PruningPlan: {len(pruned)} of {len(self.graph.groups)} "
                f"groups pruned, {int(self.kept_channels.sum())}/"
                f"{self.graph.num_channels} channels kept"
                + (f", {len(self.kernels)} kernels shrunk" if self.kernels else "") + ">")


def _encode_array(value):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return {"npy_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


def _decode_refits(data, graph):
    """Layer name -> {weight name: array} from the JSON form's "refits"."""
    if not data:
        return {}
    if not isinstance(data, dict):
        raise InvalidPlanError("plan 'refits' must map layer names to weights.")
    names = {node.name for node in graph.nodes}
    refits = {}
    for layer, weights in data.items():
        if layer not in names:
            raise InvalidPlanError(
                f"plan re-fits weights of layer '{layer}', which model "
                f"'{graph.model.name}' does not have: the plan was made for "
                "another model.")
        if not isinstance(weights, dict):
            raise InvalidPlanError(f"plan 'refits' of layer '{layer}' must be a dict.")
        refits[layer] = {}
        for name, entry in weights.items():
            try:
                raw = base64.b64decode(entry["npy_base64"], validate=True)
                refits[layer][name] = np.load(io.BytesIO(raw), allow_pickle=False)
            except (KeyError, TypeError, ValueError) as e:
                raise InvalidPlanError(
                    f"plan 'refits' of weight '{layer}/{name}' is not a base64 "
                    f".npy array ({e}).") from None
    return refits
