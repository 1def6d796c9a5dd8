"""Keras layers that tfprune inserts into models while they train."""

from tfprune.core.gates import ChannelGate

__all__ = ["ChannelGate"]
