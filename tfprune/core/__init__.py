"""The pruning core: channel graph, layer registry, plan, cost and rebuild.

Nothing here knows about a particular pruning method; every method produces
a `PruningPlan` and the core turns it into a slimmer model.
"""
