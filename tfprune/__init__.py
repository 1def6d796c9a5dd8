"""tfprune: structured channel pruning for Keras 3."""
