"""The `tfprune export` and `tfprune bench` commands.

Registered with tfprune's command line through the `tfprune.cli` entry
point (see setup.py), so that tfprune never imports tflite_export.
"""

import os

from tfprune.cli.common import (
    CliError,
    check_outputs,
    load_model,
    nonnegative_int,
    positive_float,
    positive_int,
)


def register(sub):
    """Adds `export` and `bench` to the `tfprune` sub-command parsers."""
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
    e.add_argument("--calibration-samples", type=positive_int, default=256,
                   help="training images used to calibrate int8 (default 256)")
    e.add_argument("--verify-samples", type=positive_int, default=1000,
                   help="test images used to verify (default 1000)")
    e.add_argument("--tolerance", type=positive_float, default=None,
                   help="max relative |tflite - keras| for none/float16")
    e.add_argument("--force", action="store_true",
                   help="overwrite an existing labels.txt or JSON side file "
                   "next to the output (refused by default)")
    e.set_defaults(func=export)
    b = sub.add_parser("bench", help="time .tflite files with LiteRT",
                       description="Time .tflite files with the LiteRT "
                       "interpreter (XNNPACK on), interleaved; print size, "
                       "median/p90 latency and, for several files, latency "
                       "and MACs ratios to the first.")
    b.add_argument("files", nargs="+", help=".tflite files")
    b.add_argument("--threads", type=positive_int, default=1,
                   help="interpreter threads (default 1)")
    b.add_argument("--runs", type=positive_int, default=100,
                   help="timed runs per file (default 100)")
    b.add_argument("--warmup", type=nonnegative_int, default=10,
                   help="untimed runs per file first (default 10)")
    b.add_argument("--no-xnnpack", action="store_true",
                   help="use the reference builtin kernels instead of XNNPACK")
    b.add_argument("--profile", action="store_true",
                   help="also time each node alone and show where time goes")
    b.set_defaults(func=bench)


def export(args):
    from tflite_export import convert
    from tflite_export.convert import side_files

    output = args.output or os.path.splitext(args.model)[0] + ".tflite"
    if args.quantize == "int8" and not args.data:
        raise CliError("--quantize int8 needs --data (e.g. --data fashion_mnist) "
                        "to calibrate the int8 ranges")
    labels_path, metadata_path = side_files(output, labels=bool(args.data))
    check_outputs(inputs=[args.model], outputs=[(output, ".tflite", "-o")])
    # Side files the user did not name are never replaced without --force.
    check_outputs(inputs=[args.model, output],
                  outputs=[(labels_path, ".txt", "labels file"),
                           (metadata_path, ".json", "metadata file")],
                  overwrite=args.force)
    model = load_model(args.model)
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
            raise CliError(str(e).strip().splitlines()[0]) from None
        labels = list(meta["class_names"])
        normalization = {"mean": meta["mean"], "std": meta["std"]}
    info = convert(model, output, quantization=args.quantize,
                   representative_data=calibration, verification_data=verification,
                   labels=labels, normalization=normalization, int8_io=args.int8_io,
                   tolerance=args.tolerance, verify_samples=args.verify_samples,
                   overwrite_side_files=args.force)
    print(info.summary())
    side = [p for p in (info.labels_path, info.metadata_path) if p]
    print(f"wrote {info.path}" + (" with " + " and ".join(side) if side else ""))
    return 0


def bench(args):
    from tflite_export import compare, compare_profiles

    for path in args.files:
        if not os.path.exists(path):
            raise CliError(f"no such file: {path}")
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
