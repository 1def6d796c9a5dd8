"""The benchmark log: benchmarks/results.jsonl, one JSON row a line, append-only.

A row is what one benchmark measured for one configuration (a model, a
method, a target, ...). `append` adds it at the end of the file together with
where it was measured: the git commit and whether the working tree had
uncommitted changes, the UTC date, the machine and the versions of the
libraries. Earlier lines are never rewritten: a rerun of a configuration adds
a new line, and BENCHMARKS.md (`benchmarks.report`) shows the latest row of
each configuration. Which fields name a configuration is said per kind of
row in `CONFIG_KEYS`.

Example:

    from benchmarks import results

    results.append({"kind": "accuracy", "framework": "torch-pruning",
                    "model": "resnet20", "method": "tp-l1-uniform",
                    "target": 0.5, "macs_ratio": 0.49, "test_acc": 0.92})
"""

import datetime
import fcntl
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results.jsonl")

# Defaults of fields that older rows or callers leave out.
DEFAULTS = {"kind": "accuracy", "framework": "tfprune",
            # accuracy rows before seeds were recorded used the protocol's seed
            "seed": 0,
            # PruneTrain rows before the proximal step existed
            "lasso": "subgradient"}

# The fields that name one configuration, per kind of row; rows of a kind
# not listed here are told apart by DEFAULT_CONFIG_KEYS. A later row of the
# same configuration supersedes an earlier one in BENCHMARKS.md; both stay
# in the log.
CONFIG_KEYS = {
    "accuracy": ("framework", "model", "method", "target", "scope", "round_to", "seed"),
    "selection": ("model", "method", "target", "target_params"),
    "fitness": ("model", "method", "target"),
    "steptime": ("model", "method"),
    "tool": ("model", "method"),
    "prunetrain": ("model", "method", "lasso", "penalty_ratio", "epochs", "reconfigure_every",
                   "dynamic_batch", "train_images", "batch_size"),
    "latency": ("framework", "model", "method", "target", "scope", "round_to",
                "quantization", "threads"),
    "latency_target": ("model", "method", "target_latency", "target_macs", "scope",
                       "round_to", "quantization", "threads"),
    "latency_equal": ("model", "method", "target_latency", "quantization", "threads"),
    "smof_latency": ("model", "input_shape", "method", "target", "quantization", "threads"),
}
DEFAULT_CONFIG_KEYS = ("framework", "model", "method")

# Fields `append` records itself; a row handed to it must not carry them.
PROVENANCE_FIELDS = ("commit", "dirty", "dirty_paths", "date", "run", "machine", "cores",
                     "cpu", "python", "versions")

# Distributions whose versions every row records: name in the row ->
# distribution names to try, first installed wins.
VERSIONED = {
    "tfprune": ("tfprune",),
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    "ai-edge-litert": ("ai-edge-litert", "ai-edge-litert-nightly"),
    "numpy": ("numpy",),
}

# Files the benchmarks write themselves: changes to them do not make a
# measurement's code "dirty".
OUTPUTS = ("benchmarks/results.jsonl", "BENCHMARKS.md", "benchmarks/figures",
           "benchmarks/profiles.md")

# One id per process: the rows measured together in one invocation share it.
_RUN = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{os.getpid()}"


def value(row, key):
    """`row[key]`, or its default when the row leaves it out (old rows)."""
    return row.get(key, DEFAULTS.get(key))


def config(row):
    """The configuration a row measures: (kind, values of its CONFIG_KEYS)."""
    kind = value(row, "kind")
    keys = CONFIG_KEYS.get(kind, DEFAULT_CONFIG_KEYS)
    return (kind,) + tuple(json.dumps(value(row, k), sort_keys=True) for k in keys)


def latest(rows):
    """The last row of each configuration, in the order of those last rows."""
    last = {}
    for i, row in enumerate(rows):
        last[config(row)] = i
    return [rows[i] for i in sorted(last.values())]


def first_commits(rows):
    """Short hashes of the commits that first held rows measured before
    provenance was recorded (`first_committed_in`), oldest first."""
    legacy = sorted((r.get("first_committed_at") or "", r["first_committed_in"][:7])
                    for r in rows if not r.get("commit") and r.get("first_committed_in"))
    return list(dict.fromkeys(sha for _, sha in legacy))


def load(path=RESULTS):
    """Every row of the log, oldest first.

    Raises:
        ValueError: a line is not a JSON object (names the file and line).
    """
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON row ({e.msg}); fix or "
                                 f"remove that line") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a row must be a JSON object")
            rows.append(row)
    return rows


def _git(*args):
    out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                         timeout=30)
    if out.returncode:
        raise OSError(out.stderr.strip())
    return out.stdout


def _version(dists):
    for name in dists:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def machine():
    """"N cores, CPU model" of this machine (the `machine` field of a row)."""
    return f"{os.cpu_count()} cores, {_cpu()}"


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _code_state():
    """(commit, dirty, dirty_paths) of the checkout, as it is now."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        excluded = [f":(exclude){p}" for p in OUTPUTS]
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                       *excluded).splitlines()
        dirty_paths = [line[3:] for line in changed]
        return commit, bool(dirty_paths), dirty_paths
    except (OSError, subprocess.SubprocessError):
        return None, None, []


def provenance():
    """Where and with what a row is measured now.

    Returns:
        A dict: `commit` (HEAD's full hash when this process started, None
        outside a git checkout), `dirty` (whether tracked files other than
        the benchmark outputs then differed from HEAD) and `dirty_paths`
        (the first 20 of them), `date` (UTC, ISO 8601), `run` (shared by the
        rows of one process), `machine` ("N cores, CPU model"), `cores`,
        `cpu`, `python`, and `versions` of tfprune, Keras, TensorFlow, LiteRT
        and NumPy (None where not installed).
    """
    commit, dirty, dirty_paths = _STARTED_AT
    tfprune_module = sys.modules.get("tfprune")
    versions = {name: _version(dists) for name, dists in VERSIONED.items()}
    if getattr(tfprune_module, "__version__", None):
        versions["tfprune"] = tfprune_module.__version__  # the code actually run
    cores, cpu = os.cpu_count(), _cpu()
    info = {"commit": commit, "dirty": dirty,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "run": _RUN, "machine": f"{cores} cores, {cpu}", "cores": cores, "cpu": cpu,
            "python": platform.python_version(), "versions": versions}
    if dirty:
        info["dirty_paths"] = dirty_paths[:20]
    return info


# The code a benchmark runs is what was checked out when its process started
# (and imported this module): a commit made while a long run goes on must not
# be credited with its rows.
_STARTED_AT = _code_state()


def _plain(obj):
    """JSON for NumPy scalars and arrays in rows."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"a row field of type {type(obj).__name__} cannot be written as "
                    f"JSON; convert it to a number, string, list or dict")


def _stamped(row):
    if not isinstance(row, dict):
        raise TypeError(f"a row must be a dict, not {type(row).__name__}")
    clash = [k for k in PROVENANCE_FIELDS if k in row]
    if clash:
        raise ValueError(f"row field {clash[0]!r} is recorded by results.append itself; "
                         f"leave it out of the row")
    return {**row, **provenance()}


def extend(rows, path=RESULTS, report=True):
    """Appends rows to the log in one locked write; returns them as stored.

    Args:
        rows: dicts of JSON-compatible values. `kind` (default "accuracy")
            and the fields of `CONFIG_KEYS[kind]` name the configuration;
            `framework` defaults to "tfprune" (a peer library's rows say
            e.g. "torch-pruning"). The fields of `PROVENANCE_FIELDS` are
            added here and must not be in the rows.
        path: the log (benchmarks/results.jsonl).
        report: also rewrite BENCHMARKS.md and its figures from the log
            (only when `path` is the default log).

    Benchmarks running side by side append to one log: the write happens
    under an exclusive lock (`path` + ".lock"), and lines already in the
    file are never touched.

    Example:

        results.extend([row_1thread, row_2threads])
    """
    stored = [_stamped(r) for r in rows]
    lines = "".join(json.dumps(r, default=_plain) + "\n" for r in stored)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, "a+b") as f:
            if f.tell():  # a last line without its newline (an edit by hand)
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    lines = "\n" + lines
            f.write(lines.encode())
            f.flush()
            os.fsync(f.fileno())
        if report and os.path.abspath(path) == RESULTS:
            _rewrite_report(path)
    return stored


def _rewrite_report(path):
    """BENCHMARKS.md and its figures from the log. A failure here must not end
    a long benchmark run whose rows are already safe: it is reported and the
    report can be rewritten later with `python -m benchmarks.report`."""
    from benchmarks import report

    try:
        report.write(load(path))
    except Exception as e:  # the rows are saved: say so and go on
        print(f"benchmarks.results: rows saved to {path}, but BENCHMARKS.md was not "
              f"rewritten ({type(e).__name__}: {e}); run `python -m benchmarks.report`",
              file=sys.stderr)


def append(row, path=RESULTS, report=True):
    """Appends one row to the log (see `extend`); returns it as stored.

    Example:

        results.append({"kind": "tool", "model": "ResNet50", "method": "rebuild",
                        "median_s": 0.43, "runs": 5})
    """
    return extend([row], path=path, report=report)[0]
