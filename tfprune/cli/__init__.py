"""The `tfprune` command line.

    tfprune inspect model.keras
    tfprune prune model.keras --method l1 --target-macs 0.5 -o slim.keras [--plan plan.json]
        [--finetune-epochs 3 --data fashion_mnist]
    tfprune export model.keras -o model.tflite --quantize int8 --data fashion_mnist
    tfprune bench a.tflite [b.tflite ...] [--threads 1] [--runs 100]
    tfprune report original.keras slim.keras -o report/ [--tflite a.tflite b.tflite]
    tfprune latency model.keras -o table.json [--threads 1] [--quantization none]

Bad input exits with status 2 and a one-line message, never a traceback;
Ctrl-C exits with status 130 and "tfprune: interrupted". Every output file
is checked before any work starts and written atomically, so an input is
never overwritten and no half-written file is left behind.
"""

import argparse
import os
import sys

from tfprune.cli import commands, interrupt
from tfprune.cli.common import (
    CliError,
    check_outputs,
    fraction_or_count,
    latency_target,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    round_to_arg,
    unit_interval,
)

__all__ = ["CliError", "check_outputs", "main", "parser"]


def parser():
    p = argparse.ArgumentParser(
        prog="tfprune", description="Structured channel pruning for Keras 3 models.")
    p.add_argument("--verbose", action="store_true",
                   help="also show TensorFlow's own log (hidden by default)")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inspect", help="channel groups, barriers, params and MACs",
                       description="Show a model's channel groups, barriers "
                       "(where pruning stops, and why), params and MACs.")
    i.add_argument("model", help="a .keras model file")
    i.set_defaults(func=commands.inspect_model)
    r = sub.add_parser("prune", help="prune a model to a MACs/params/latency target",
                       description="Prune a .keras model to a MACs and/or "
                       "params target and save the slim model.")
    r.add_argument("model", help="a .keras model file (never modified)")
    r.add_argument("-o", "--output", help="where to write the pruned .keras model")
    _add_method_arguments(r)
    r.add_argument("--target-macs", type=fraction_or_count,
                   help="fraction of the original MACs (<= 1) or a MACs count")
    r.add_argument("--target-params", type=fraction_or_count,
                   help="fraction of the original params (<= 1) or a count")
    r.add_argument("--round-to", type=round_to_arg, default=1,
                   help="keep widths multiples of N (default 1), or 'auto': "
                   "the widths --latency-table measured")
    r.add_argument("--target-latency", type=latency_target,
                   help="predicted LiteRT latency: a fraction of the original's "
                   "(<= 1), milliseconds (> 1) or e.g. 0.8ms; needs --latency-table")
    r.add_argument("--latency-table", help="a table from `tfprune latency`")
    r.add_argument("--plan", help="also write the plan as JSON to this .json file")
    r.add_argument("--from-plan", help="rebuild from this plan JSON instead of "
                   "searching")
    r.add_argument("--data", help="data set for the methods that need data or train, "
                   "and for fine-tuning, e.g. fashion_mnist")
    r.add_argument("--epochs", type=positive_int,
                   help="methods that train: epochs of training (default 2)")
    r.add_argument("--refit", action="store_true",
                   help="re-fit the layers reading pruned channels by least "
                   "squares on 512 images of --data (one-shot methods)")
    r.add_argument("--finetune-epochs", type=nonnegative_int, default=0,
                   help="fine-tune the pruned model this many epochs on --data "
                   "before saving it (default 0: no fine-tuning)")
    r.add_argument("--finetune-lr", type=positive_float, default=0.05,
                   help="peak of the one-cycle learning rate while fine-tuning "
                   "(default 0.05)")
    r.add_argument("--no-distill", action="store_true",
                   help="fine-tune on the labels only (by default the pruned "
                   "model also learns the original's outputs)")
    r.add_argument("--limit", type=positive_int, help="use the first N training images")
    r.set_defaults(func=commands.prune)
    t = sub.add_parser("train", help="train a zoo model from scratch while pruning it",
                       description="PruneTrain: train with group lasso and remove "
                       "dead channels every few epochs.")
    t.add_argument("--method", default="prunetrain", choices=["prunetrain"])
    t.add_argument("--model", required=True, help="a tfprune.zoo name, e.g. resnet20")
    t.add_argument("--data", default="fashion_mnist")
    t.add_argument("--epochs", type=positive_int, default=30)
    t.add_argument("-o", "--output", help="where to write the trained .keras model")
    t.add_argument("--penalty-ratio", type=unit_interval, default=0.2)
    t.add_argument("--reconfigure-every", type=positive_int, default=5)
    t.add_argument("--threshold", type=nonnegative_float, default=1e-4)
    t.add_argument("--batch-size", type=positive_int, default=128)
    t.add_argument("--lr", type=positive_float, default=0.1, help="peak learning rate")
    t.add_argument("--checkpoint-dir", help="resume here if interrupted")
    t.add_argument("--limit", type=positive_int, help="first N images per split")
    t.add_argument("--dynamic-batch", action="store_true")
    t.set_defaults(func=commands.train)
    rp = sub.add_parser("report", help="what pruning did: per-layer widths, MACs, latency",
                        description="Compare a model with its pruned copy layer by "
                        "layer (matched by name): print a table and write "
                        "widths.png and summary.json (and profile.png with --tflite).")
    rp.add_argument("original", help="the unpruned .keras model")
    rp.add_argument("slim", help="its pruned copy (.keras)")
    rp.add_argument("-o", "--output", default="report",
                    help="directory for the files (default: report)")
    rp.add_argument("--tflite", nargs=2, metavar=("ORIGINAL", "SLIM"),
                    help="also time these two .tflite files with LiteRT and "
                    "profile them per op type (needs tflite_export)")
    rp.add_argument("--threads", type=positive_int, default=1,
                    help="--tflite: interpreter threads (default 1)")
    rp.add_argument("--runs", type=positive_int, default=50,
                    help="--tflite: timed runs per file (default 50)")
    rp.set_defaults(func=commands.report)
    la = sub.add_parser("latency", help="measure a LiteRT latency table for a model",
                        description="Time each prunable channel group's layers "
                        "with LiteRT at a few widths, so that `tfprune prune "
                        "--target-latency` can predict any plan's latency "
                        "(needs tflite_export).")
    la.add_argument("model", help="a .keras model file with a fixed input size")
    la.add_argument("-o", "--output", help="where to write the table (.json)")
    la.add_argument("--threads", type=positive_int, default=1,
                    help="interpreter threads (default 1)")
    la.add_argument("--quantization", default="none",
                    choices=["none", "float16", "dynamic", "int8"],
                    help="precision to time (default none: float32)")
    la.add_argument("--runs", type=positive_int, default=50,
                    help="timed runs per sub-model (default 50)")
    la.set_defaults(func=commands.latency)
    for plugin in _plugins():
        plugin(sub)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="also show TensorFlow's own log (hidden by default)")
    return p


def _add_method_arguments(r):
    """--method and every registered method's options, from the registry."""
    import tfprune
    from tfprune.cli.commands import all_options

    methods = tfprune.available_methods()
    lines = []
    for name, m in methods.items():
        needs = [w for w, on in (("trains: --data, --epochs", m.trains),
                                 ("needs --data", m.needs_data and not m.trains),
                                 ("latency targets", m.latency)) if on]
        lines.append(f"{name}: {m.summary}" + (f" ({'; '.join(needs)})" if needs else ""))
    r.add_argument("--method", default="group_l1", choices=list(methods),
                   help="; ".join(lines) + " (default: group_l1)")
    for name, option in all_options().items():
        takers = [(m, spec.option(name)) for m, spec in methods.items()
                  if spec.option(name) is not None]
        helps = {}  # one line per distinct meaning, naming its methods
        for m, o in takers:
            choices = f" ({'/'.join(map(str, o.choices))})" if o.choices else ""
            helps.setdefault(f"{o.help}{choices}", []).append(f"{m} {o.default}")
        r.add_argument(option.flag, dest=name, default=None, help="; ".join(
            f"{'/'.join(d.split()[0] for d in defaults)}: {text} (default: "
            f"{', '.join(sorted({d.split(maxsplit=1)[1] for d in defaults}))})"
            for text, defaults in helps.items()))


def _plugins():
    """Commands other packages add (`tflite_export` adds export and bench).

    They are found through the `tfprune.cli` entry-point group, so tfprune
    itself never imports them.
    """
    from importlib.metadata import entry_points

    return [ep.load() for ep in sorted(entry_points(group="tfprune.cli"),
                                       key=lambda ep: ep.name)]




def main(argv=None):
    """Runs one `tfprune` command; returns its exit status.

    0: done; 2: bad input (one line on stderr); 130: interrupted (Ctrl-C);
    1: an unexpected error inside tfprune (one line; set
    TFPRUNE_TRACEBACK=1 to see the traceback). argparse's own usage
    errors raise SystemExit(2).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfprune.errors import TfpruneError

    with interrupt.handled() as interrupts:
        try:
            args = parser().parse_args(argv)
            return args.func(args)
        except KeyboardInterrupt:
            # Outputs are written through tfprune.fileio, which removes
            # its temporary file on the way out: nothing half-written is left.
            interrupts.report()
            return 130
        except (CliError, TfpruneError, OSError, ValueError, KeyError) as e:
            print(f"tfprune: error: {_one_line(e)}", file=sys.stderr)
            return 2
        except Exception as e:
            if os.environ.get("TFPRUNE_TRACEBACK"):
                raise
            print(f"tfprune: internal error: {type(e).__name__}: {_one_line(e)} "
                  "(a bug in tfprune; rerun with TFPRUNE_TRACEBACK=1 and report "
                  "the traceback)", file=sys.stderr)
            return 1


def run():
    """The `tfprune` console command: `main()`, then exit with its status.

    After Ctrl-C the process leaves at once (`os._exit`): TensorFlow's
    runtime can abort while the interpreter tears down after an interrupted
    training step, and everything worth doing (the one line, removing
    temporary files) is done by then.
    """
    status = main()
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)


def _one_line(error):
    text = str(error).strip().strip('"').strip()
    return " ".join(text.split()) or type(error).__name__


if __name__ == "__main__":
    run()
