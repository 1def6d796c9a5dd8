"""The pruning core: channel graph, layer registry, plan, cost, budget, rebuild.

Nothing here knows about a particular pruning method (an import-linter
contract checks it): every method produces a `PruningPlan` within a
`Budget`, and the core turns it into a slimmer model. Layers a method adds
while training fold away through their `LayerSpec`'s `fold` hook.
"""
