"""Group lasso over channels: the penalty that drives whole channels to zero.

A channel can be removed once every weight that reads or writes it is zero.
`GroupLasso` penalises the L2 norm of each such set of weights, per layer and
per side: for every channel-mixing layer (Conv, Dense, SeparableConv,
transposed conv) one group per *output* channel (its filter and bias entry)
and one group per *input* channel (the kernel's slice that reads it). The
sum of unsquared norms pushes whole groups to exactly zero, unlike weight
decay, which only shrinks them (Yuan & Lin 2006; Wen et al. 2016).

Which channels get groups comes from the `ChannelGraph`: only channels of
prunable groups. So the model's input channels (the first layer's inputs)
and output channels (the classifier's outputs) get none, and neither do
channels pinned by a barrier or a grouped convolution: removing them is
never allowed, so penalising them would only cost accuracy. Depthwise and
BatchNormalization weights are not penalised: a channel whose mixer weights
are all zero no longer reaches the output whatever they hold.

The penalty is computed with `keras.ops` from the layers' live variables, so
it is differentiable and runs on any Keras backend.

Two ways to minimise it. The *subgradient* form adds λ·R to the loss and
lets the optimizer follow its gradient; at a high learning rate a group's
weights then oscillate around zero instead of reaching it, so channels die
only once the rate has decayed. The *proximal* form (the default) leaves R
out of the gradient and, after every optimizer step of rate η, replaces each
group's weights w by w·max(0, 1 − ηλ/‖w‖) (group soft-thresholding, the
proximal operator of ηλ‖·‖₂): a group whose norm is below ηλ becomes exactly
zero, the others shrink by exactly ηλ in norm. An input group and an output
group of one kernel overlap; their operators are applied one after the
other, layer by layer (outputs, then inputs), which is the usual splitting
for overlapping groups.
"""

import dataclasses

import keras
import numpy as np

from tfprune.core.graph import ChannelGraph, analyze

MODES = ("proximal", "subgradient")


@dataclasses.dataclass(frozen=True)
class ChannelSlice:
    """One weight of a channel-mixing layer, indexed by channels on one axis.

    Attributes:
        layer: name (path) of the layer in the `ChannelGraph`.
        variable: the layer's weight variable.
        axis: the weight's axis indexed by channels (non-negative).
        channels: graph-wide channel number of each position along `axis`
            (a channel repeats after a Flatten or a depth multiplier).
        side: "input" (the layer reads these channels) or "output" (it
            writes them).
    """

    layer: str
    variable: object
    axis: int
    channels: np.ndarray
    side: str


def channel_slices(graph):
    """Where each channel lives in the weights of the graph's mixing layers.

    Args:
        graph: a `ChannelGraph`.

    Returns:
        A list of `ChannelSlice`, for the first call of every Conv, Dense,
        SeparableConv and transposed conv. A grouped convolution's kernel,
        whose input axis holds one group's channels only, gives no input
        slice (its channels are pinned anyway).
    """
    slices = []
    for node in graph.nodes:
        if node.kind != "mixer" or not node.first_call:
            continue
        layout = node.spec.weights
        ins = graph.channels[node.inputs[0]]
        outs = graph.channels[node.outputs[0]]
        for w in node.layer.weights:
            axes = layout[w.name]
            rank = len(w.shape)
            if axes.output_axis is not None:
                axis = axes.output_axis % rank
                if w.shape[axis] == len(outs):
                    slices.append(ChannelSlice(node.name, w, axis, outs, "output"))
            if axes.input_axis is not None:
                axis = axes.input_axis % rank
                chans = np.repeat(ins, axes.repeat_for(node.config))
                if w.shape[axis] == len(chans):
                    slices.append(ChannelSlice(node.name, w, axis, chans, "input"))
    return slices


@dataclasses.dataclass
class _Term:
    """The groups of one layer on one side: parts summed, then one norm each."""

    layer: str
    side: str
    channels: np.ndarray  # graph channel of each group
    mask: np.ndarray  # 1.0 where the group is penalised
    parts: list  # (variable, axis, segment ids or None)


def assign(variable, value):
    """`variable.assign(value)`, also from a replica of a TF strategy.

    A proximal step runs in the train step, i.e. in each replica under a
    `tf.distribute` strategy, where a mirrored variable (aggregation "none")
    cannot be assigned directly; there the update goes through the
    strategy, each replica's (identical) value to its own copy.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False:
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                raw = getattr(variable, "value", variable)

                def update(strategy, target, new):
                    strategy.extended.update(
                        target, lambda v, x: v.assign(x), args=(new,))

                context.merge_call(update, args=(raw, value))
                return
    variable.assign(value)


class GroupLasso:
    """Sum of the L2 norms of every prunable channel's weights, per layer.

    For each Conv/Dense (and SeparableConv, transposed conv) layer, one
    group per output channel and one per input channel, skipping channels
    that can never be removed (model input and output, barriers, grouped
    convs). Calling the object returns `weight * penalty` as a scalar
    tensor built from the live variables, so it can be added to any loss.

    Args:
        model: a functional or Sequential `keras.Model`, or its
            `ChannelGraph`.
        weight: the factor λ applied by `__call__`.
        epsilon: added under each square root, so the gradient stays
            finite at a group that is exactly zero.
        mode: "proximal" (default): minimise with `proximal_step` after each
            optimizer step (what `tfprune.methods.prunetrain` does); "subgradient":
            add the penalty to the loss (`with_loss`).

    Example:

    ```python
    lasso = tfprune.methods.regularizers.GroupLasso(model, weight=1e-4, mode="subgradient")
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=lasso.with_loss(ce), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    print(float(lasso.penalty()))
    ```
    """

    def __init__(self, model, weight=1.0, epsilon=1e-12, mode="proximal"):
        graph = model if isinstance(model, ChannelGraph) else analyze(model)
        weight = float(weight)
        if weight < 0:
            raise ValueError(f"GroupLasso weight must be >= 0, got {weight}.")
        if mode not in MODES:
            raise ValueError(
                f"GroupLasso mode must be one of {MODES}, got {mode!r}.")
        self.mode = mode
        self.graph = graph
        self.weight = weight
        self.epsilon = float(epsilon)
        prunable = np.zeros(graph.num_channels, dtype=bool)
        for group in graph.prunable_groups:
            prunable[group.offset:group.offset + group.size] = True
        by_term = {}
        for s in channel_slices(graph):
            by_term.setdefault((s.layer, s.side), []).append(s)
        self._terms = []
        for (layer, side), slices in by_term.items():
            channels = np.unique(np.concatenate([s.channels for s in slices]))
            mask = prunable[channels]
            if not mask.any():
                continue
            parts = []
            for s in slices:
                ids = np.searchsorted(channels, s.channels)
                identity = len(ids) == len(channels) and np.array_equal(
                    ids, np.arange(len(channels)))
                parts.append((s.variable, s.axis, None if identity else ids))
            self._terms.append(_Term(layer, side, channels,
                                     mask.astype("float32"), parts))

    @property
    def num_groups(self):
        """Number of penalised groups."""
        return int(sum(t.mask.sum() for t in self._terms))

    def _squares(self, term):
        total = None
        for variable, axis, ids in term.parts:
            value = keras.ops.cast(variable, "float32")
            others = tuple(a for a in range(len(value.shape)) if a != axis)
            sq = keras.ops.square(value)
            if others:
                sq = keras.ops.sum(sq, axis=others)
            if ids is not None:  # positions -> channels (Flatten, multiplier)
                sq = keras.ops.segment_sum(sq, ids, num_segments=len(term.channels))
            total = sq if total is None else total + sq
        return total

    def penalty(self):
        """The unweighted penalty R: sum of the groups' L2 norms (a scalar)."""
        total = keras.ops.zeros((), "float32")
        for term in self._terms:
            norms = keras.ops.sqrt(self._squares(term) + self.epsilon)
            total = total + keras.ops.sum(norms * term.mask)
        return total

    def __call__(self):
        return self.weight * self.penalty()

    def group_norms(self):
        """The current norms, for inspection.

        Returns:
            A dict (layer name, "input" or "output") -> numpy array with one
            norm per penalised channel of that layer's side, in the order of
            the graph's channel numbering.
        """
        out = {}
        for term in self._terms:
            sq = keras.ops.convert_to_numpy(self._squares(term))
            out[(term.layer, term.side)] = np.sqrt(sq[term.mask > 0])
        return out

    def proximal_step(self, shrinkage):
        """Group soft-thresholding of every penalised group, in place.

        Each group's weights w become w·max(0, 1 − shrinkage/‖w‖): exactly
        zero when ‖w‖ <= shrinkage, otherwise ‖w‖ shrinks by `shrinkage`.
        Call it after an optimizer step with shrinkage = learning rate × λ.
        Unpenalised groups are left alone. Works inside a traced train step.

        Args:
            shrinkage: a non-negative scalar (float or tensor).
        """
        shrinkage = keras.ops.cast(shrinkage, "float32")
        order = sorted(range(len(self._terms)),
                       key=lambda i: self._terms[i].side != "output")
        for i in order:
            term = self._terms[i]
            norms = keras.ops.sqrt(self._squares(term))
            factor = keras.ops.relu(
                1.0 - shrinkage / keras.ops.maximum(norms, 1e-30))
            factor = keras.ops.where(term.mask > 0, factor, 1.0)
            for variable, axis, ids in term.parts:
                scale = factor if ids is None else keras.ops.take(factor, ids)
                shape = [1] * len(variable.shape)
                shape[axis] = -1
                scale = keras.ops.reshape(scale, shape)
                value = keras.ops.cast(variable, "float32") * scale
                assign(variable, keras.ops.cast(value, variable.dtype))

    def with_loss(self, loss):
        """A loss function: `loss(y_true, y_pred) + weight * penalty`.

        The subgradient form: needs `mode="subgradient"`.

        Args:
            loss: a Keras loss object or function of (y_true, y_pred).

        Returns:
            A function to pass as `model.compile(loss=...)`.
        """
        if self.mode != "subgradient":
            raise ValueError(
                "with_loss adds the penalty to the loss (the subgradient form); "
                "make the GroupLasso with mode='subgradient', or train with "
                "tfprune.methods.prunetrain.attach for the proximal form.")
        loss = keras.losses.get(loss)

        def penalised(y_true, y_pred):
            return loss(y_true, y_pred) + self()

        penalised.__name__ = f"{getattr(loss, 'name', 'loss')}_group_lasso"
        return penalised
