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
    from tfprune.core.finite import check_finite
    from tfprune.fileio import save_model, write_atomic

    if args.output is None:
        raise CliError("give the output file with -o slim.keras")
    method = tfprune.get_method(args.method)
    options = method_options(args, method)
    table_path = args.latency_table
    if table_path and not os.path.exists(table_path):
        raise CliError(f"no such file: {table_path}")
    _check_method_arguments(args, method)
    check_outputs(inputs=[args.model, args.from_plan, table_path],
                  outputs=[(args.output, ".keras", "-o"), (args.plan, ".json", "--plan")])
    plan_text = read_text(args.from_plan, "plan file") if args.from_plan else None
    if args.finetune_epochs or args.refit or (method.needs_data or method.trains):
        from tfprune import datasets

        datasets.info(args.data)  # an unknown or missing data set fails before pruning
    model = original = load_model(args.model)
    check_finite(model)
    graph = tfprune.analyze(model)
    table = None
    if table_path:
        from tfprune.latency import LatencyTable

        table = LatencyTable.load(table_path, graph)
    budget = None
    if plan_text is None and method.budget:
        budget = tfprune.Budget(args.target_macs, args.target_params, args.target_latency,
                                table, args.round_to)
    if plan_text is not None:
        plan = tfprune.PruningPlan.from_json(plan_text, graph)
        slim = tfprune.rebuild(model, plan)
    elif method.trains:
        plan, slim = _train_with(args, method, model, budget, options)
    else:
        data = _calibration(args) if method.needs_data else None
        plan = method.plan(model, budget, data, **options)
        if args.refit:
            plan = tfprune.methods.search.reconstruct(model, plan, _calibration(args))
        slim = tfprune.rebuild(model, plan)
    if args.finetune_epochs:
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
        # A training method may plan the model with its gates folded: the
        # same layers under another config (the table was checked against
        # the input model).
        predicted = (table if plan.graph is graph else table.matched_to(plan.graph)
                     ).predict(plan)
        print(f"predicted LiteRT latency: {table.base_ms:.3f} ms -> {predicted:.3f} ms "
              f"(ratio {predicted / table.base_ms:.3f}, {table.threads} thread(s), "
              f"{table.quantization})")
    print(f"wrote {args.output}" + (f" and {args.plan}" if args.plan else ""))
    return 0


def method_options(args, method):
    """The method's own options given on the command line, parsed by its
    `Option`s; an option of another method is refused."""
    import tfprune

    given = {}
    for name, option in all_options().items():
        text = getattr(args, name, None)
        if text is None:
            continue
        own = method.option(name)
        if own is None:
            takers = [m for m, spec in tfprune.available_methods().items()
                      if spec.option(name) is not None]
            raise CliError(f"--method {method.name} does not take {option.flag} "
                           f"(methods that do: {', '.join(takers)})")
        try:
            value = own.type(text)
        except (TypeError, ValueError) as e:
            raise CliError(f"{own.flag}: {e}") from None
        if own.choices is not None and value not in own.choices:
            raise CliError(f"{own.flag} must be one of {', '.join(map(str, own.choices))}, "
                           f"got {text!r}")
        given[name] = value
    return given


def all_options():
    """Option name -> the first registered method's `Option` of that name."""
    import tfprune

    options = {}
    for method in tfprune.available_methods().values():
        for option in method.options:
            options.setdefault(option.name, option)
    return options


def _names(condition):
    import tfprune

    return ", ".join(name for name, m in tfprune.available_methods().items()
                     if condition(m))


def _check_method_arguments(args, method):
    """Refuses what the chosen method would not use, before any work."""
    name = method.name
    targets = [flag for flag, value in (("--target-macs", args.target_macs),
                                        ("--target-params", args.target_params),
                                        ("--target-latency", args.target_latency))
               if value is not None]
    if args.from_plan:
        return
    if not method.budget:
        if targets or args.round_to != 1:
            raise CliError(f"--method {name} takes no target: its training decides "
                           f"the widths (drop {', '.join(targets) or '--round-to'})")
    elif not targets:
        raise CliError("give --target-macs, --target-params and/or --target-latency "
                       "(or --from-plan)")
    if args.target_latency is not None and not args.latency_table:
        raise CliError("--target-latency needs --latency-table table.json (measure "
                       "one with `tfprune latency model.keras -o table.json`)")
    if args.round_to == "auto" and not args.latency_table:
        raise CliError("--round-to auto reads the widths from --latency-table "
                       "table.json")
    if args.target_latency is not None and not method.latency:
        raise CliError(f"--target-latency works with --method "
                       f"{_names(lambda m: m.latency)}, not {name}")
    if args.round_to != 1 and not method.round_to:
        raise CliError(f"--round-to works with --method {_names(lambda m: m.round_to)}, "
                       f"not {name}")
    if (method.needs_data or method.trains) and not args.data:
        raise CliError(f"--method {name} needs --data (e.g. --data fashion_mnist)")
    if args.epochs is not None and not method.trains:
        raise CliError(f"--epochs is for the methods that train "
                       f"({_names(lambda m: m.trains)}), not {name}")
    if args.finetune_epochs and not args.data:
        raise CliError("--finetune-epochs needs --data (e.g. --data fashion_mnist)")
    if args.refit:
        if not args.data:
            raise CliError("--refit needs --data (e.g. --data fashion_mnist)")
        if method.trains or method.refits or method.kernels:
            refittable = _names(lambda m: not (m.trains or m.refits or m.kernels))
            raise CliError(f"--refit works with --method {refittable}, not {name}")


def _train_with(args, method, model, budget, options):
    """Runs a training-time method: attach, fit on --data for --epochs, plan.

    Returns (plan, slim model).
    """
    import keras

    from tfprune import datasets

    session = method.attach(model, budget, **options)
    train = datasets.load(args.data, split="train", batch_size=128, augment=True,
                          limit=args.limit)
    session.model.compile(keras.optimizers.SGD(0.02, momentum=0.9, nesterov=True),
                          keras.losses.SparseCategoricalCrossentropy(
                              from_logits=_from_logits(model)),
                          metrics=["accuracy"])
    session.model.fit(train, epochs=args.epochs or 2, verbose=2,
                      callbacks=session.callbacks)
    return session.plan(), session.rebuild()


def _from_logits(model):
    import keras

    last = model.layers[-1]
    return not (isinstance(last, keras.layers.Softmax) or getattr(
        getattr(last, "activation", None), "__name__", "") == "softmax")


def _finetune(args, slim, original):
    """Fine-tunes `slim` on --data, distilling from the original unless
    --no-distill, and prints its test accuracy before and after."""
    import tfprune
    from tfprune import datasets

    from_logits = _from_logits(original)
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
    from tfprune.comparison import report as compare

    for path in [args.original, args.slim] + list(args.tflite or []):
        if not os.path.exists(path):
            raise CliError(f"no such file: {path}")
    for path in args.tflite or []:
        if not path.endswith(".tflite"):
            raise CliError(f"{path}: expected a .tflite file")
    original, slim = load_model(args.original), load_model(args.slim)
    result = compare(original, slim, args.output, tflite=args.tflite,
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
