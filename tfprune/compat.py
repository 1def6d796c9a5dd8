"""Every use of a private Keras or LiteRT name, in one place.

tfprune works through public APIs (model configs, layer weights, callbacks,
`keras.ops`). Where Keras or LiteRT offers no public way to do something,
the private name is used here and nowhere else, with why. Each was checked
on Keras 3.15.1 (TensorFlow 2.21) and ai-edge-litert 2.3.0;
`tests/test_compat.py` fails with a clear message on a Keras version outside
`KERAS_RANGE`, the range these checks cover.
"""

KERAS_RANGE = ("3.10", "4")  # [lowest, highest) Keras 3 release supported


def version_tuple(text):
    """ "3.15.1" -> (3, 15, 1); a suffix such as "rc0" or ".dev" is dropped."""
    parts = []
    for piece in text.split("."):
        digits = piece[:len(piece) - len(piece.lstrip("0123456789"))]
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:  # "0rc1": the rest is a suffix
            break
    return tuple(parts)


def keras_supported(version):
    """Whether `version` (a string) is in `KERAS_RANGE`."""
    low, high = (version_tuple(v) for v in KERAS_RANGE)
    return low <= version_tuple(version) < high


# A functional model's serialised `module`. Subclasses of Functional
# (HFP's GatedModel, ...) are re-serialised as plain Functional models by
# rewriting `class_name` and `module`; Keras records the private module path
# there and checks it when deserialising.
FUNCTIONAL_MODULE = "keras.src.models.functional"


def is_keras_op(module):
    """Whether a layer class from `module` is a `keras.ops` call recorded in
    a functional graph (Keras wraps each op in a class of the private
    `keras.src.ops` package; no public attribute tells them apart)."""
    return module.startswith("keras.src.ops")


def distribute_strategy(model):
    """The `tf.distribute` strategy `model` was created under, or None.

    Keras keeps it in the private `_distribute_strategy`; the public
    `model.distribute_strategy` falls back to the default strategy, which
    cannot tell "created under a strategy" from "not".
    """
    return getattr(model, "_distribute_strategy", None) if model is not None else None


def in_multi_worker_mode(strategy):
    """Whether `strategy` spans several workers, by the private test Keras's
    own trainer uses to choose its multi-worker code path."""
    probe = getattr(getattr(strategy, "extended", None), "_in_multi_worker_mode", None)
    return bool(probe and probe())


class SymbolicBuildHook:
    """Mixin that lets a model take over Keras's first-batch build in `fit`.

    Keras's trainer builds an unbuilt model from its first batch in the
    private `_maybe_symbolic_build`; a model that must build differently
    (`tfprune.training.replicas.MultiWorkerFit`) defines
    `symbolic_build(iterator, data_batch, default)`, where `default(...)`
    is Keras's own build.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        def default(iterator=None, data_batch=None):
            return super(SymbolicBuildHook, self)._maybe_symbolic_build(
                iterator=iterator, data_batch=data_batch)

        return self.symbolic_build(iterator, data_batch, default)

    def symbolic_build(self, iterator, data_batch, default):
        return default(iterator=iterator, data_batch=data_batch)


def replace_tracked_layer(model, old, new):
    """Makes a subclassed `model` track `new` where it tracked `old`.

    A model whose inner network is swapped in the middle of `fit`
    (PruneTrain's reconfiguration) must stop tracking the old network's
    variables; Keras's tracker offers no public way to replace an entry.
    """
    model._tracker.replace_tracked_value("layers", old, new)


def litert_ops(interpreter):
    """The op list of a LiteRT interpreter (dicts with "op_name", ...), or []
    when this LiteRT has no such private helper (it is not needed to run)."""
    try:
        return list(interpreter._get_ops_details())
    except Exception:
        return []
