"""The magnitude criteria as registered methods: l1, l2, bn, group_l1, group_l2.

Each ranks channels by a weight statistic (`tfprune.ranking.importance`) and
keeps the least pruning that fits the budget (`tfprune.prune`).
"""

from tfprune.methods.registry import Method, Option, register_method
from tfprune.ranking.fit import SCOPES
from tfprune.ranking.prune import prune

_SUMMARIES = {
    "group_l1": "L1 norms of the filters writing each channel, the slices reading "
                "it and BatchNorm |gamma| (the default)",
    "group_l2": "as group_l1, with L2 norms",
    "l1": "L1 norms of the filters writing each channel",
    "l2": "L2 norms of the filters writing each channel",
    "bn": "|gamma| of the BatchNormalization after each channel",
}

SCOPE = Option("scope", str, "global", "global: one ranking over all layers; "
               "uniform: every group loses the same fraction", choices=SCOPES)


def _method(criterion):
    def plan(model, budget, data=None, scope="global"):
        return prune(model, budget, criterion=criterion, scope=scope)

    return Method(plan=plan, summary=_SUMMARIES[criterion], latency=True,
                  options=[SCOPE])


for _criterion in _SUMMARIES:
    register_method(_criterion, _method(_criterion))
