"""`tfprune.prune`: one call from a model and a budget to a plan."""

from tfprune.core.budget import Budget
from tfprune.core.finite import check_finite
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.ranking.fit import fit_plan
from tfprune.ranking.importance import CRITERIA


def prune(model, budget=None, *, criterion="group_l1", scope="global", target_macs=None,
          target_params=None, target_latency=None, latency_table=None, round_to=None):
    """Makes a `PruningPlan` that meets a MACs, params and/or latency budget.

    Channels are ranked by a magnitude criterion and the least pruning that
    fits the budget is kept.

    Args:
        model: a functional or Sequential `keras.Model` (or its
            `ChannelGraph`).
        budget: a `tfprune.Budget`. Instead, the keyword targets below make
            one (not both).
        criterion: channel-importance criterion: "group_l1" (default) or
            "group_l2" (norms of the filters writing each channel, of the
            consumers' input slices reading it and BatchNorm |gamma|: see
            `tfprune.ranking.importance.group_magnitude`), "l1" or "l2" (only
            the filters writing it), or "bn" (|gamma| of BatchNormalization).
        scope: "global" (one ranking over all layers, non-uniform widths) or
            "uniform" (every group loses the same fraction).
        target_macs, target_params, target_latency, latency_table, round_to:
            the `Budget`'s `macs`, `params`, `latency`, `table` and
            `round_to`, as keywords.

    Returns:
        A `PruningPlan`; pass it to `tfprune.rebuild`.

    Raises:
        NonFiniteWeightsError: the model holds NaN or infinite weights.
        ValueError: an unknown criterion or scope, or a bad budget.

    Example:

    ```python
    plan = tfprune.prune(model, tfprune.Budget(macs=0.5))
    slim = tfprune.rebuild(model, plan)
    plan = tfprune.prune(model, target_params=0.5, criterion="l1", scope="uniform")
    ```
    """
    budget = Budget.of(budget, target_macs=target_macs, target_params=target_params,
                       target_latency=target_latency, latency_table=latency_table,
                       round_to=round_to)
    if criterion not in CRITERIA:
        raise ValueError(
            f"unknown criterion {criterion!r}; choose one of {sorted(CRITERIA)}.")
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    check_finite(graph.model)
    scores = CRITERIA[criterion](graph)
    return fit_plan(graph, scores, budget, scope=scope)
