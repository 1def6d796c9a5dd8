"""Turns channel scores into a plan that meets a `Budget`.

Shared by every method that ranks channels: it decides how many channels each
group keeps (uniformly, or by one global ranking) and searches for the least
pruning whose cost is within the budget.
"""

import heapq
import math

import numpy as np

from tfprune.core.budget import check_budget
from tfprune.core.cost import cost
from tfprune.core.finite import check_finite_scores
from tfprune.core.plan import PruningPlan
from tfprune.errors import TargetUnreachableError

SCOPES = ("global", "uniform")


def plan_figures(graph, limits, plan, latency_table=None):
    """The figures of `plan` that some limit constrains: name -> value."""
    needed = {k for _, k in limits}
    figures = {}
    if needed & {"macs", "params"}:
        c = cost(graph, plan)
        figures.update({k: getattr(c, k) for k in needed & {"macs", "params"}})
    if "latency" in needed:
        figures["latency"] = latency_table.predict(plan)
    return figures


def _round_keep(n, size, round_to):
    """Kept count rounded up to a multiple of round_to (or the whole group)."""
    n = max(n, 1)
    if round_to > 1:
        n = max(round_to, math.ceil(n / round_to) * round_to)
    return min(n, size)


def _auto_keep(n, steps):
    """The narrowest of `steps` (ascending, the last is the full width) >= n."""
    n = max(n, 1)
    for w in steps:
        if w >= n:
            return w
    return steps[-1]


def plan_from_counts(graph, scores, counts):
    """Keeps the `counts[gid]` highest-scoring channels of each group."""
    keep = {}
    for gid, n in counts.items():
        group = graph.groups[gid]
        if n < group.size:
            # stable: ties keep the lower index
            order = np.argsort(-scores[gid], kind="stable")
            kept = set(order[:n].tolist())
            for part in group.segments:  # every part keeps its best channel
                if not kept.intersection(part.tolist()):
                    kept.add(int(part[np.argmax(scores[gid][part])]))
            keep[gid] = np.array(sorted(kept))
    return PruningPlan(graph, keep)


def fit_plan(graph, scores, budget, scope="global", normalize=True):
    """The least-pruned plan whose cost meets every target of `budget`.

    Args:
        graph: a `ChannelGraph`.
        scores: dict group id -> per-channel scores (higher = keep).
        budget: a `tfprune.Budget`. With its latency `table`, scope="global"
            ranks by score per millisecond saved (see `_latency_moves`), and
            `round_to="auto"` keeps only the widths the table measured.
        scope: "global" ranks all channels together, after dividing each
            group's scores by the group's mean (so layers of different fan-in
            compare). "uniform" prunes the same fraction of every group.
        normalize: with scope="global", divide each group's scores by their
            mean first; pass False for scores already on one scale (gates).

    Returns:
        A `PruningPlan`.

    Raises:
        NonFiniteWeightsError: a prunable group's scores hold NaN or inf.
        TargetUnreachableError: when even the smallest plan (one channel, or
            `round_to`, per prunable group) is above the target.

    Example:

    ```python
    from tfprune.ranking.fit import fit_plan
    graph = tfprune.analyze(model)
    scores = tfprune.ranking.importance.magnitude(graph, p=1)
    plan = fit_plan(graph, scores, tfprune.Budget(macs=0.5))
    ```
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}.")
    check_budget(budget)
    latency_table = budget.table
    limits = [(v, k) for k, v in budget.resolve(graph).items()]  # checks the table
    round_to = budget.round_to
    if round_to == "auto":
        steps_of = {g.id: (latency_table.steps(g.id) if g.id in latency_table.groups
                           else [g.size]) for g in graph.prunable_groups}

        def keep_n(n, group):
            return _auto_keep(n, steps_of[group.id])
        round_to = 0  # not 1: no refill of single channels
    else:
        def keep_n(n, group):
            return _round_keep(n, group.size, round_to)
    base = cost(graph)
    base_figures = {"macs": base.macs, "params": base.params,
                    "latency": getattr(latency_table, "base_ms", None)}
    groups = graph.prunable_groups
    check_finite_scores({g.id: scores[g.id] for g in groups}, graph)

    if scope == "uniform":
        def counts_at(t):  # t in [0, 1]: fraction of each group removed
            return {g.id: keep_n(math.ceil(g.size * (1 - t)), g) for g in groups}
        steps = 1.0
    else:
        norm = {g.id: scores[g.id] / (np.mean(scores[g.id]) + 1e-12) if normalize
                else scores[g.id] for g in groups}
        if latency_table is not None:
            def widths_of(g):
                if round_to == 0:  # "auto"
                    return steps_of[g.id]
                return list(range(round_to, g.size, round_to)) + [g.size]
            moves = _latency_moves(groups, norm, latency_table, widths_of)

            def counts_at(t):  # t: width steps taken, in the order of `moves`
                counts = {g.id: g.size for g in groups}
                for gid, w in moves[:int(round(t))]:
                    counts[gid] = w
                return {g.id: keep_n(counts[g.id], g) for g in groups}
            steps = float(len(moves))
        else:
            flat = [(s, g.id) for g in groups for s in norm[g.id]]
            removals = [flat[i][1] for i in
                        sorted(range(len(flat)), key=lambda i: flat[i][0])]

            def counts_at(t):  # t: channels removed, lowest scores first
                removed = {g.id: 0 for g in groups}
                for gid in removals[:int(round(t))]:
                    removed[gid] += 1
                return {g.id: keep_n(g.size - removed[g.id], g) for g in groups}
            steps = float(len(removals))

    def plan_at(t):
        return plan_from_counts(graph, scores, counts_at(t))

    def fits(plan):
        f = plan_figures(graph, limits, plan, latency_table)
        return all(f[k] <= v for v, k in limits)

    smallest = plan_at(steps)
    if not fits(smallest):
        f = plan_figures(graph, limits, smallest, latency_table)
        got = ", ".join(f"{k} {_fmt(k, f[k])} ({f[k] / base_figures[k]:.3f} "
                        f"of the original) > target {_fmt(k, v)}"
                        for v, k in limits if f[k] > v)
        raise TargetUnreachableError(
            f"target cannot be met: pruning every prunable group to its minimum "
            f"still gives {got}. Ask for a larger target, lower round_to, or "
            "make more layers prunable (see `tfprune inspect`).")
    lo, hi = 0.0, steps  # fits(hi) holds
    integer = scope == "global"
    for _ in range(60):
        if (hi - lo) <= (1 if integer else 1e-4):
            break
        mid = (lo + hi) / 2
        mid = math.floor(mid) if integer else mid
        if mid <= lo:
            break
        if fits(plan_at(mid)):
            hi = mid
        else:
            lo = mid
    best = plan_at(hi)
    if integer and round_to == 1:
        best = _refill(graph, best, norm, limits, latency_table)
    return best


def _latency_moves(groups, norm, table, widths_of):
    """Width steps `(group id, new width)` in the order they are taken.

    With a latency table the global ranking weighs what channels are worth
    against the time their removal saves (the knapsack view of HALP, Shen
    et al. 2022): every group can step down to its next allowed width
    (`widths_of(group)`: every width, multiples of `round_to`, or the widths
    the table measured), and the step taken next is the one that gives up
    the least normalised score per millisecond saved, as the table predicts
    it. Within a group the lowest-scoring channels go first. Steps that save
    no time (a flat stretch of the table, or a group the table does not
    cover) come after all that do, cheapest in score first.
    """
    ranked = {g.id: np.sort(norm[g.id]) for g in groups}  # lowest first
    size = {g.id: g.size for g in groups}
    allowed = {g.id: sorted(w for w in set(widths_of(g)) if 1 <= w < g.size)
               for g in groups}
    width = dict(size)

    def key(gid):
        target = allowed[gid][-1]
        lost = float(ranked[gid][size[gid] - width[gid]:size[gid] - target].sum())
        saved = 0.0
        if gid in table.groups:
            saved = table.group_ms(gid, width[gid]) - table.group_ms(gid, target)
        return ((0, lost / saved) if saved > 0 else (1, lost)), target

    heap = []
    for gid in size:
        if allowed[gid]:
            k, target = key(gid)
            heap.append((k, gid, target))
    heapq.heapify(heap)
    moves = []
    while heap:
        _, gid, target = heapq.heappop(heap)
        moves.append((gid, target))
        width[gid] = target
        allowed[gid].pop()
        if allowed[gid]:
            k, nxt = key(gid)
            heapq.heappush(heap, (k, gid, nxt))
    return moves


def _fmt(key, value):
    return f"{value:.3f} ms" if key == "latency" else f"{value:,.0f}"


def _refill(graph, plan, scores, limits, latency_table=None):
    """Gives channels back, best first, while the plan still fits.

    Removing the last channel the search needed may overshoot the target by
    a whole channel's cost (a wide residual stream's channel is expensive);
    cheaper channels of other groups often fit back in the slack. A
    channel's cost is estimated once per group, so only channels that can
    fit are tried.
    """
    keep = {gid: set(idx.tolist()) for gid, idx in plan.keep.items()}
    current = plan_figures(graph, limits, plan, latency_table)

    def slack(f):
        return {k: v - f[k] for v, k in limits}

    def with_channel(gid, index):
        trial = {g: sorted(k) for g, k in keep.items()}
        trial[gid] = sorted(keep[gid] | {index})
        return PruningPlan(graph, trial)

    candidates, delta = [], {}
    for group in graph.prunable_groups:
        missing = [i for i in range(group.size) if i not in keep[group.id]]
        if not missing:
            continue
        f = plan_figures(graph, limits, with_channel(group.id, missing[0]), latency_table)
        delta[group.id] = {k: f[k] - current[k] for _, k in limits}
        candidates.extend((scores[group.id][i], group.id, i) for i in missing)
    candidates.sort(key=lambda t: -t[0])
    room = slack(current)
    for _, gid, index in candidates:
        if any(delta[gid][k] > room[k] for k in room):
            continue
        trial = with_channel(gid, index)
        f = plan_figures(graph, limits, trial, latency_table)
        if all(f[k] <= v for v, k in limits):
            keep[gid].add(index)
            plan, room = trial, slack(f)
    return plan
