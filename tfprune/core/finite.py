"""Refusing NaN and infinite weights before they are ranked or sliced.

One NaN filter makes its group's scores NaN, which sorts anywhere and
corrupts a global ranking; an infinite kernel scores highest, is kept, and
the slim model outputs non-finite values. Neither can be pruned sensibly, so
tfprune stops with a message naming the weight instead.
"""

import keras
import numpy as np

from tfprune.errors import NonFiniteWeightsError

__all__ = ["check_finite", "check_finite_scores"]


def _describe(values):
    nan = int(np.isnan(values).sum())
    inf = int(np.isinf(values).sum())
    parts = [f"{nan} NaN value{'s' if nan != 1 else ''}"] if nan else []
    if inf:
        parts.append(f"{inf} infinite value{'s' if inf != 1 else ''}")
    return " and ".join(parts)


def check_finite(model, action="pruning"):
    """Raises if any floating-point weight of `model` is NaN or infinite.

    Args:
        model: a `keras.Model` (or a layer).
        action: what cannot go on, for the message ("pruning", ...).

    Raises:
        NonFiniteWeightsError: naming the first such layer and weight, e.g.
            "layer 'conv3' weight 'kernel' has 2 NaN values; retrain or
            fix the model before pruning".

    Example:

    ```python
    from tfprune.core.finite import check_finite
    check_finite(model)  # before ranking channels
    ```
    """
    for weight in model.weights:
        if "float" not in str(weight.dtype):
            continue
        values = keras.ops.convert_to_numpy(weight)
        if np.isfinite(values).all():
            continue
        path = getattr(weight, "path", None) or weight.name
        layer = path.rsplit("/", 1)[0] if "/" in path else path
        raise NonFiniteWeightsError(
            f"layer '{layer}' weight '{weight.name}' has {_describe(values)} "
            f"(of {values.size}); retrain or fix the model before {action} "
            "(a model with non-finite weights cannot be ranked or sliced "
            "meaningfully).")


def check_finite_scores(scores, graph=None):
    """Raises if any channel score is NaN or infinite.

    Args:
        scores: dict group id -> per-channel scores.
        graph: the `ChannelGraph`, to name the group's layers.

    Raises:
        NonFiniteWeightsError: naming the group.
    """
    for gid, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if np.isfinite(values).all():
            continue
        where = f"group {gid}"
        if graph is not None and 0 <= gid < len(graph.groups):
            where += f" (layers {', '.join(graph.groups[gid].producers[:3])})"
        raise NonFiniteWeightsError(
            f"the channel scores of {where} have {_describe(values)}; the "
            "model's weights (or the scores given) are not finite. Fix or "
            "retrain the model (see tfprune.core.finite.check_finite) before "
            "pruning.")
