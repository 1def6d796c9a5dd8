"""Ctrl-C on the command line: one line, exit status 130, no partial file.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens
to be. Inside a garbage-collector callback or a `__del__` (JAX registers
one, for instance) the exception is printed as "Exception ignored" and
dropped, and the command would go on running. `handled()` makes Ctrl-C
dependable: a dropped interrupt is delivered again, a command that has not
stopped a few seconds after Ctrl-C is ended (temporary files removed), and a
second Ctrl-C ends it at once.
"""

import _thread
import contextlib
import os
import signal
import sys
import threading

from tfprune.core import fileio

# How long a command may take to unwind after Ctrl-C before it is ended.
GRACE_SECONDS = 10.0

MESSAGE = "tfprune: interrupted"


class _Interrupts:
    def __init__(self):
        self.count = 0
        self.redelivering = False
        self.reported = False
        self.timer = None

    def report(self):
        """Prints the one line, once."""
        if not self.reported:
            self.reported = True
            print(MESSAGE, file=sys.stderr, flush=True)

    def quit_now(self):
        fileio.remove_pending()
        self.report()
        os._exit(130)

    def on_sigint(self, signum, frame):
        if self.redelivering:  # our own re-delivery, not a second Ctrl-C
            self.redelivering = False
            raise KeyboardInterrupt
        self.count += 1
        if self.count > 1:
            self.quit_now()
        self.timer = threading.Timer(GRACE_SECONDS, self.quit_now)
        self.timer.daemon = True
        self.timer.start()
        raise KeyboardInterrupt


@contextlib.contextmanager
def handled():
    """Installs the SIGINT handling for one command; restores it after.

    Yields an object whose `report()` prints "tfprune: interrupted" once.

    Example:

    ```python
    with handled() as interrupts:
        try:
            run()
        except KeyboardInterrupt:
            interrupts.report()
    ```
    """
    state = _Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous_handler = signal.signal(signal.SIGINT, state.on_sigint)
    previous_hook = sys.unraisablehook

    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt):
            state.redelivering = True  # it was dropped: deliver it again
            _thread.interrupt_main(signal.SIGINT)
            return
        previous_hook(info)

    sys.unraisablehook = unraisable
    try:
        yield state
    finally:
        if state.timer is not None:
            state.timer.cancel()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGINT, previous_handler)
