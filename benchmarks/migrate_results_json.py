"""One-off: the rows of the old benchmarks/results.json into results.jsonl.

Run once when the log became append-only (results.json was then removed; it
lives on in git history). Each row keeps its fields and gains `commit: null`
(measured before provenance was recorded), `migrated_from: "results.json"`,
and `first_committed_in` / `first_committed_at`: the first commit of
results.json holding the identical row, and that commit's date, an upper
bound on when it was measured. A commit the old row carried itself is kept.

Usage: python -m benchmarks.migrate_results_json [--json benchmarks/results.json]
"""

import argparse
import json
import os
import subprocess

from benchmarks import results

OLD = os.path.join(results.HERE, "results.json")


def _history(rel):
    """[(commit, ISO date, rows)] of `rel` in git history, oldest first."""
    log = subprocess.run(["git", "-C", results.ROOT, "log", "--reverse",
                          "--format=%H %cI", "--", rel],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    out = []
    for line in filter(None, log):
        commit, date = line.split()
        shown = subprocess.run(["git", "-C", results.ROOT, "show", f"{commit}:{rel}"],
                               capture_output=True, text=True)
        if shown.returncode == 0:
            out.append((commit, date, json.loads(shown.stdout)))
    return out


def migrate(old=OLD, new=results.RESULTS):
    """Converts `old` into lines of `new`; returns the rows written."""
    if os.path.exists(new) and results.load(new):
        raise SystemExit(f"{new} already holds rows; the migration runs once")
    with open(old) as f:
        rows = json.load(f)
    history = _history(os.path.relpath(os.path.abspath(old), results.ROOT))
    out = []
    for row in rows:
        first = next(((c, d) for c, d, old_rows in history if row in old_rows), (None, None))
        migrated = dict(row)
        migrated.setdefault("commit", None)
        migrated["migrated_from"] = "results.json"
        migrated["first_committed_in"], migrated["first_committed_at"] = first
        out.append(migrated)
    with open(new, "a") as f:
        for row in out:
            f.write(json.dumps(row) + "\n")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=OLD)
    a = p.parse_args(argv)
    rows = migrate(a.json)
    print(f"{len(rows)} rows -> {results.RESULTS}")


if __name__ == "__main__":
    main()
