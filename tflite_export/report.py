"""The `.tflite` half of `tfprune report`: latency and time per op type.

tfprune never imports tflite_export; it finds `profile_pair` through the
`tfprune.profilers` entry point (see setup.py) when `tfprune.comparison.report` is given
two `.tflite` files.
"""

from tflite_export.benchmark import compare, compare_profiles


def profile_pair(original, slim, threads=1, runs=50):
    """Times two `.tflite` files interleaved and profiles them per op type.

    Args:
        original: the unpruned model's `.tflite` file.
        slim: the pruned model's `.tflite` file.
        threads: LiteRT interpreter threads.
        runs: timed runs of each whole model; the per-node profile uses a
            fifth as many rounds (at least 5).

    Returns:
        Two dicts (original, slim) with `size_bytes`, `median_ms`, `p90_ms`
        and `ops_ms` (op type -> milliseconds, each node timed alone and
        summed), plain data for `tfprune.comparison.report`.

    Example:

    ```python
    from tflite_export import convert
    from tflite_export.report import profile_pair
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    convert(model, "base.tflite")
    convert(slim, "slim.tflite")
    base, small = profile_pair("base.tflite", "slim.tflite", threads=1)
    print(small["median_ms"] / base["median_ms"], small["ops_ms"])
    ```
    """
    reports = compare([original, slim], threads=threads, runs=runs)
    profiles = compare_profiles([original, slim], threads=threads,
                                runs=max(5, runs // 5))
    return [{"size_bytes": r.size_bytes, "median_ms": r.median_ms, "p90_ms": r.p90_ms,
             "ops_ms": {op: row["ms"] for op, row in p.by_op().items()}}
            for r, p in zip(reports, profiles)]
