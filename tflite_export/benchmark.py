"""Timing `.tflite` files with LiteRT, the runtime an Android app uses.

Models run in `ai_edge_litert.interpreter.Interpreter` with its default op
resolver, which hands the graph to XNNPACK (the CPU delegate Android's LiteRT
applies by default), and with a settable thread count.

Latency is the wall time of `invoke()` alone (inputs are set once, as
`benchmark_model` does), after warm-up runs; reports give the median and the
90th percentile. `compare` times several files interleaved (run 1 of every
file, then run 2 of every file, ...), so a slow moment of the machine hits
all of them alike and their ratios stay fair.

The interpreter's Python API has no per-op profiler (that lives in the C++
`benchmark_model` tool, not in the wheel). `profile` gets one another way:
it cuts the file into one-node models (`tflite_model.single_op_models`) and
times each with the same interpreter, threads and XNNPACK (interleaved, as
`compare` does, each timed run right after an untimed one of the same
node). The sum of the nodes is close to the whole model; the difference is
per-call overhead and cache effects (a node timed alone finds its weights and
input in cache).
"""

import dataclasses
import json
import os
import time

import numpy as np

from tflite_export import tflite_model
from tfprune.compat import litert_ops


@dataclasses.dataclass
class BenchmarkReport:
    """Latency, size and ops of one `.tflite` file.

    Attributes:
        path: the file.
        size_bytes: its size.
        quantization: "none", "float16", "dynamic" or "int8" (from the JSON
            side file when there is one, else read from the tensor types).
        threads: interpreter threads.
        runs: timed runs (after `warmup` untimed ones).
        median_ms: median latency of one `invoke()`.
        p90_ms: 90th percentile latency.
        mean_ms: mean latency.
        min_ms: fastest run.
        macs: multiply-accumulates of one call, read from the file.
        ops: dict op name -> count.
        input_shape: shape of the input tensor.
        xnnpack: whether the XNNPACK delegate took part of the graph.
        latencies_ms: every timed run, in order.
    """

    path: str
    size_bytes: int
    quantization: str
    threads: int
    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    macs: int
    ops: dict
    input_shape: tuple
    xnnpack: bool
    latencies_ms: list = dataclasses.field(repr=False, default_factory=list)

    def as_dict(self, with_latencies=False):
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        if not with_latencies:
            d.pop("latencies_ms")
        return d


@dataclasses.dataclass
class OpTime:
    """One node of a profile: what it is and how long it took alone."""

    index: int
    op: str
    output_shape: tuple
    macs: int
    median_ms: float


@dataclasses.dataclass
class Profile:
    """Where the time of one `.tflite` file goes, node by node.

    Attributes:
        path: the file.
        threads: interpreter threads.
        whole_ms: median latency of the whole model.
        nodes: `OpTime` per node, in execution order.
    """

    path: str
    threads: int
    whole_ms: float
    nodes: list

    @property
    def sum_ms(self):
        return float(sum(n.median_ms for n in self.nodes))

    def by_op(self):
        """Dict op -> {"count", "ms", "share", "macs"}, slowest op first."""
        total = self.sum_ms or 1.0
        out = {}
        for n in self.nodes:
            row = out.setdefault(n.op, {"count": 0, "ms": 0.0, "share": 0.0, "macs": 0})
            row["count"] += 1
            row["ms"] += n.median_ms
            row["macs"] += n.macs
        for row in out.values():
            row["share"] = row["ms"] / total
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["ms"]))

    def summary(self, top=10):
        """Lines for people: the whole model, then time per op type and
        the `top` slowest nodes."""
        lines = [f"{self.path}: whole model {self.whole_ms:.3f} ms, sum of "
                 f"{len(self.nodes)} nodes timed alone {self.sum_ms:.3f} ms "
                 f"({self.threads} thread{'s' if self.threads > 1 else ''})",
                 f"{'op':<22} {'nodes':>5} {'ms':>9} {'share':>6} {'GMAC/s':>7}"]
        for op, row in self.by_op().items():
            rate = row["macs"] / row["ms"] / 1e6 if row["macs"] and row["ms"] else 0
            lines.append(f"{op:<22} {row['count']:>5} {row['ms']:>9.3f} "
                         f"{row['share']:>6.1%} {rate:>7.1f}")
        lines.append("slowest nodes:")
        for n in sorted(self.nodes, key=lambda n: -n.median_ms)[:top]:
            lines.append(f"  #{n.index:<3} {n.op:<20} out {list(n.output_shape)} "
                         f"{n.median_ms:.3f} ms")
        return "\n".join(lines)


def _interpreter(content, threads, xnnpack):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}.")
    resolver = (OpResolverType.AUTO if xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter = Interpreter(model_content=content, num_threads=threads,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            value = rng.standard_normal(d["shape"]).astype(dtype)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -128), min(info.max, 127) + 1,
                                 d["shape"]).astype(dtype)
        else:
            value = np.zeros(d["shape"], dtype)
        interpreter.set_tensor(d["index"], value)
    return interpreter


def _delegated(interpreter):
    # Once XNNPACK has claimed nodes, a node named "DELEGATE" is appended
    # that runs them in their place.
    return any(op.get("op_name") == "DELEGATE" for op in litert_ops(interpreter))


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        content = f.read()
    try:
        tflite_model.read(content)  # a clear error for a file that is no model
    except Exception as e:
        raise ValueError(f"{path}: {e}") from None
    return content


def _quantization(path, details):
    side = os.path.splitext(path)[0] + ".json"
    try:
        with open(side) as f:
            meta = json.load(f)
        if meta.get("model") == os.path.basename(path):
            return meta["quantization"]
    except (OSError, ValueError, KeyError):
        pass
    return details.quantization


def _time(interpreters, runs, warmup, rewarm=False):
    """Interleaved timing: run r of each interpreter, rotating the order.

    With `rewarm`, each timed run follows an untimed run of the same
    interpreter, so it finds its weights and input in cache, as a node does
    in the whole model more than when hundreds of others ran in between.
    """
    for interpreter in interpreters:
        for _ in range(warmup):
            interpreter.invoke()
    times = [[] for _ in interpreters]
    n = len(interpreters)
    for r in range(runs):
        for k in range(n):
            i = (r + k) % n  # no file is always first after a pause
            if rewarm:
                interpreters[i].invoke()
            start = time.perf_counter()
            interpreters[i].invoke()
            times[i].append((time.perf_counter() - start) * 1e3)
    return times


def compare(paths, threads=1, runs=100, warmup=10, xnnpack=True):
    """Times several `.tflite` files interleaved, in one process.

    Args:
        paths: the files.
        threads: interpreter threads for every file.
        runs: timed runs per file.
        warmup: untimed runs per file before timing.
        xnnpack: use the XNNPACK delegate (as LiteRT on Android does).

    Returns:
        A list of `BenchmarkReport`, in the order of `paths`.

    Example:

    ```python
    from tflite_export import compare, convert
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    convert(model, "base.tflite")
    convert(slim, "slim.tflite")
    base, small = compare(["base.tflite", "slim.tflite"], threads=1)
    print(small.median_ms / base.median_ms, small.macs / base.macs)
    ```
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int, got {runs!r}.")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}.")
    contents = [_read(p) for p in paths]
    details = [tflite_model.model_info(c) for c in contents]
    interpreters = [_interpreter(c, threads, xnnpack) for c in contents]
    times = _time(interpreters, runs, warmup)
    reports = []
    for path, content, info, interp, t in zip(paths, contents, details,
                                              interpreters, times):
        t = np.asarray(t)
        reports.append(BenchmarkReport(
            path=os.fspath(path), size_bytes=len(content),
            quantization=_quantization(os.fspath(path), info), threads=threads,
            runs=runs, median_ms=float(np.median(t)),
            p90_ms=float(np.percentile(t, 90)), mean_ms=float(t.mean()),
            min_ms=float(t.min()), macs=info.macs, ops=info.op_counts,
            input_shape=tuple(info.inputs[0].shape) if info.inputs else (),
            xnnpack=_delegated(interp), latencies_ms=t.round(5).tolist()))
    return reports


def benchmark(path, threads=1, runs=100, warmup=10, xnnpack=True):
    """Times one `.tflite` file with the LiteRT interpreter.

    Args:
        path: the `.tflite` file.
        threads: interpreter threads.
        runs: timed runs.
        warmup: untimed runs before timing.
        xnnpack: use the XNNPACK delegate (as LiteRT on Android does).

    Returns:
        A `BenchmarkReport`: median and p90 latency (ms), size (bytes),
        ops, MACs.

    Example:

    ```python
    from tflite_export import benchmark, convert
    convert(model, "model.tflite")
    report = benchmark("model.tflite", threads=1, runs=100)
    print(report.median_ms, report.p90_ms, report.size_bytes, report.ops)
    ```
    """
    return compare([path], threads=threads, runs=runs, warmup=warmup,
                   xnnpack=xnnpack)[0]


def profile(path, threads=1, runs=20, warmup=3, xnnpack=True):
    """Per-node latency of a `.tflite` file, each node timed alone.

    Args:
        path: the `.tflite` file.
        threads: interpreter threads.
        runs: timed runs per node (and for the whole model).
        warmup: untimed runs first.
        xnnpack: use the XNNPACK delegate.

    Returns:
        A `Profile`; `profile.summary()` prints time per op type and the
        slowest nodes.

    Example:

    ```python
    from tflite_export import convert, profile
    convert(model, "model.tflite")
    print(profile("model.tflite").summary())
    ```
    """
    return compare_profiles([path], threads=threads, runs=runs, warmup=warmup,
                            xnnpack=xnnpack)[0]


def compare_profiles(paths, threads=1, runs=20, warmup=3, xnnpack=True):
    """`profile` for several files, timed interleaved.

    Every node of every file (and every whole model) gets one run per
    round, so a busy moment of the machine slows all of them alike and the
    files' profiles can be compared op by op.

    Args:
        paths: the `.tflite` files.
        threads: interpreter threads.
        runs: timed rounds.
        warmup: untimed rounds first.
        xnnpack: use the XNNPACK delegate.

    Returns:
        A list of `Profile`, in the order of `paths`.

    Example:

    ```python
    from tflite_export import compare_profiles, convert
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    convert(model, "base.tflite")
    convert(slim, "slim.tflite")
    base, small = compare_profiles(["base.tflite", "slim.tflite"])
    print(base.by_op()["CONV_2D"]["ms"], small.by_op()["CONV_2D"]["ms"])
    ```
    """
    contents = [_read(p) for p in paths]
    interpreters, owners = [], []  # owners[i] = (file index, OpInfo or None)
    for k, content in enumerate(contents):
        interpreters.append(_interpreter(content, threads, xnnpack))
        owners.append((k, None))
        for op, small in tflite_model.single_op_models(content):
            interpreters.append(_interpreter(small, threads, xnnpack))
            owners.append((k, op))
    times = _time(interpreters, runs, warmup, rewarm=True)
    whole = [0.0] * len(contents)
    nodes = [[] for _ in contents]
    for (k, op), t in zip(owners, times):
        if op is None:
            whole[k] = float(np.median(t))
        else:
            nodes[k].append(OpTime(op.index, op.op, tuple(op.output_shape), op.macs,
                                   float(np.median(t))))
    return [Profile(os.fspath(p), threads, w, n)
            for p, w, n in zip(paths, whole, nodes)]
