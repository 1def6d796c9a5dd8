"""Channel importance criteria, and fitting a plan to a params/MACs budget."""
