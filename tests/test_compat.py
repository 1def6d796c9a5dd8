"""Private Keras / LiteRT names are used in tfprune/compat.py only, on a
Keras version that compat.py was checked against."""

import os
import re

import keras

from tfprune import compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_keras_is_in_the_checked_range():
    low, high = compat.KERAS_RANGE
    assert compat.keras_supported(keras.__version__), (
        f"Keras {keras.__version__} is outside the range tfprune's private-Keras uses "
        f"were checked on ({low} <= version < {high}): re-check each use in "
        "tfprune/compat.py against this Keras, then widen KERAS_RANGE there and the "
        "bound in setup.py.")


def test_version_arithmetic():
    assert compat.version_tuple("3.15.1") == (3, 15, 1)
    assert compat.version_tuple("3.16.0rc1") == (3, 16, 0)
    assert compat.version_tuple("3.16.0.dev2026") == (3, 16, 0)
    assert compat.keras_supported("3.10.0") and compat.keras_supported("3.99")
    assert not compat.keras_supported("3.9.2") and not compat.keras_supported("4.0.0")
    assert not compat.keras_supported("2.15.0")


PRIVATE = re.compile(r"keras\.src\b|\._(maybe_symbolic_build|distribute_strategy|"
                     r"in_multi_worker_mode|tracker|get_ops_details)\b|"
                     r"\"_(distribute_strategy|in_multi_worker_mode)\"")


def test_private_names_appear_in_compat_only():
    offenders = []
    for package in ("tfprune", "tflite_export"):
        for base, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                path = os.path.join(base, name)
                if not name.endswith(".py") or path.endswith(os.path.join("tfprune",
                                                                          "compat.py")):
                    continue
                for number, line in enumerate(open(path), 1):
                    if PRIVATE.search(line):
                        offenders.append(f"{os.path.relpath(path, ROOT)}:{number}")
    assert offenders == []
