"""What every `tfprune` command shares: errors, model loading, output
checks, number types."""

import argparse
import math
import os
import zipfile

from tfprune.errors import CliError


def load_model(path):
    """Loads a `.keras` model file, or explains in one line why not.

    A file that is not a `.keras` archive (random bytes, a text file, a zip
    without the model's config) is reported as such, before Keras sees it.
    """
    import keras

    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory; give a .keras model file")
    if not path.endswith((".keras", ".h5")):
        raise CliError(f"{path}: expected a .keras model file")
    if path.endswith(".keras"):
        _check_keras_archive(path)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"{path}: not a valid .keras file ({first})") from None


def _check_keras_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        reason = "not a zip archive" if isinstance(e, zipfile.BadZipFile) else str(e)
        raise CliError(f"{path}: not a valid .keras file ({reason})") from None
    if "config.json" not in names:
        raise CliError(f"{path}: not a valid .keras file (the archive has no "
                       "config.json; it was not written by model.save)")


def read_text(path, what="file"):
    """The text of an input file, or a one-line error."""
    if not os.path.isfile(path):
        raise CliError(f"no such {what}: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise CliError(f"{path}: the {what} is not UTF-8 text") from None


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def check_outputs(inputs=(), outputs=(), ext=None, overwrite=True):
    """Checks every file a command will write, before any work starts.

    Each output must: have the right extension; lie in an existing,
    writable directory; not be a directory; not be one of the inputs or
    another output (real paths are compared, so a symlink or hard link to
    an input is caught); and, with `overwrite=False`, not exist yet.

    Args:
        inputs: paths the command reads (None entries are skipped).
        outputs: paths the command writes, each a path or a tuple
            `(path, ext, option)` giving its own extension and the option
            that named it (for the message); None entries are skipped.
        ext: the extension every output without its own must have, e.g.
            ".keras" (".h5" is refused there: tfprune cannot read it back).
        overwrite: False to refuse outputs that already exist.

    Raises:
        CliError: naming the path and what to do.

    Example:

    ```python
    from tfprune.cli.common import check_outputs
    check_outputs(inputs=["model.keras"],
                  outputs=["slim.keras", ("plan.json", ".json", "--plan")], ext=".keras")
    ```
    """
    inputs = [p for p in inputs if p]
    seen = []
    for item in outputs:
        path, want, option = item if isinstance(item, tuple) else (item, ext, None)
        if not path:
            continue
        label = f"{option} {path}" if option else path
        for other in inputs:
            if _same_file(path, other):
                raise CliError(f"{label} would overwrite the input {other}; "
                               "choose another output path")
        for other, other_label in seen:
            if _same_file(path, other):
                raise CliError(f"{label} and {other_label} are the same file; "
                               "give each output its own path")
        if want and not path.endswith(want):
            hint = ""
            if want == ".keras" and path.lower().endswith((".h5", ".hdf5")):
                hint = (" (tfprune writes the .keras format only; an .h5 name "
                        "would hold a file tfprune cannot read back)")
            raise CliError(f"{label}: the file name must end with {want}{hint}")
        if os.path.isdir(path):
            raise CliError(f"{label} is a directory; give a file name")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CliError(f"{label}: the directory {directory} does not exist; "
                           "create it first")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise CliError(f"{label}: the directory {directory} is not writable")
        if not overwrite and os.path.lexists(path):
            raise CliError(f"{label} already exists; pass --force to overwrite it")
        seen.append((path, label))


def fmt_count(n):
    return f"{n:,.0f}"


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _finite(text, what):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def fraction_or_count(text):
    value = _finite(text, "a fraction like 0.5 or a count")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_float(text):
    value = _finite(text, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def nonnegative_float(text):
    value = _finite(text, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def unit_interval(text):
    """A number in [0, 1)."""
    value = _finite(text, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def latency_target(text):
    """A --target-latency: a number (fraction <= 1, ms > 1) or "0.8ms"."""
    if text.strip().lower().endswith("ms"):
        try:
            value = float(text.strip()[:-2])
        except ValueError:
            value = -1.0
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"expected milliseconds like 0.8ms, got {text!r}")
        return text.strip()
    return fraction_or_count(text)


def round_to_arg(text):
    """A --round-to: a whole number >= 1, or "auto"."""
    if text.strip().lower() == "auto":
        return "auto"
    return positive_int(text)
