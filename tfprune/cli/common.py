"""What every `tfprune` command shares: errors, model loading, number types."""

import argparse
import os


def load_model(path):
    import keras

    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    if not path.endswith((".keras", ".h5")):
        raise CliError(f"{path}: expected a .keras model file")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"{path}: could not load the model ({first})") from None


class CliError(Exception):
    """Bad input to the command line: printed as one line, exit status 2."""


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


def fraction_or_count(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction like 0.5 or a count, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
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
