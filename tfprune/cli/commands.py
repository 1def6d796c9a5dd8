"""tfprune's own commands: inspect, prune, train, report, latency."""

import os

from tfprune.cli.common import CliError, check_outputs, fmt_count, load_model, read_text


def inspect_model(args):
    import tfprune
    from tfprune.core.finite import check_finite

    model = load_model(args.model)
    graph = tfprune.analyze(model)
    total = tfprune.cost(graph)
    try:
        check_finite(model)
    except tfprune.NonFiniteWeightsError as e:  # inspecting is still useful
        print(f"warning: {e}")
    print(f"model '{model.name}': {fmt_count(total.params)} params, "
          f"{fmt_count(total.macs)} MACs, {len(graph.groups)} channel groups "
          f"({len(graph.prunable_groups)} prunable), "
          f"{len(graph.barriers)} barriers")
    print()
    print(graph.summary())
    print()
    print(f"{'layer':<40} {'class':<22} {'params':>12} {'MACs':>15}")
    for node in graph.nodes:
        lc = total.per_layer[node.name]
        if node.first_call and (lc.params or lc.macs):
            print(f"{node.name:<40} {node.class_name:<22} {fmt_count(lc.params):>12} "
                  f"{fmt_count(lc.macs):>15}")
    return 0


def prune(args):
    import tfprune
    from tfprune.core.fileio import save_model, write_atomic
    from tfprune.core.finite import check_finite

    if args.output is None:
        raise CliError("give the output file with -o slim.keras")
    target_latency = getattr(args, "target_latency", None)
    if (args.target_macs is None and args.target_params is None
            and target_latency is None and not args.from_plan):
        raise CliError("give --target-macs, --target-params and/or --target-latency "
                       "(or --from-plan)")
    table_path = getattr(args, "latency_table", None)
    if target_latency is not None and not table_path:
        raise CliError("--target-latency needs --latency-table table.json (measure "
                       "one with `tfprune latency model.keras -o table.json`)")
    if table_path and not os.path.exists(table_path):
        raise CliError(f"no such file: {table_path}")
    finetune_epochs = getattr(args, "finetune_epochs", 0)
    if finetune_epochs and not args.data:
        raise CliError("--finetune-epochs needs --data (e.g. --data fashion_mnist)")
    refit = getattr(args, "refit", False)
    if refit and not args.data:
        raise CliError("--refit needs --data (e.g. --data fashion_mnist)")
    if refit and args.method in ("hfp", "smof", "ga"):
        raise CliError(f"--refit works with --method l1, l2, bn or prunenet, not "
                       f"{args.method}")
    if args.round_to == "auto" and not table_path:
        raise CliError("--round-to auto reads the widths from --latency-table "
                       "table.json")
    if target_latency is not None and args.method in ("smof", "prunenet"):
        raise CliError(f"--target-latency works with --method l1, l2, bn, hfp or ga, "
                       f"not {args.method}")
    check_outputs(inputs=[args.model, args.from_plan, table_path],
                  outputs=[(args.output, ".keras", "-o"), (args.plan, ".json", "--plan")])
    plan_text = read_text(args.from_plan, "plan file") if args.from_plan else None
    if finetune_epochs or refit:
        from tfprune import datasets

        datasets.info(args.data)  # an unknown or missing data set fails before pruning
    model = original = load_model(args.model)
    check_finite(model)
    graph = tfprune.analyze(model)
    table = None
    if table_path:
        from tfprune.latency import LatencyTable

        table = LatencyTable.load(table_path, graph)
    if plan_text is not None:
        plan = tfprune.PruningPlan.from_json(plan_text, graph)
    elif args.method in ("hfp", "ga", "smof", "prunenet"):
        plan, model = _trained_plan(args, model, graph, target_latency, table)
    else:
        plan = tfprune.prune(graph, criterion=args.method, target_macs=args.target_macs,
                             target_params=args.target_params, scope=args.scope,
                             round_to=args.round_to, target_latency=target_latency,
                             latency_table=table)
    if refit:
        plan = tfprune.search.reconstruct(model, plan, _calibration(args))
    slim = tfprune.rebuild(model, plan)
    if finetune_epochs:
        _finetune(args, slim, original)
    check_finite(slim, "saving the pruned model")
    before, after = tfprune.cost(graph), tfprune.cost(slim)
    if args.plan:
        write_atomic(args.plan, plan.to_json(indent=1))
    # The model goes last: once it exists, so does its plan.
    save_model(slim, args.output)
    print(f"{'':<8} {'params':>14} {'MACs':>16}")
    print(f"{'before':<8} {fmt_count(before.params):>14} {fmt_count(before.macs):>16}")
    print(f"{'after':<8} {fmt_count(after.params):>14} {fmt_count(after.macs):>16}")
    print(f"{'ratio':<8} {after.params / before.params:>14.3f} "
          f"{after.macs / before.macs:>16.3f}")
    if table is not None:
        # hfp plans the model with its gates folded: the same layers under
        # another config (the table was checked against the input model).
        predicted = (table if plan.graph is graph else table.matched_to(plan.graph)
                     ).predict(plan)
        print(f"predicted LiteRT latency: {table.base_ms:.3f} ms -> {predicted:.3f} ms "
              f"(ratio {predicted / table.base_ms:.3f}, {table.threads} thread(s), "
              f"{table.quantization})")
    print(f"wrote {args.output}" + (f" and {args.plan}" if args.plan else ""))
    return 0


def _finetune(args, slim, original):
    """Fine-tunes `slim` on --data, distilling from the original unless
    --no-distill, and prints its test accuracy before and after."""
    import keras

    import tfprune
    from tfprune import datasets

    last = original.layers[-1]
    from_logits = not (isinstance(last, keras.layers.Softmax) or getattr(
        getattr(last, "activation", None), "__name__", "") == "softmax")
    train = datasets.load(args.data, split="train", batch_size=128, augment=True,
                          limit=args.limit)
    test = datasets.load(args.data, split="test", batch_size=512, limit=args.limit)
    slim.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = slim.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    teacher = None if args.no_distill else original
    print(f"fine-tuning {args.finetune_epochs} epoch(s) on {args.data}"
          + (" (labels only)" if teacher is None else ", distilling from the original"))
    tfprune.finetune(slim, train, teacher, epochs=args.finetune_epochs,
                     learning_rate=args.finetune_lr, from_logits=from_logits, verbose=2)
    after = slim.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    print(f"test accuracy: {before:.4f} as rebuilt, {after:.4f} fine-tuned")


def _calibration(args):
    """512 training images of --data, drawn with a fixed seed."""
    import numpy as np

    from tfprune import datasets

    x, y = datasets.load(args.data, split="train", as_numpy=True, limit=args.limit)
    idx = np.random.default_rng(0).choice(len(x), min(len(x), 512), replace=False)
    return x[idx], y[idx]


def _trained_plan(args, model, graph, target_latency=None, table=None):
    """Plans that need data: HFP trains gates, the GA searches on samples,
    PruneNet scores channels on 512 calibration samples. hfp and ga also
    take the latency target and its table.

    Returns (plan, the model to rebuild: the gated one for HFP).
    """
    import keras

    import tfprune
    from tfprune import datasets

    if not args.data:
        raise CliError(f"--method {args.method} needs --data (e.g. --data fashion_mnist)")
    if args.method in ("hfp", "smof"):
        # Both train their masks inside fit against the budget, the same way.
        if args.method == "hfp":
            trained = tfprune.hfp.attach(model, target_macs=args.target_macs,
                                         target_params=args.target_params,
                                         target_latency=target_latency,
                                         latency_table=table)
            schedule = tfprune.callbacks.HolisticBudget(ramp_epochs=1, round_to=args.round_to)
        else:
            trained = tfprune.smof.attach(model, target_macs=args.target_macs,
                                          target_params=args.target_params)
            schedule = tfprune.callbacks.SMOFSchedule(ramp_epochs=1)
        train = datasets.load(args.data, split="train", batch_size=128, augment=True,
                              limit=args.limit)
        trained.compile(keras.optimizers.SGD(0.02, momentum=0.9, nesterov=True),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"])
        trained.fit(train, epochs=args.epochs, verbose=2, callbacks=[schedule])
        if args.method == "hfp":
            return tfprune.hfp.plan(trained, round_to=args.round_to), trained
        return tfprune.smof.plan(trained), trained
    calib = _calibration(args)
    if args.method == "prunenet":
        plan = tfprune.prunenet.prune(
            model, calib, target_macs=args.target_macs,
            target_params=args.target_params, round_to=args.round_to)
        return plan, model
    search = tfprune.search.GeneticChannelSearch(
        model, calib, target_macs=args.target_macs,
        target_params=args.target_params, round_to=args.round_to,
        generations=args.generations, target_latency=target_latency,
        latency_table=table)
    return search.run(), model


def train(args):
    from tfprune.cli.train import train_zoo_model

    if not args.output:
        raise CliError("give the output file with -o slim.keras")
    check_outputs(outputs=[(args.output, ".keras", "-o")])
    return train_zoo_model(
        args.model, args.data, args.epochs, args.output,
        penalty_ratio=args.penalty_ratio, reconfigure_every=args.reconfigure_every,
        threshold=args.threshold, batch_size=args.batch_size, learning_rate=args.lr,
        checkpoint_dir=args.checkpoint_dir, limit=args.limit,
        dynamic_batch=args.dynamic_batch)


def report(args):
    import tfprune

    for path in [args.original, args.slim] + list(args.tflite or []):
        if not os.path.exists(path):
            raise CliError(f"no such file: {path}")
    for path in args.tflite or []:
        if not path.endswith(".tflite"):
            raise CliError(f"{path}: expected a .tflite file")
    original, slim = load_model(args.original), load_model(args.slim)
    result = tfprune.report(original, slim, args.output, tflite=args.tflite,
                            threads=args.threads, runs=args.runs,
                            names=(args.original, args.slim))
    print(result.table())
    print("wrote " + ", ".join(result.files))
    return 0


def latency(args):
    from tfprune.latency import LatencyTable

    if args.output is None:
        raise CliError("give the output file with -o table.json")
    if not args.output.endswith(".json"):
        raise CliError(f"{args.output}: the table is JSON; use a .json file name")
    check_outputs(inputs=[args.model], outputs=[(args.output, ".json", "-o")])
    model = load_model(args.model)
    table = LatencyTable.measure(model, threads=args.threads,
                                 quantization=args.quantization, runs=args.runs)
    table.save(args.output)  # atomic
    print(f"whole model: {table.base_ms:.3f} ms ({table.threads} thread(s), "
          f"{table.quantization}, LiteRT {table.litert}, {table.cpu})")
    print(f"{'group':>5}  {'widths':<24} {'ms':<36} producers")
    for gid, row in table.groups.items():
        widths = " ".join(str(w) for w in row["widths"])
        ms = " ".join(f"{t:.3f}" for t in row["ms"])
        names = ", ".join(row["producers"][:3]) + (" ..." if len(row["producers"]) > 3
                                                   else "")
        print(f"{gid:>5}  {widths:<24} {ms:<36} {names}")
    print(f"wrote {args.output}")
    return 0
