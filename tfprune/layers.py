"""Keras layers that tfprune inserts into models while they train."""

from tfprune.core.gates import ChannelGate
from tfprune.core.kernel_masks import KernelRingMask

__all__ = ["ChannelGate", "KernelRingMask"]
