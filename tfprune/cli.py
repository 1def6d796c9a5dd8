"""The `tfprune` command line.

    tfprune inspect model.keras
    tfprune prune model.keras --method l1 --target-macs 0.5 -o slim.keras [--plan plan.json]
    tfprune export model.keras -o model.tflite --quantize int8 --data fashion_mnist
    tfprune bench a.tflite [b.tflite ...] [--threads 1] [--runs 100]

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
    elif args.method in ("hfp", "ga"):
        plan, model = _trained_plan(args, model, graph)
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


def _trained_plan(args, model, graph):
    """Plans that need data: HFP trains gates, the GA searches on samples.

    Returns (plan, the model to rebuild: the gated one for HFP).
    """
    import keras
    import numpy as np

    import tfprune
    from tfprune import datasets

    if not args.data:
        raise _CliError(f"--method {args.method} needs --data (e.g. --data fashion_mnist)")
    if args.method == "hfp":
        train = datasets.load(args.data, split="train", batch_size=128, augment=True,
                              limit=args.limit)
        gated = tfprune.hfp.attach(model, target_macs=args.target_macs,
                                   target_params=args.target_params)
        gated.compile(keras.optimizers.SGD(0.02, momentum=0.9, nesterov=True),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        gated.fit(train, epochs=args.epochs, verbose=2,
                  callbacks=[tfprune.callbacks.HolisticBudget(ramp_epochs=1)])
        return tfprune.hfp.plan(gated, round_to=args.round_to), gated
    x, y = datasets.load(args.data, split="train", as_numpy=True, limit=args.limit)
    idx = np.random.default_rng(0).choice(len(x), min(len(x), 512), replace=False)
    search = tfprune.search.GeneticChannelSearch(
        model, (x[idx], y[idx]), target_macs=args.target_macs,
        target_params=args.target_params, round_to=args.round_to,
        generations=args.generations)
    return search.run(), model


def train(args):
    from tfprune import prunetrain

    return prunetrain.cli_train(
        args.model, args.data, args.epochs, args.output,
        penalty_ratio=args.penalty_ratio, reconfigure_every=args.reconfigure_every,
        threshold=args.threshold, batch_size=args.batch_size, learning_rate=args.lr,
        checkpoint_dir=args.checkpoint_dir, limit=args.limit,
        dynamic_batch=args.dynamic_batch)


def export(args):
    from tflite_export import convert

    output = args.output or os.path.splitext(args.model)[0] + ".tflite"
    if not output.endswith(".tflite"):
        raise _CliError(f"{output}: the output file name must end with .tflite")
    if args.quantize == "int8" and not args.data:
        raise _CliError("--quantize int8 needs --data (e.g. --data fashion_mnist) "
                        "to calibrate the int8 ranges")
    model = _load_model(args.model)
    calibration = verification = labels = normalization = None
    if args.data:
        from tfprune import datasets

        try:
            meta = datasets.info(args.data)
            # Calibrate on training images and verify on test images, so the
            # reported accuracy is not measured on the calibration set.
            calibration = datasets.load(args.data, split="train", as_numpy=True,
                                        limit=args.calibration_samples)[0]
            verification = datasets.load(args.data, split="test", as_numpy=True,
                                         limit=args.verify_samples)
        except datasets.DatasetUnavailableError as e:
            raise _CliError(str(e).strip().splitlines()[0]) from None
        labels = list(meta["class_names"])
        normalization = {"mean": meta["mean"], "std": meta["std"]}
    info = convert(model, output, quantization=args.quantize,
                   representative_data=calibration, verification_data=verification,
                   labels=labels, normalization=normalization, int8_io=args.int8_io,
                   tolerance=args.tolerance, verify_samples=args.verify_samples)
    print(info.summary())
    side = [p for p in (info.labels_path, info.metadata_path) if p]
    print(f"wrote {info.path}" + (" with " + " and ".join(side) if side else ""))
    return 0


def bench(args):
    from tflite_export import compare, compare_profiles

    for path in args.files:
        if not os.path.exists(path):
            raise _CliError(f"no such file: {path}")
    reports = compare(args.files, threads=args.threads, runs=args.runs,
                      warmup=args.warmup, xnnpack=not args.no_xnnpack)
    width = max(len("file"), *(len(r.path) for r in reports))
    header = (f"{'file':<{width}} {'bytes':>12} {'quant':>8} {'MACs':>14} "
              f"{'median ms':>10} {'p90 ms':>9}")
    if len(reports) > 1:
        header += f" {'latency ratio':>13} {'MACs ratio':>10}"
    print(header)
    first = reports[0]
    for r in reports:
        line = (f"{r.path:<{width}} {r.size_bytes:>12,} {r.quantization:>8} "
                f"{r.macs:>14,} {r.median_ms:>10.3f} {r.p90_ms:>9.3f}")
        if len(reports) > 1:
            macs_ratio = f"{r.macs / first.macs:.3f}" if first.macs else "-"
            line += f" {r.median_ms / first.median_ms:>13.3f} {macs_ratio:>10}"
        print(line)
    print(f"({first.threads} thread{'s' if first.threads > 1 else ''}, "
          f"{first.runs} runs after {args.warmup} warm-up, interleaved; "
          f"XNNPACK {'on' if first.xnnpack else 'off'}"
          + ("; ratios are to the first file" if len(reports) > 1 else "") + ")")
    if args.profile:
        for prof in compare_profiles(args.files, threads=args.threads):
            print()
            print(prof.summary())
    return 0


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    r.add_argument("--method", default="l1", choices=["l1", "l2", "bn", "hfp", "ga"],
                   help="l1/l2/bn: channel importance; hfp: train budget gates "
                   "(needs --data, --epochs); ga: genetic channel search "
                   "(needs --data) (default: l1)")
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
    r.add_argument("--data", help="data set for hfp/ga, e.g. fashion_mnist")
    r.add_argument("--epochs", type=_positive_int, default=2,
                   help="hfp: epochs of gate training (default 2)")
    r.add_argument("--generations", type=_positive_int, default=30,
                   help="ga: generations per group (default 30)")
    r.add_argument("--limit", type=_positive_int, help="use the first N training images")
    r.set_defaults(func=prune)
    t = sub.add_parser("train", help="train a zoo model from scratch while pruning it",
                       description="PruneTrain: train with group lasso and remove "
                       "dead channels every few epochs.")
    t.add_argument("--method", default="prunetrain", choices=["prunetrain"])
    t.add_argument("--model", required=True, help="a tfprune.zoo name, e.g. resnet20")
    t.add_argument("--data", default="fashion_mnist")
    t.add_argument("--epochs", type=_positive_int, default=30)
    t.add_argument("-o", "--output")
    t.add_argument("--penalty-ratio", type=float, default=0.2)
    t.add_argument("--reconfigure-every", type=_positive_int, default=5)
    t.add_argument("--threshold", type=float, default=1e-4)
    t.add_argument("--batch-size", type=_positive_int, default=128)
    t.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    t.add_argument("--checkpoint-dir", help="resume here if interrupted")
    t.add_argument("--limit", type=_positive_int, help="first N images per split")
    t.add_argument("--dynamic-batch", action="store_true")
    t.set_defaults(func=train)
    e = sub.add_parser("export", help="convert to a verified .tflite for Android",
                       description="Convert a .keras model to a .tflite file "
                       "with TFLite builtin ops only, check it against the "
                       "Keras model, and write labels.txt and a JSON side file "
                       "next to it.")
    e.add_argument("model", help="a .keras model file (never modified)")
    e.add_argument("-o", "--output", help="the .tflite file to write (default: "
                   "the model's name with .tflite)")
    e.add_argument("--quantize", default="none",
                   choices=["none", "float16", "dynamic", "int8"],
                   help="weights/activations precision (default: none = float32)")
    e.add_argument("--data", help="dataset for int8 calibration, verification, "
                   "labels and normalisation, e.g. fashion_mnist")
    e.add_argument("--int8-io", action="store_true",
                   help="with --quantize int8, make input and output int8 too")
    e.add_argument("--calibration-samples", type=_positive_int, default=256,
                   help="training images used to calibrate int8 (default 256)")
    e.add_argument("--verify-samples", type=_positive_int, default=1000,
                   help="test images used to verify (default 1000)")
    e.add_argument("--tolerance", type=float, default=None,
                   help="max relative |tflite - keras| for none/float16")
    e.set_defaults(func=export)
    b = sub.add_parser("bench", help="time .tflite files with LiteRT",
                       description="Time .tflite files with the LiteRT "
                       "interpreter (XNNPACK on), interleaved; print size, "
                       "median/p90 latency and, for several files, latency "
                       "and MACs ratios to the first.")
    b.add_argument("files", nargs="+", help=".tflite files")
    b.add_argument("--threads", type=_positive_int, default=1,
                   help="interpreter threads (default 1)")
    b.add_argument("--runs", type=_positive_int, default=100,
                   help="timed runs per file (default 100)")
    b.add_argument("--warmup", type=int, default=10,
                   help="untimed runs per file first (default 10)")
    b.add_argument("--no-xnnpack", action="store_true",
                   help="use the reference builtin kernels instead of XNNPACK")
    b.add_argument("--profile", action="store_true",
                   help="also time each node alone and show where time goes")
    b.set_defaults(func=bench)
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
