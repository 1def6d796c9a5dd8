"""The `tfprune` command line.

    tfprune inspect model.keras
    tfprune prune model.keras --method l1 --target-macs 0.5 -o slim.keras [--plan plan.json]

Bad input exits with status 2 and a one-line message, never a traceback.
"""

import argparse
import os
import sys


def _load_model(path):
    import keras

    if not os.path.exists(path):
        raise _CliError(f"no such file: {path}")
    if not path.endswith((".keras", ".h5")):
        raise _CliError(f"{path}: expected a .keras model file")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _CliError(f"{path}: could not load the model ({first})") from None


class _CliError(Exception):
    pass


def _fmt(n):
    return f"{n:,.0f}"


def inspect(args):
    import tfprune

    model = _load_model(args.model)
    graph = tfprune.analyze(model)
    total = tfprune.cost(graph)
    print(f"model '{model.name}': {_fmt(total.params)} params, "
          f"{_fmt(total.macs)} MACs, {len(graph.groups)} channel groups "
          f"({len(graph.prunable_groups)} prunable), "
          f"{len(graph.barriers)} barriers")
    print()
    print(graph.summary())
    print()
    print(f"{'layer':<40} {'class':<22} {'params':>12} {'MACs':>15}")
    for node in graph.nodes:
        lc = total.per_layer[node.name]
        if node.first_call and (lc.params or lc.macs):
            print(f"{node.name:<40} {node.class_name:<22} {_fmt(lc.params):>12} "
                  f"{_fmt(lc.macs):>15}")
    return 0


def prune(args):
    import tfprune

    if args.output is None:
        raise _CliError("give the output file with -o slim.keras")
    if os.path.abspath(args.output) == os.path.abspath(args.model):
        raise _CliError("the output would overwrite the input model; choose "
                        "another -o path")
    if args.target_macs is None and args.target_params is None and not args.from_plan:
        raise _CliError("give --target-macs and/or --target-params (or --from-plan)")
    model = _load_model(args.model)
    graph = tfprune.analyze(model)
    if args.from_plan:
        with open(args.from_plan) as f:
            plan = tfprune.PruningPlan.from_json(f.read(), graph)
    else:
        plan = tfprune.prune(graph, method=args.method, target_macs=args.target_macs,
                             target_params=args.target_params, scope=args.scope,
                             round_to=args.round_to)
    slim = tfprune.rebuild(model, plan)
    before, after = tfprune.cost(graph), tfprune.cost(slim)
    tmp = args.output + ".partial.keras"
    slim.save(tmp)
    os.replace(tmp, args.output)  # never leave a half-written file behind
    if args.plan:
        with open(args.plan, "w") as f:
            f.write(plan.to_json(indent=1))
    print(f"{'':<8} {'params':>14} {'MACs':>16}")
    print(f"{'before':<8} {_fmt(before.params):>14} {_fmt(before.macs):>16}")
    print(f"{'after':<8} {_fmt(after.params):>14} {_fmt(after.macs):>16}")
    print(f"{'ratio':<8} {after.params / before.params:>14.3f} "
          f"{after.macs / before.macs:>16.3f}")
    print(f"wrote {args.output}" + (f" and {args.plan}" if args.plan else ""))
    return 0


def _fraction_or_count(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction like 0.5 or a count, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parser():
    p = argparse.ArgumentParser(
        prog="tfprune", description="Structured channel pruning for Keras 3 models.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inspect", help="channel groups, barriers, params and MACs",
                       description="Show a model's channel groups, barriers "
                       "(where pruning stops, and why), params and MACs.")
    i.add_argument("model", help="a .keras model file")
    i.set_defaults(func=inspect)
    r = sub.add_parser("prune", help="prune a model to a MACs/params target",
                       description="Prune a .keras model to a MACs and/or "
                       "params target and save the slim model.")
    r.add_argument("model", help="a .keras model file (never modified)")
    r.add_argument("-o", "--output", help="where to write the pruned .keras model")
    r.add_argument("--method", default="l1", choices=["l1", "l2", "bn"],
                   help="channel importance (default: l1)")
    r.add_argument("--target-macs", type=_fraction_or_count,
                   help="fraction of the original MACs (<= 1) or a MACs count")
    r.add_argument("--target-params", type=_fraction_or_count,
                   help="fraction of the original params (<= 1) or a count")
    r.add_argument("--scope", default="global", choices=["global", "uniform"])
    r.add_argument("--round-to", type=int, default=1,
                   help="keep widths multiples of N (default 1)")
    r.add_argument("--plan", help="also write the plan as JSON to this file")
    r.add_argument("--from-plan", help="rebuild from this plan JSON instead of "
                   "searching")
    r.set_defaults(func=prune)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfprune.errors import TfpruneError

    try:
        return args.func(args)
    except (_CliError, TfpruneError, OSError, ValueError, KeyError) as e:
        message = str(e).strip().strip('"') or type(e).__name__
        print(f"tfprune: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
