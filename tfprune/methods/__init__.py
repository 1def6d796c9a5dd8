"""Pruning methods, each a short recipe over the core and the ranking.

Every method is registered in `tfprune.methods.registry` and used one way
(`get_method(name).plan(...)` or `.attach(...)`). Methods import
`tfprune.core` and `tfprune.ranking`, never each other; `gates`,
`regularizers`, `distill` and `finetuning` are building blocks any method
may use. Importing this package registers the built-in methods.
"""

from tfprune.methods import hfp, magnitude, prunenet, prunetrain, search, smof  # noqa: F401
from tfprune.methods.registry import (
    Method,
    Option,
    TrainingSession,
    available_methods,
    get_method,
    register_method,
)

__all__ = ["Method", "Option", "TrainingSession", "available_methods", "get_method",
           "register_method"]
