"""Reconfiguration: physically remove dead channels and dead branches."""

import dataclasses

import numpy as np

from tfprune.core.branches import find_dead_branches, remove_branches
from tfprune.core.graph import analyze
from tfprune.core.rebuild import rebuild, weight_slicers
from tfprune.methods.prunetrain.dead import channel_magnitudes, dead_channels, keep_alive
from tfprune.training.optimizer_state import load_optimizer_state, new_optimizer, optimizer_state
from tfprune.training.replicas import from_first_replica


@dataclasses.dataclass
class Reconfiguration:
    """What `reconfigure` did.

    Attributes:
        model: the reconfigured model (the input model when nothing died).
        optimizer: the optimizer for it, with every slot carried over (None
            when none was given).
        removed_branches: names of the `Add` layers that lost a branch.
        removed_channels: number of channels removed from the groups that
            remain (those of removed branches not counted).
        changed: whether the model changed.
        kept: layer name -> the output channels it keeps (indices into its
            width before), for every channel-mixing layer that lost some.
    """

    model: object
    optimizer: object
    removed_branches: list
    removed_channels: int
    changed: bool
    kept: dict = dataclasses.field(default_factory=dict)


def reconfigure(model, optimizer=None, threshold=1e-4, custom_objects=None,
                drop_branches=True):
    """Removes dead channels and dead residual branches from `model`.

    Args:
        model: a functional or Sequential `keras.Model` (not modified).
        optimizer: optional optimizer training `model`; a new one of the
            same config is returned, built for the new model, with every
            slot sliced like its weight and the step counter copied.
        threshold: a weight below this in absolute value counts as zero.
        custom_objects: as for `tfprune.rebuild`.
        drop_branches: remove dead residual branches. A dead branch still
            adds a constant (its last BatchNorm's shift), lost with it; with
            `False` such a branch keeps one channel and the model computes
            what it computed (use it when no training follows).

    Returns:
        A `Reconfiguration`.

    Example:

    ```python
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss)
    model.fit(train, epochs=1, verbose=0)
    step = tfprune.methods.prunetrain.reconfigure(model, model.optimizer)
    slim = step.model
    slim.compile(step.optimizer, loss, metrics=["accuracy"])
    ```
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}.")
    graph = analyze(model)
    # Under a multi-worker strategy every worker must rebuild alike: the
    # decisions come from the first replica's reading of the weights.
    dead = from_first_replica(dead_channels(graph, threshold), model)
    branches = find_dead_branches(graph, dead) if drop_branches else []
    source = model
    if branches:
        source = remove_branches(model, branches)
        graph = analyze(source)
    peak = from_first_replica(channel_magnitudes(graph), model)
    plan = graph.plan(keep_alive(graph, peak, peak < threshold))
    if not branches and plan.is_identity:
        return Reconfiguration(model, optimizer, [], 0, False)
    new = source if plan.is_identity else rebuild(source, plan, custom_objects)
    carried = None
    if optimizer is not None:
        carried = load_optimizer_state(
            new_optimizer(optimizer), new, optimizer_state(optimizer, model),
            weight_slicers(graph, plan.masks()))
    removed = graph.num_channels - int(plan.kept_channels.sum())
    masks = plan.masks()
    kept = {node.name: np.flatnonzero(masks[node.outputs[0]]).tolist()
            for node in graph.nodes
            if node.kind == "mixer" and node.first_call and not masks[node.outputs[0]].all()}
    return Reconfiguration(new, carried, sorted({b.add for b in branches}),
                           removed, True, kept)
