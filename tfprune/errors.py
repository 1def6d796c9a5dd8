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
    """A MACs, params or latency target cannot be met by any valid plan."""


class NonFiniteWeightsError(TfpruneError, ValueError):
    """A model holds NaN or infinite weights, so no channel ranking or slice
    of it means anything; the message names the layer and the weight."""


class DatasetUnavailableError(TfpruneError, RuntimeError):
    """A data set is neither on disk nor loadable through tfds."""


class LatencyTableMismatchError(TfpruneError, ValueError):
    """A latency table was measured for a different model."""


class MismatchedModelsError(TfpruneError, ValueError):
    """The two models of a report are not a model and its pruned copy."""


class UnsupportedOpError(TfpruneError, ValueError):
    """The model needs ops that are not TFLite builtins.

    Attributes:
        ops: list of `(op, layer)` pairs, e.g. `("Cumprod", "cumulative")`;
            `layer` is None where the converter's location names no layer.
    """

    def __init__(self, ops):
        self.ops = list(ops)
        by_op = {}
        for op, layer in self.ops:
            by_op.setdefault(op, [])
            if layer and layer not in by_op[op]:
                by_op[op].append(layer)
        parts = []
        for op, layers in by_op.items():
            where = (" in layer " + ", ".join(f"'{n}'" for n in layers)) if layers else ""
            parts.append(f"{op}{where}")
        super().__init__(
            "the model needs TensorFlow ops that are not TFLite builtins: "
            + "; ".join(parts) + ". An Android app would need the Flex "
            "delegate (several MB) to run them. Replace those layers with "
            "builtin-op equivalents (e.g. Conv2D, Dense, Add, Concatenate, "
            "ReLU, pooling, Reshape) or remove them before exporting.")


class VerificationError(TfpruneError, AssertionError):
    """The converted model does not compute what the Keras model computes."""


class CliError(Exception):
    """Bad input to the command line: printed as one line, exit status 2."""
