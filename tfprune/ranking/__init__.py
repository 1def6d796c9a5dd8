"""Channel importance criteria, and fitting a plan to a `Budget`."""
