"""Exceptions raised by tfprune.

Every error names the layer or value at fault and what to do about it, so a
user can act on the message without reading tfprune's source.
"""


class TfpruneError(Exception):
    """Base class of every error tfprune raises on purpose."""


class UnsupportedModelError(TfpruneError, TypeError):
    """The model is not one tfprune can walk (e.g. a subclassed model)."""


class UnsupportedLayerError(TfpruneError, TypeError):
    """A layer cannot be handled where it stands.

    Most unknown layers become *barriers* (their channels are simply kept);
    this error is raised only where keeping them is not enough, e.g. when a
    plan asks to prune through such a layer.
    """

    def __init__(self, layer, class_name, what_to_do):
        self.layer = layer
        self.class_name = class_name
        super().__init__(f"layer '{layer}' ({class_name}): {what_to_do}")


class InvalidPlanError(TfpruneError, ValueError):
    """A pruning plan does not fit its model (indices, sizes, groups)."""


class TargetUnreachableError(TfpruneError, ValueError):
    """A params/MACs target cannot be met by any valid plan."""


class NonFiniteWeightsError(TfpruneError, ValueError):
    """A model holds NaN or infinite weights, so no channel ranking or slice
    of it means anything; the message names the layer and the weight."""


class DatasetUnavailableError(TfpruneError, RuntimeError):
    """A data set is neither on disk nor loadable through tfds."""
