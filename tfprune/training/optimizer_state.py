"""Carrying an optimizer's state across a change of model shape.

A model rebuilt in the middle of training (PruneTrain's reconfiguration,
`tfprune.methods.prunetrain.Reconfigure`) keeps its optimizer's momentum and moments:
each slot is sliced like the weight it belongs to, and the step counter is
copied so learning-rate schedules continue where they were.
"""

import keras

from tfprune.errors import TfpruneError


def _weights_by_key(model):
    """(layer path, weight name) -> variable, nested models included."""
    out = {}
    stack = [((), model)]
    while stack:
        prefix, parent = stack.pop()
        for layer in parent.layers:
            path = prefix + (layer.name,)
            if isinstance(layer, keras.Model):
                stack.append((path, layer))
                continue
            for w in layer.weights:
                key = (path, w.name)
                while key in out:  # two weights of one layer share a name
                    key = key + ("'",)
                out[key] = w
    return out


def optimizer_state(optimizer, model):
    """The optimizer's variables, keyed by the model weight they belong to.

    Slot variables (momentum, Adam moments, ...) are keyed by
    `((layer path, weight name), slot)`; the others (step counter, learning
    rate, ...) by `(None, name)`. Keras names each slot
    `{weight path with '/' as '_'}_{slot}`; that is how slots are matched to
    weights.

    Args:
        optimizer: a Keras optimizer, built or not.
        model: the model whose trainable weights it updates.

    Returns:
        A dict key -> numpy array.
    """
    return {k: keras.ops.convert_to_numpy(v)
            for k, v in _optimizer_variables(optimizer, model).items()}


def _optimizer_variables(optimizer, model):
    refs = [(w.path.replace("/", "_"), key, tuple(w.shape))
            for key, w in _weights_by_key(model).items() if w.trainable]
    out = {}
    for v in optimizer.variables:
        best = None
        for prefix, key, shape in refs:
            if (v.name.startswith(prefix + "_") and tuple(v.shape) == shape
                    and (best is None or len(prefix) > len(best[0]))):
                best = (prefix, key)
        if best is None:
            out[(None, v.name)] = v
        else:
            out[(best[1], v.name[len(best[0]) + 1:])] = v
    return out


def learning_rate_schedule(optimizer):
    """The optimizer's `LearningRateSchedule`, or None for a fixed rate.

    Read from the optimizer's public config, so a custom schedule must be
    serialisable (`@keras.saving.register_keras_serializable`).

    Example:

    ```python
    from tfprune.training.optimizer_state import learning_rate_schedule
    schedule = tfprune.methods.finetuning.OneCycle(0.05, total_steps=100)
    model.compile(keras.optimizers.SGD(schedule), loss)
    same = learning_rate_schedule(model.optimizer)  # a new OneCycle(0.05, 100)
    ```
    """
    rate = optimizer.get_config().get("learning_rate")
    if not isinstance(rate, dict):
        return None
    try:
        return keras.optimizers.schedules.deserialize(rate)
    except (TypeError, ValueError) as e:
        raise TfpruneError(
            f"could not re-create the learning-rate schedule "
            f"'{rate.get('class_name')}' of the optimizer from its config ({e}); "
            "register it with @keras.saving.register_keras_serializable().") from e


def new_optimizer(optimizer, learning_rate=None):
    """An unbuilt optimizer with `optimizer`'s config (and schedule).

    Args:
        optimizer: a Keras optimizer (not modified).
        learning_rate: optional new learning rate or schedule.
    """
    config = optimizer.get_config()
    schedule = learning_rate_schedule(optimizer)
    if schedule is not None:
        config["learning_rate"] = schedule
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return type(optimizer).from_config(config)


def load_optimizer_state(optimizer, model, state, slicers=None, skip=()):
    """Builds `optimizer` for `model` and assigns `state` to its variables.

    Args:
        optimizer: an unbuilt optimizer.
        model: the model it will train.
        state: a dict from `optimizer_state` (of this or a larger model).
        slicers: dict weight key -> function slicing an array shaped like
            that weight to its new shape (for slots of pruned weights).
        skip: keys of `state` not to assign.

    Returns:
        `optimizer`.
    """
    optimizer.build(model.trainable_variables)
    for key, var in _optimizer_variables(optimizer, model).items():
        if key not in state or key in skip:
            continue
        value = state[key]
        if key[0] is not None and slicers and key[0] in slicers:
            value = slicers[key[0]](value)
        if tuple(value.shape) != tuple(var.shape):
            raise TfpruneError(
                f"optimizer variable '{var.name}' has shape {tuple(var.shape)} "
                f"but the saved state has {tuple(value.shape)}; the state was "
                "saved for another model.")
        var.assign(value)
    return optimizer
