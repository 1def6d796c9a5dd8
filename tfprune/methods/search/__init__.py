"""Search-based pruning: sensitivity analysis and the genetic channel search."""

from tfprune.methods.search.genetic import GeneticChannelSearch, plan, reconstruct
from tfprune.methods.search.sensitivity import Sensitivity, allocate, sensitivity

__all__ = ["GeneticChannelSearch", "Sensitivity", "allocate", "plan", "reconstruct", "sensitivity"]
