"""Keeps TensorFlow's native log off the `tfprune` command's stderr.

TensorFlow, XLA and LiteRT log from C++ straight to file descriptor 2 (the
absl start-up warning, oneDNN and CPU-instruction notices), before any
Python setting can silence them, so a user of the `tfprune` command would
see them around tfprune's own messages. When this process is the `tfprune`
command (the console script, or `python -m tfprune`) run without
`--verbose`, `silence_if_command()` points descriptor 2 at the null device
for the rest of the process and gives Python's `sys.stderr` the real
stderr: tfprune's messages, Python warnings and tracebacks still show,
native logs do not. `--verbose` leaves everything as it is. Imported by
`tfprune/__init__.py` before TensorFlow; a library user's process is never
touched.
"""

import os
import sys

_silenced = False


def is_command(argv=None, orig_argv=None):
    """Whether this process is the `tfprune` command, run without --verbose."""
    argv = sys.argv if argv is None else argv
    orig = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    command = bool(argv) and os.path.basename(argv[0]) == "tfprune"
    module = any(orig[i:i + 2] == ["-m", "tfprune"] for i in range(len(orig)))
    return (command or module) and "--verbose" not in argv + list(orig)


def silence_if_command():
    """Sends native logs to the null device if this is the quiet command."""
    global _silenced
    if _silenced or not is_command():
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        sys.stderr = os.fdopen(real, "w", buffering=1, errors="backslashreplace")
        _silenced = True
    except OSError:  # no descriptor 2 to redirect: nothing to keep quiet
        pass
