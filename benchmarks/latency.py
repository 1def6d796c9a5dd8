"""Does fewer MACs mean less time on LiteRT? Pruned models, exported and timed.

Usage:

    python -m benchmarks.latency                       # everything (~20 min)
    python -m benchmarks.latency --models resnet20 --runs 50 --no-peer
    python -m benchmarks.latency --profile-only        # profiles.md alone

For the zoo's ResNet-20 and VGG-11 (28x28 Fashion-MNIST input, as in the
accuracy rows) and keras.applications MobileNetV2 (alpha 1.0, 224x224,
weights=None): prune to 50% and 33% of the MACs with `l1` (global ranking,
tfprune's default) with widths free (`round_to=1`, the default) and rounded
to multiples of 8 and of 16, and with uniform fractions per layer (widths
rounded to 8 and 16); export original and pruned models as float32 and full-int8 `.tflite`; time
all files of one model in the same process, interleaved, with 1 and 2
threads (LiteRT interpreter, XNNPACK). Rows are appended to
benchmarks/results.jsonl (`kind: "latency"`) and shown in BENCHMARKS.md;
per-op profiles of the original and the 50% models go to
benchmarks/profiles.md.

Peer row (needs the `[bench]` extra): tensorflow-model-optimization's
`prune_low_magnitude` at 50% sparsity on a `tf_keras` twin of ResNet-20
carrying the same weights, stripped and converted with the same converter
settings, timed in the same interleaved run as tfprune's models, with file
size and gzipped size.
"""

import argparse
import gzip
import os
import tempfile

import keras
import numpy as np

import tflite_export
import tfprune
from benchmarks import protocol, results

WORK = os.path.join(protocol.CACHE_DIR, "latency")
PROFILES = os.path.join(os.path.dirname(__file__), "profiles.md")
TARGETS = (0.5, 0.33)
ROUND_TO = (1, 8, 16)
# "global" is tfprune's default (one ranking over all layers); "uniform"
# (every layer loses the same fraction) shows what the allocation does to
# latency, with widths rounded as a phone's kernels like them.
SCOPES = (("global", ROUND_TO), ("uniform", (8, 16)))
QUANTIZATIONS = ("none", "int8")


def _small(name):
    """A Fashion-MNIST model: the trained baseline if cached, else random."""
    path = protocol.baseline_path(name)
    if os.path.exists(path):
        return keras.saving.load_model(path, compile=False), "trained"
    protocol.set_seed()
    return protocol.MODELS[name](), "random"


def _mobilenet_v2():
    protocol.set_seed()
    # Logits out: the final 1000-way softmax (about 0.03% of the time) is
    # left off, so that the export check compares the network's own
    # outputs rather than a softmax that random weights make uniform.
    return keras.applications.MobileNetV2(alpha=1.0, input_shape=(224, 224, 3),
                                          weights=None, classifier_activation=None), "random"


MODELS = {
    "resnet20": lambda: _small("resnet20"),
    "vgg11": lambda: _small("vgg11"),
    "mobilenet_v2": _mobilenet_v2,
}


def _data(name, model):
    """(calibration inputs, (verification inputs, labels) or None)."""
    if name == "mobilenet_v2":
        # No ImageNet here: calibrate on random images in MobileNetV2's
        # [-1, 1] input range; latency does not depend on the values.
        rng = np.random.default_rng(protocol.SEED)
        return rng.uniform(-1, 1, (32, 224, 224, 3)).astype("float32"), None
    from tfprune import datasets

    calib = datasets.load("fashion_mnist", split="train", as_numpy=True, limit=256)[0]
    test = datasets.load("fashion_mnist", split="test", as_numpy=True, limit=1000)
    return calib, test


def _variants(model):
    """(method, target, scope, round_to, keras model), original first."""
    graph = tfprune.analyze(model)
    out = [("original", None, None, None, model)]
    for scope, round_tos in SCOPES:
        for round_to in round_tos:
            for target in TARGETS:
                try:
                    plan = tfprune.prune(graph, tfprune.Budget(macs=target, round_to=round_to),
                                         criterion="l1", scope=scope)
                except tfprune.TargetUnreachableError as e:
                    # e.g. ResNet-20's 16-channel stage cannot go below 16.
                    print(f"  skip l1 {target} {scope} round_to={round_to}: {e}",
                          flush=True)
                    continue
                out.append(("l1", target, scope, round_to, tfprune.rebuild(model, plan)))
    return out


def _export(name, variants, calib, test, weights):
    """Converts every variant in both precisions; returns file records."""
    os.makedirs(WORK, exist_ok=True)
    base_cost = tfprune.cost(variants[0][-1])
    files = []
    for method, target, scope, round_to, model in variants:
        cost = tfprune.cost(model)
        for quantization in QUANTIZATIONS:
            tag = method if target is None else f"{method}{target}_{scope}_r{round_to}"
            path = os.path.join(WORK, f"{name}_{tag}_{quantization}.tflite")
            info = tflite_export.convert(
                model, path, quantization=quantization, representative_data=calib,
                verification_data=test, verify_samples=1000 if test else 16)
            print(f"  {os.path.basename(path)}: {info.size_bytes:,} bytes, "
                  f"max err {info.max_abs_error:.3g}, top-1 agreement "
                  f"{info.top1_agreement:.3f}", flush=True)
            files.append({
                "path": path, "method": method, "target": target, "scope": scope,
                "round_to": round_to, "quantization": quantization,
                "macs": cost.macs, "params": cost.params,
                "macs_ratio": round(cost.macs / base_cost.macs, 4),
                "widths": _widths(model),
                # With random weights MobileNetV2's logits shrink to ~1e-13,
                # so agreement says nothing; it is kept for trained models.
                "top1_agreement": round(info.top1_agreement, 4)
                if weights == "trained" else None,
                "tflite_acc": None if info.accuracy is None or weights != "trained"
                else round(info.accuracy, 4),
                "gzip_bytes": len(gzip.compress(open(path, "rb").read(), 9)),
            })
    return files


def _widths(model):
    """Output channels of every convolution, by name (not the classifier,
    whose width is the number of classes)."""
    return {layer.name: layer.filters for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D)
            and not isinstance(layer, keras.layers.DepthwiseConv2D)}


def _tfmot_twin(model, calib):
    """50%-sparse tf_keras ResNet-20 with `model`'s weights, as .tflite files.

    Returns:
        (file records, None) or ([], the reason it could not be built).
    """
    try:
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras
    except ImportError as e:
        return [], f"the [bench] extra is not installed ({e})"
    twin = _tf_keras_resnet(model)
    gap = np.max(np.abs(twin(calib[:8], training=False).numpy()
                        - keras.ops.convert_to_numpy(model(calib[:8], training=False))))
    if gap > 1e-3:
        return [], f"the tf_keras twin differs from the model by {gap:.3g}"
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        twin, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=1))
    # One optimiser step with learning rate 0 makes the pruning callback set
    # the masks without changing any weight; frozen BatchNorm layers keep
    # their moving statistics.
    for layer in pruned.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, tf_keras.layers.BatchNormalization):
            layer.trainable = False
    pruned.compile(optimizer=tf_keras.optimizers.SGD(0.0),
                   loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(calib[:32], np.zeros(32, "int32"), batch_size=32, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernels = [w for w in stripped.weights if "kernel" in w.name]
    zeros = sum(int(np.sum(w.numpy() == 0)) for w in kernels)
    sparsity = zeros / sum(int(np.prod(w.shape)) for w in kernels)

    files = []
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    fn = tf.function(lambda x: stripped(x, training=False),
                     input_signature=[tf.TensorSpec(shape, tf.float32, name="input")])
    with tempfile.TemporaryDirectory() as saved_model:
        module = tf.Module()
        module.model = stripped
        module.serve = fn
        tf.saved_model.save(module, saved_model, signatures={"serving_default": fn})
        for quantization in QUANTIZATIONS:
            content = tflite_export.convert_saved_model(saved_model, quantization, calib)
            path = os.path.join(WORK, f"resnet20_tfmot0.5_{quantization}.tflite")
            with open(path, "wb") as f:
                f.write(content)
            files.append({
                "path": path, "method": "tfmot prune_low_magnitude", "target": 0.5,
                "scope": None, "round_to": None, "quantization": quantization,
                "macs": tflite_export.model_info(content).macs,
                "params": int(stripped.count_params()), "macs_ratio": 1.0,
                "sparsity": round(sparsity, 4), "top1_agreement": None,
                "tflite_acc": None, "gzip_bytes": len(gzip.compress(content, 9)),
            })
    return files, None


def _tf_keras_resnet(model):
    """A tf_keras twin of the zoo's ResNet-20: same layers, same names.

    tfmot only accepts tf_keras models, so the peer is rebuilt layer for
    layer with tf_keras, following `tfprune.zoo.resnet`'s naming scheme,
    and then carries the Keras 3 model's weights.
    """
    import tf_keras
    from tf_keras import layers as L

    def conv_bn(x, filters, kernel, strides, name):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same",
                     use_bias=False, name=f"{name}_conv")(x)
        return L.BatchNormalization(name=f"{name}_bn")(x)

    inputs = L.Input(tuple(model.inputs[0].shape[1:]), name="input")
    x = L.ReLU(name="stem_relu")(conv_bn(inputs, 16, 3, 1, "stem"))
    for s, filters in enumerate((16, 32, 64), start=1):
        for b in range(3):
            strides, prefix = (2 if s > 1 and b == 0 else 1), f"stage{s}_block{b}"
            y = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                         name=f"{prefix}_conv1")(x)
            y = L.ReLU(name=f"{prefix}_relu1")(L.BatchNormalization(name=f"{prefix}_bn1")(y))
            y = L.Conv2D(filters, 3, padding="same", use_bias=False,
                         name=f"{prefix}_conv2")(y)
            y = L.BatchNormalization(name=f"{prefix}_bn2")(y)
            shortcut = x
            if strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(x, filters, 1, strides, f"{prefix}_shortcut")
            x = L.ReLU(name=f"{prefix}_relu2")(L.Add(name=f"{prefix}_add")([y, shortcut]))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    twin = tf_keras.Model(inputs, L.Dense(10, name="predictions")(x), name="resnet20")
    for layer in model.layers:
        if layer.weights:
            twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def _time(name, files, threads, runs, warmup, weights):
    reports = tflite_export.compare([f["path"] for f in files], threads=threads,
                                    runs=runs, warmup=warmup)
    base = {f["quantization"]: r.median_ms for f, r in zip(files, reports)
            if f["method"] == "original"}
    base_min = {f["quantization"]: r.min_ms for f, r in zip(files, reports)
                if f["method"] == "original"}
    base_size = {f["quantization"]: r.size_bytes for f, r in zip(files, reports)
                 if f["method"] == "original"}
    rows = []
    for f, r in zip(files, reports):
        row = {
            "kind": "latency", "model": name, "method": f["method"],
            "target": f["target"], "scope": f["scope"], "round_to": f["round_to"],
            "quantization": f["quantization"], "threads": threads,
            "latency_ms": round(r.median_ms, 4), "p90_ms": round(r.p90_ms, 4),
            "latency_ratio": round(r.median_ms / base[f["quantization"]], 4),
            # The fastest run is the least disturbed by other processes.
            "min_ms": round(r.min_ms, 4),
            "min_ratio": round(r.min_ms / base_min[f["quantization"]], 4),
            "macs": f["macs"], "macs_ratio": f["macs_ratio"],
            "size_bytes": r.size_bytes,
            "size_ratio": round(r.size_bytes / base_size[f["quantization"]], 4),
            "gzip_bytes": f["gzip_bytes"], "params": f["params"],
            "top1_agreement": f["top1_agreement"], "tflite_acc": f["tflite_acc"],
            "runs": runs, "weights": weights, "xnnpack": r.xnnpack,
            # Other work on the machine slows the runs down; the 1-minute
            # load average says how much there was.
            "load_avg": round(os.getloadavg()[0], 2),
        }
        if "sparsity" in f:
            row["sparsity"] = f["sparsity"]
        rows.append(row)
        print(f"  {threads}t {os.path.basename(f['path']):<36} "
              f"{r.median_ms:8.3f} ms  latency ratio {row['latency_ratio']:.3f}  "
              f"MACs ratio {row['macs_ratio']:.3f}", flush=True)
    return rows


def _profiles(name, files, runs):
    """Markdown: time per op type, original vs the 50%-MACs models."""
    chosen = [f for f in files if f["method"] == "original"
              or (f["method"] == "l1" and f["target"] == 0.5)]
    out = [f"## {name}", "", "The original against the models pruned with a 50% "
           "MACs target. Labels: `global`/`uniform` scope, `rN` = widths rounded "
           "to multiples of N (r1: free; rounding can overshoot the target, see "
           "the MACs ratios). Time and MACs ratios are to the original, per op "
           "type; GMAC/s is low for memory-bound ops.", ""]
    original = next(f for f in chosen if f["method"] == "original")["widths"]
    for f in chosen:
        if f["method"] == "original" or f["quantization"] != "none":
            continue
        kept = {k: f["widths"][k] for k in original if k in f["widths"]}
        untouched = [k for k in kept if kept[k] == original[k]]
        odd = [k for k in kept if kept[k] % 8]
        out.append(f"- l1 50% {f['scope']} round_to={f['round_to']}: {len(untouched)} "
                   f"of {len(kept)} conv layers keep all their channels"
                   + (f" ({', '.join(untouched[:8])}{', ...' if len(untouched) > 8 else ''})"
                      if untouched else "")
                   + f"; widths not a multiple of 8: {len(odd)}.")
    out.append("")
    for quantization in QUANTIZATIONS:
        group = [f for f in chosen if f["quantization"] == quantization]
        profiles = tflite_export.compare_profiles([f["path"] for f in group],
                                                  threads=1, runs=runs)
        labels = ["original" if f["method"] == "original"
                  else f"{f['scope']} r{f['round_to']}" for f in group]
        macs = ", ".join(f"{lab} {f['macs_ratio']:.3f}"
                         for lab, f in zip(labels, group) if f["method"] != "original")
        base = profiles[0].by_op()
        total_ms = profiles[0].sum_ms or 1.0
        total_macs = sum(r["macs"] for r in base.values()) or 1
        out += [f"### {quantization}, 1 thread", "",
                "whole model (median ms): " + ", ".join(
                    f"{lab} {p.whole_ms:.3f}" for lab, p in zip(labels, profiles))
                + "; sum of nodes timed alone: " + ", ".join(
                    f"{p.sum_ms:.3f}" for p in profiles), "",
                f"MACs ratio of the pruned models: {macs}.", "",
                "| op | nodes | share of time | share of MACs | GMAC/s | "
                + " | ".join(f"{lab}: time / MACs ratio" for lab in labels[1:]) + " |",
                "|---" * (5 + len(labels) - 1) + "|"]
        for op, row in base.items():
            cells = [op, str(row["count"]), f"{row['ms'] / total_ms:.1%}",
                     f"{row['macs'] / total_macs:.1%}",
                     f"{row['macs'] / row['ms'] / 1e6:.1f}" if row["macs"] and row["ms"] else ""]
            for p in profiles[1:]:
                r = p.by_op().get(op, {"ms": 0.0, "macs": 0})
                time_ratio = f"{r['ms'] / row['ms']:.3f}" if row["ms"] else "-"
                macs_ratio = f"{r['macs'] / row['macs']:.3f}" if row["macs"] else "-"
                cells.append(f"{time_ratio} / {macs_ratio}")
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "Slowest nodes of the original:", "", "```",
                "\n".join(profiles[0].summary(top=8).splitlines()[-8:]), "```", ""]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--runs", type=int, default=None,
                   help="timed runs per file (default 300 for the 28x28 models, "
                        "200 for MobileNetV2)")
    p.add_argument("--no-peer", action="store_true", help="skip the tfmot row")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--profile-only", action="store_true",
                   help="export and write profiles.md, but time no rows")
    p.add_argument("--no-write", action="store_true",
                   help="print only; write no rows (smoke test)")
    a = p.parse_args(argv)
    profile_md = ["# Per-op profiles", "",
                  "Written by `python -m benchmarks.latency`. Each node of the "
                  "`.tflite` file is cut out into a one-node model and timed "
                  "alone with the LiteRT interpreter (XNNPACK, 1 thread; all "
                  "nodes of the compared files interleaved, median of the "
                  "runs); the interpreter's Python API has no per-op "
                  "profiler. "
                  f"Machine: {results.machine()}.", ""]
    for name in a.models:
        print(f"{name}: build, prune, export", flush=True)
        model, weights = MODELS[name]()
        calib, test = _data(name, model)
        files = _export(name, _variants(model), calib, test, weights)
        if name == "resnet20" and not a.no_peer:
            peer, reason = _tfmot_twin(model, calib)
            if reason:
                print(f"  no tfmot peer row: {reason}")
            files += peer
        runs = a.runs or (200 if name == "mobilenet_v2" else 300)
        for threads in [] if a.profile_only else a.threads:
            rows = _time(name, files, threads, runs, warmup=max(10, runs // 10),
                         weights=weights)
            if not a.no_write:
                results.extend(rows)
        if not a.no_profile:
            profile_md += _profiles(name, files, runs=max(10, min(runs, 100)))
    if not a.no_profile:
        if a.no_write:
            print("\n".join(profile_md))
        else:
            with open(PROFILES, "w") as f:
                f.write("\n".join(profile_md) + "\n")


if __name__ == "__main__":
    main()
