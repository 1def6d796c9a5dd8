"""Ctrl-C on the command line: one line, exit status 130, no partial file.

Raising KeyboardInterrupt into a running TensorFlow step (Python's default)
can corrupt the runtime's heap: the process then aborts ("free(): invalid
next size") instead of exiting 130, and a KeyboardInterrupt raised inside a
garbage-collector callback (JAX registers some) is dropped altogether. So
the command does not unwind on Ctrl-C: it removes the temporary files that
`tfprune.fileio` has open, prints the one line and leaves at once.
Nothing else needs cleaning, since every output goes through fileio.
"""

import contextlib
import os
import signal
import sys
import threading

from tfprune import fileio

MESSAGE = "tfprune: interrupted"


class _Interrupts:
    def __init__(self):
        self.reported = False

    def report(self):
        """Prints the one line, once."""
        if not self.reported:
            self.reported = True
            print(MESSAGE, file=sys.stderr, flush=True)

    def on_sigint(self, signum, frame):
        fileio.remove_pending()
        self.report()
        sys.stdout.flush()
        os._exit(130)


@contextlib.contextmanager
def handled():
    """Installs the SIGINT handling for one command; restores it after.

    Yields an object whose `report()` prints "tfprune: interrupted" once
    (for a KeyboardInterrupt raised some other way, e.g. in a test).

    Example:

    ```python
    from tfprune.cli.interrupt import handled
    with handled() as interrupts:
        try:
            tfprune.prune(model, tfprune.Budget(macs=0.5))
        except KeyboardInterrupt:
            interrupts.report()
    ```
    """
    state = _Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous_handler = signal.signal(signal.SIGINT, state.on_sigint)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous_handler)
