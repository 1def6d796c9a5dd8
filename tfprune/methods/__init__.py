"""Pruning methods: each a short recipe over the core and the ranking.

Methods import `tfprune.core` and `tfprune.ranking`, never each other;
`regularizers` and `distill` are building blocks any method may use.
"""
