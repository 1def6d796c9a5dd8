"""Functions other packages register with tfprune through entry points.

tflite_export (which imports tfprune, never the reverse) supplies the
`.tflite` profiler of `tfprune.comparison.report` and the timer of latency tables this
way, as it supplies the `export` and `bench` commands.
"""

from tfprune.errors import TfpruneError


def find_plugin(group, name, needs, fallback):
    """The object registered as `name` in the entry-point `group`.

    Args:
        group: the entry-point group, e.g. "tfprune.timers".
        name: the entry's name, e.g. "tflite".
        needs: what the caller was doing, for the error ("timing .tflite files").
        fallback: what to pass from Python instead, for the error.

    Raises:
        TfpruneError: nothing is registered under that name.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise TfpruneError(
        f"{needs} needs tflite_export, which registers the '{name}' entry point "
        f"of '{group}': install tfprune with `pip install -e .` from its "
        f"repository (from Python, you can also pass {fallback})")
