"""Torch-Pruning on the same ResNet-20 under the same protocol (the peer).

Trains tfprune.zoo.resnet20's architecture in PyTorch (3x3 stem, three
stages of 16/32/64 channels with three basic blocks each, bias-free convs
with BatchNorm, 1x1 stride-2 projection shortcuts where the shape changes,
Add then ReLU, global average pool, linear classifier) under
../shared/BENCHMARK_PROTOCOL.md, as benchmarks/protocol.py does for Keras:

- data: all 60,000 Fashion-MNIST training images, the 10,000-image test set,
  scaled to [0, 1] and standardised with the training mean/std; random
  horizontal flip (p = 0.5) and a random shift of up to 2 pixels (zero
  padding of the raw image, i.e. black borders) while training;
- baseline: 8 epochs, batch 128, SGD with Nesterov momentum 0.9, weight
  decay 5e-4 applied as Keras 3 applies it (decoupled: w -= lr * wd * w on
  every parameter, before the step), one-cycle learning rate (linear warm-up
  over 30% of the steps to 0.1, cosine down to 0), fixed seed, cached;
- Keras defaults where the protocol is silent, so both frameworks train the
  same network: Glorot-uniform weights, zero biases, BatchNorm epsilon 1e-3
  and momentum 0.99 (Keras convention; 0.01 in PyTorch's).

Then Torch-Pruning prunes it at 50%, 33% and 20% of the baseline MACs with
three importance criteria: uniform L1 (`GroupMagnitudeImportance(p=1)`,
every group the same ratio), global group L2 (`GroupMagnitudeImportance(
p=2)`, `global_pruning=True`) and global Taylor (`GroupTaylorImportance`,
gradients from 512 training images). The pruning ratio is found by
bisection so that the pruned MACs are the largest at or under the target.
Each pruned model is fine-tuned 3 epochs at a one-cycle peak of 0.05.

Usage (from the repository root, with the `peers` extra installed):

    python -m benchmarks.peers.torch_pruning [--targets 0.5 0.33 0.2]
        [--methods uniform-l1 global-group-l2 global-taylor] [--seed 0]
    python -m benchmarks.peers.torch_pruning --train-images 512 --epochs 1 \
        --test-images 512   # smoke test: seconds, writes no row

Diagnostics, each changing one thing (rows get a method suffix):

    python -m benchmarks.peers.keras_weights   # tfprune's baseline, exported
    python -m benchmarks.peers.torch_pruning --keras-baseline \
        benchmarks/cache/resnet20_<key>.weights.npz   # @keras-baseline
    python -m benchmarks.peers.torch_pruning --keras-padding  # @keras-padding

`--keras-baseline` prunes and fine-tunes tfprune's own trained network
(converted, it scores what it scored in Keras), so a remaining gap is the
pruning and fine-tuning's; `--keras-padding` trains a PyTorch baseline that
pads stride-2 convolutions as Keras does (bottom/right only).

`--seed` varies the calibration images, the data order and the augmentation
of pruning and fine-tuning; every seed starts from the one cached baseline
(seed 0), as tfprune's rows do.

Rows (with "framework": "torch-pruning") go to benchmarks/results through
`results.append(row)` only for full-protocol runs.
"""

import argparse
import copy
import gzip
import importlib.util
import math
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Run as a file, this directory would come first on sys.path and this module
# would shadow the torch_pruning package it is named after.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
    import torch_pruning as tp  # noqa: E402
except ImportError as e:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"benchmarks/peers/torch_pruning.py needs PyTorch and Torch-Pruning ({e}); "
        "install them with: pip install -e '.[peers]'") from e

DATA_DIR = "/usr/share/datasets/fashion-mnist"
CACHE_DIR = os.path.join(ROOT, "benchmarks", "cache")
BATCH = 128
BASELINE_EPOCHS = 8
BASELINE_PEAK_LR = 0.1
FINETUNE_EPOCHS = 3
FINETUNE_PEAK_LR = 0.05
WEIGHT_DECAY = 5e-4
BASELINE_SEED = 0
SHIFT = 2
CALIBRATION = 512
METHODS = ("uniform-l1", "global-group-l2", "global-taylor")


# ---------------------------------------------------------------- data

def _read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(data_dir=DATA_DIR):
    """{split: (uint8 images N x 28 x 28, int64 labels)} from the IDX files."""
    def path(base):
        for name in (base + ".gz", base):
            if os.path.exists(os.path.join(data_dir, name)):
                return os.path.join(data_dir, name)
        raise SystemExit(f"{base}(.gz) not found in {data_dir}; pass --data-dir.")
    return {split: (_read_idx(path(f"{prefix}-images-idx3-ubyte")),
                    _read_idx(path(f"{prefix}-labels-idx1-ubyte")).astype(np.int64))
            for split, prefix in (("train", "train"), ("test", "t10k"))}


class Data:
    """Standardised tensors and protocol batches (flip + 2-pixel shift)."""

    def __init__(self, arrays, train_images=None, test_images=None):
        x, y = arrays["train"]
        pixels = x.astype(np.float64) / 255.0
        self.mean, self.std = float(pixels.mean()), float(pixels.std())
        if train_images:
            x, y = x[:train_images], y[:train_images]
        self.x_train, self.y_train = self._tensor(x), torch.from_numpy(y)
        x, y = arrays["test"]
        if test_images:
            x, y = x[:test_images], y[:test_images]
        self.x_test, self.y_test = self._tensor(x), torch.from_numpy(y)

    def _tensor(self, images):
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        return (x - self.mean) / self.std

    def steps_per_epoch(self):
        return math.ceil(len(self.x_train) / BATCH)

    def train_batches(self, generator):
        n = len(self.x_train)
        order = torch.randperm(n, generator=generator)
        black = -self.mean / self.std  # a raw 0 pixel after standardisation
        for start in range(0, n, BATCH):
            idx = order[start:start + BATCH]
            x, y = self.x_train[idx], self.y_train[idx]
            flip = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            padded = F.pad(x, (SHIFT,) * 4, value=black)
            offsets = torch.randint(0, 2 * SHIFT + 1, (len(x), 2), generator=generator)
            x = torch.stack([padded[i, :, oy:oy + 28, ox:ox + 28]
                             for i, (oy, ox) in enumerate(offsets.tolist())])
            yield x, y

    def calibration(self, n=CALIBRATION, seed=0):
        idx = torch.randperm(len(self.x_train), generator=torch.Generator().manual_seed(seed))
        idx = idx[:n]
        return self.x_train[idx], self.y_train[idx]


# ---------------------------------------------------------------- model

def _bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, keras_padding=False):
        super().__init__()
        # Keras "same" at stride 2 pads one pixel at the bottom/right only;
        # PyTorch's padding=1 pads both sides (a one-pixel shift of the grid).
        self.pad = (0, 1, 0, 1) if keras_padding and stride == 2 else None
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if self.pad else 1, bias=False)
        self.bn1 = _bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          _bn(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(F.pad(x, self.pad) if self.pad else x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """He et al.'s CIFAR ResNet, as tfprune.zoo.resnet builds it."""

    def __init__(self, depth=20, classes=10, in_channels=1, keras_padding=False):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
                                  _bn(16), nn.ReLU())
        blocks, cin = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for b in range(n):
                blocks.append(Block(cin, width, 2 if stage and not b else 1, keras_padding))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------- training

def one_cycle(step, peak, total, warmup=0.3):
    """benchmarks.protocol.OneCycle: linear warm-up, cosine down."""
    up = max(1.0, warmup * total)
    down = max(1.0, total - up)
    if step < up:
        return peak * step / up
    t = min(1.0, max(0.0, (step - up) / down))
    return peak * 0.5 * (1.0 + math.cos(math.pi * t))


def train(model, data, epochs, peak_lr, seed):
    """Protocol SGD; returns wall seconds."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, nesterov=True)
    total, step = epochs * data.steps_per_epoch(), 0
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        seen, correct, loss_sum = 0, 0, 0.0
        for x, y in data.train_batches(generator):
            lr = one_cycle(step, peak_lr, total)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.no_grad():  # Keras 3's weight decay: decoupled, times lr
                for p in model.parameters():
                    p.mul_(1.0 - lr * WEIGHT_DECAY)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
        print(f"  epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, "
              f"accuracy {correct / seen:.4f}", flush=True)
    return time.perf_counter() - start


@torch.no_grad()
def accuracy(model, data):
    model.eval()
    correct = 0
    for start in range(0, len(data.x_test), 1000):
        logits = model(data.x_test[start:start + 1000])
        correct += int((logits.argmax(1) == data.y_test[start:start + 1000]).sum())
    return correct / len(data.x_test)


def baseline(data, epochs, seed, tag, keras_padding=False):
    """(model, accuracy, wall seconds): cached in benchmarks/cache."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    tag += "_kpad" if keras_padding else ""
    path = os.path.join(CACHE_DIR, f"torch_resnet20_e{epochs}_s{seed}{tag}.pt")
    torch.manual_seed(seed)
    model = ResNet(keras_padding=keras_padding)
    if os.path.exists(path):
        saved = torch.load(path)
        model.load_state_dict(saved["state"])
        return model, saved["accuracy"], saved["wall_s"]
    wall = train(model, data, epochs, BASELINE_PEAK_LR, seed)
    acc = accuracy(model, data)
    with _fileio().atomic_path(path) as tmp:  # a killed run leaves no half-written cache
        torch.save({"state": model.state_dict(), "accuracy": acc, "wall_s": wall}, tmp)
    return model, acc, wall


def keras_baseline(path, data):
    """(model, accuracy, 0.0): tfprune's Keras baseline in this ResNet.

    `path` is written by `python -m benchmarks.peers.keras_weights`: Keras
    weights by "layer/weight" name. The network is built with Keras's
    stride-2 padding, and must score on the test set what it scored in Keras.
    """
    arrays = np.load(path)
    model = ResNet(keras_padding=True)

    def put(tensor, array):
        array = torch.from_numpy(np.ascontiguousarray(array))
        if tensor.shape != array.shape:
            raise SystemExit(f"{path}: a weight of shape {tuple(array.shape)} does not fit "
                             f"{tuple(tensor.shape)}; export a resnet20 baseline.")
        with torch.no_grad():
            tensor.copy_(array)

    def conv(module, name):  # Keras (kh, kw, in, out) -> PyTorch (out, in, kh, kw)
        put(module.weight, arrays[f"{name}/kernel"].transpose(3, 2, 0, 1))

    def bn(module, name):
        for tensor, weight in ((module.weight, "gamma"), (module.bias, "beta"),
                               (module.running_mean, "moving_mean"),
                               (module.running_var, "moving_variance")):
            put(tensor, arrays[f"{name}/{weight}"])

    conv(model.stem[0], "stem_conv")
    bn(model.stem[1], "stem_bn")
    per_stage = len(model.blocks) // 3
    for i, block in enumerate(model.blocks):
        prefix = f"stage{i // per_stage + 1}_block{i % per_stage}"
        conv(block.conv1, f"{prefix}_conv1")
        bn(block.bn1, f"{prefix}_bn1")
        conv(block.conv2, f"{prefix}_conv2")
        bn(block.bn2, f"{prefix}_bn2")
        if block.shortcut is not None:
            conv(block.shortcut[0], f"{prefix}_shortcut_conv")
            bn(block.shortcut[1], f"{prefix}_shortcut_bn")
    put(model.fc.weight, arrays["predictions/kernel"].T)
    put(model.fc.bias, arrays["predictions/bias"])
    acc, keras_acc = accuracy(model, data), float(arrays["test_acc"])
    if abs(acc - keras_acc) > 0.002 and len(data.x_test) == 10000:
        raise SystemExit(f"{path}: the converted baseline scores {acc:.4f}, Keras "
                         f"{keras_acc:.4f}; the conversion is wrong.")
    return model, acc, 0.0


def _fileio():
    """tfprune.fileio, loaded on its own: importing the tfprune package
    needs Keras, which is not installed where only torch runs."""
    spec = importlib.util.spec_from_file_location(
        "_tfprune_fileio", os.path.join(ROOT, "tfprune", "fileio.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- pruning

def _importance(method):
    if method == "uniform-l1":
        return tp.importance.GroupMagnitudeImportance(p=1), False
    if method == "global-group-l2":
        return tp.importance.GroupMagnitudeImportance(p=2), True
    if method == "global-taylor":
        return tp.importance.GroupTaylorImportance(), True
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}.")


def _prune_at(base, method, ratio, example, calibration):
    model = copy.deepcopy(base)
    importance, global_pruning = _importance(method)
    pruner = tp.pruner.BasePruner(
        model, example, importance=importance, global_pruning=global_pruning,
        pruning_ratio=ratio, ignored_layers=[model.fc])
    if method == "global-taylor":
        model.eval()  # gradients of the trained network as it is used
        model.zero_grad()
        x, y = calibration
        for start in range(0, len(x), 64):
            F.cross_entropy(model(x[start:start + 64]), y[start:start + 64]).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    return model


def prune_to_macs(base, method, target, calibration, iterations=12):
    """The pruned model with the most MACs at or under `target` x base MACs."""
    example = torch.zeros(1, 1, 28, 28)
    base_macs, _ = tp.utils.count_ops_and_params(base, example)
    lo, hi, best = 0.0, 0.99, None
    for _ in range(iterations):
        mid = (lo + hi) / 2
        model = _prune_at(base, method, mid, example, calibration)
        macs, _ = tp.utils.count_ops_and_params(model, example)
        if macs <= target * base_macs:
            best, hi = (model, mid), mid
        else:
            lo = mid
    if best is None:
        raise SystemExit(f"{method}: no pruning ratio reaches {target} of the MACs.")
    return best


def run(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    reduced = bool(args.train_images or args.test_images or args.epochs != BASELINE_EPOCHS
                   or args.finetune_epochs != FINETUNE_EPOCHS)
    if not reduced:
        # Imported now, so rows record the commit checked out when the run began.
        from benchmarks import results
    data = Data(load_fashion_mnist(args.data_dir), args.train_images, args.test_images)
    tag = (f"_n{args.train_images}" if args.train_images else "") + \
        (f"_t{args.test_images}" if args.test_images else "")
    # One baseline for every seed, as tfprune's benchmarks: a seed varies the
    # pruning and fine-tuning (calibration images, data order, augmentation).
    if args.keras_baseline:
        base, base_acc, base_wall = keras_baseline(args.keras_baseline, data)
        print(f"baseline from {args.keras_baseline}: accuracy {base_acc:.4f}", flush=True)
    else:
        base, base_acc, base_wall = baseline(data, args.epochs, BASELINE_SEED, tag,
                                             args.keras_padding)
        print(f"baseline: accuracy {base_acc:.4f} ({base_wall:.0f} s)", flush=True)
    suffix = ("@keras-baseline" if args.keras_baseline
              else "@keras-padding" if args.keras_padding else "")
    example = torch.zeros(1, 1, 28, 28)
    base_macs, base_params = tp.utils.count_ops_and_params(base, example)
    calibration = data.calibration(seed=args.seed)
    rows = []
    for method in args.methods:
        for target in args.targets:
            start = time.perf_counter()
            if method == "unpruned":  # the control: only the fine-tuning epochs
                model, ratio = copy.deepcopy(base), 0.0
            else:
                model, ratio = prune_to_macs(base, method, target, calibration)
            macs, params = tp.utils.count_ops_and_params(model, example)
            before = accuracy(model, data)
            train(model, data, args.finetune_epochs, FINETUNE_PEAK_LR, args.seed)
            acc = accuracy(model, data)
            row = {"kind": "accuracy", "model": "resnet20", "method": method + suffix,
                   "framework": "torch-pruning", "target": target,
                   "macs_ratio": round(macs / base_macs, 4),
                   "params_ratio": round(params / base_params, 4),
                   "pruning_ratio": round(ratio, 4),
                   "acc_before_finetune": round(before, 4), "test_acc": round(acc, 4),
                   "baseline_acc": round(base_acc, 4),
                   "epochs": f"{args.epochs}+{args.finetune_epochs}",
                   "seed": args.seed, "wall_s": round(time.perf_counter() - start, 1),
                   "torch_pruning": _version("torch-pruning"),
                   "torch": torch.__version__}
            print({**row, "machine": _machine()}, flush=True)
            rows.append(row)
            if not reduced:
                # BENCHMARKS.md is redrawn where Keras and matplotlib are
                # installed (`python -m benchmarks.report`), not in a torch-only venv.
                results.append({**row, "scope": "torch-pruning", "round_to": None},
                               report=False)
    if rows and not reduced:
        print("rows appended to benchmarks/results.jsonl; redraw BENCHMARKS.md with "
              "`python -m benchmarks.report`", flush=True)
    return rows


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.33, 0.2])
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   choices=METHODS + ("unpruned",),
                   help="unpruned: a control, the baseline fine-tuned as the pruned "
                   "models are (give --targets 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the pruning and fine-tuning; the baseline is always "
                   f"the seed-{BASELINE_SEED} one")
    p.add_argument("--epochs", type=int, default=BASELINE_EPOCHS,
                   help="baseline epochs (other than 8: a smoke run, writes no row)")
    p.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    p.add_argument("--train-images", type=int, help="first N training images (smoke)")
    p.add_argument("--test-images", type=int, help="first N test images (smoke)")
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--keras-baseline", metavar="NPZ",
                   help="start from tfprune's Keras baseline (weights written by "
                   "`python -m benchmarks.peers.keras_weights`) instead of the PyTorch "
                   "one: rows get the method suffix @keras-baseline")
    p.add_argument("--keras-padding", action="store_true",
                   help="train and prune a PyTorch baseline padded as Keras pads a "
                   "stride-2 'same' conv (bottom/right only): rows get the method "
                   "suffix @keras-padding")
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
