"""`tfprune.prune`: one call from a model and a target to a plan."""

import warnings

from tfprune.core.finite import check_finite
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.ranking.budget import fit_plan
from tfprune.ranking.importance import CRITERIA

_UNSET = object()


def prune(model, criterion="group_l1", target_macs=None, target_params=None,
          scope="global", round_to=1, target_latency=None, latency_table=None, *,
          method=_UNSET):
    """Makes a `PruningPlan` that meets a MACs, params and/or latency target.

    Args:
        model: a functional or Sequential `keras.Model` (or its
            `ChannelGraph`).
        criterion: channel-importance criterion: "group_l1" (default) or
            "group_l2" (norms of the filters writing each channel, of the
            consumers' input slices reading it and BatchNorm |gamma|: see
            `tfprune.importance.group_magnitude`), "l1" or "l2" (only the
            filters writing it), or "bn" (|gamma| of BatchNormalization).
            "group_l1" is the default because, fine-tuned, it kept 0.24 to
            0.26 points more accuracy than "l1" on resnet20 / Fashion-MNIST
            at 33% of the MACs, and as much at 50% and 20% (BENCHMARKS.md).
        target_macs: fraction of the original MACs (e.g. 0.5) or an absolute
            number of MACs; finite and positive.
        target_params: the same for the number of parameters.
        scope: "global" (one ranking over all layers, non-uniform widths) or
            "uniform" (every group loses the same fraction).
        round_to: keep widths multiples of this (e.g. 8 for mobile kernels);
            "auto" keeps only the widths `latency_table` measured.
        target_latency: predicted LiteRT latency: a fraction (<= 1) of the
            original's predicted latency (e.g. 0.5), milliseconds (> 1), or
            a string such as "0.8ms" for sub-millisecond targets. Needs
            `latency_table`.
        latency_table: a `tfprune.latency.LatencyTable` measured for this
            model; a table of another model raises
            `LatencyTableMismatchError`.
        method: the old name of `criterion` (deprecated: the CLI's
            `--method` names a pruning method such as hfp or ga).

    Returns:
        A `PruningPlan`; pass it to `tfprune.rebuild`.

    Raises:
        NonFiniteWeightsError: the model holds NaN or infinite weights.
        ValueError: an unknown criterion, or a target that is not a
            finite positive number.

    Example:

    ```python
    plan = tfprune.prune(model, target_macs=0.5)
    slim = tfprune.rebuild(model, plan)

    table = tfprune.latency.LatencyTable.measure(model, threads=1)
    plan = tfprune.prune(model, "l1", target_latency=0.5, latency_table=table)
    ```
    """
    if method is not _UNSET:
        warnings.warn("tfprune.prune(method=...) is deprecated; use "
                      "criterion=... (the channel-importance criterion).",
                      DeprecationWarning, stacklevel=2)
        criterion = method
    if criterion not in CRITERIA:
        raise ValueError(
            f"unknown criterion {criterion!r}; choose one of {sorted(CRITERIA)}.")
    graph = model if isinstance(model, ChannelGraph) else analyze(model)
    check_finite(graph.model)
    scores = CRITERIA[criterion](graph)
    return fit_plan(graph, scores, target_macs=target_macs,
                    target_params=target_params, scope=scope, round_to=round_to,
                    target_latency=target_latency, latency_table=latency_table)
