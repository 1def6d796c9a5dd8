"""Keras callbacks that drive tfprune's training-time methods.

Figures they write into `logs` show up in the progress bar's history, in
`CSVLogger` files and in TensorBoard without extra code.
"""

from tfprune.methods.hfp import HolisticBudget
from tfprune.methods.smof import SMOFSchedule

__all__ = ["HolisticBudget", "SMOFSchedule"]
