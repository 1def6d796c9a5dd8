"""Small image-classification datasets for pruning experiments.

Fashion-MNIST is read from the original gzip'ed IDX files that the Debian
package `dataset-fashion-mnist` installs under
`/usr/share/datasets/fashion-mnist/`, so it works offline. If those files are
missing, and for every other dataset, `tensorflow-datasets` is used instead.

Images come out as float32 NHWC scaled to [0, 1] and, by default,
standardised with the per-channel mean and standard deviation of the full
training split. Labels are int32.

Parsed arrays are cached in-process, so repeated `load` calls are cheap; use
`clear_cache()` to drop them.
"""

import gzip
import os
import zlib

import numpy as np
import tensorflow as tf

from tfprune.errors import DatasetUnavailableError

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "DatasetUnavailableError",
    "clear_cache",
    "info",
    "load",
]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_SPLITS = ("train", "test")

# IDX base names per split; each may exist gzip'ed (".gz") or plain.
_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_FIX_HINT = (
    "Install the Debian package with `sudo apt-get install "
    "dataset-fashion-mnist`, or install tensorflow-datasets with "
    "`pip install tensorflow-datasets` (it downloads on first use)."
)

_CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle "
    "bowl boy bridge bus butterfly camel can castle caterpillar cattle "
    "chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house "
    "kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man "
    "maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark "
    "shrew skunk skyscraper snail snake spider squirrel streetcar "
    "sunflower sweet_pepper table tank telephone television tiger tractor "
    "train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()

_DIGITS = tuple(str(i) for i in range(10))

# Static metadata. `hflip` says whether a horizontal flip is a valid
# augmentation: it is not for digits, where it changes the meaning.
_METADATA = {
    "fashion_mnist": {
        "input_shape": (28, 28, 1),
        "class_names": (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        "hflip": True,
    },
    "mnist": {
        "input_shape": (28, 28, 1),
        "class_names": _DIGITS,
        "hflip": False,
    },
    "cifar10": {
        "input_shape": (32, 32, 3),
        "class_names": (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        "hflip": True,
    },
    "cifar100": {
        "input_shape": (32, 32, 3),
        "class_names": tuple(_CIFAR100_CLASSES),
        "hflip": True,
    },
    "svhn_cropped": {
        "input_shape": (32, 32, 3),
        "class_names": _DIGITS,
        "hflip": False,
    },
}

# Maximum shift, in pixels, of the random-translation augmentation.
_SHIFT = 2

# key -> {"train": (x, y), "test": (x, y), "mean", "std", "class_names"}
_CACHE = {}


def clear_cache():
    """Drops the in-process cache of parsed datasets.

    Example:

    >>> clear_cache()
    """
    _CACHE.clear()


def _canonical_name(name):
    key = str(name).strip().lower().replace("-", "_")
    if key not in _METADATA:
        raise ValueError(
            f"Unknown dataset {name!r}. Valid names: {', '.join(_METADATA)}."
        )
    return key


def _read_idx(path, expected_ndim):
    """Parses one IDX file of unsigned bytes into a read-only array.

    The IDX header is two zero bytes, a type code (0x08 for uint8), the
    number of dimensions, then one big-endian uint32 per dimension.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(
                f"Corrupt or truncated gzip file {path}: {e}"
            ) from e
    expected_magic = 0x0800 | expected_ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        found = "too short" if magic is None else f"{magic:#010x}"
        raise ValueError(
            f"{path} is not a valid IDX file: magic number is {found}, "
            f"expected {expected_magic:#010x} (uint8, {expected_ndim}-D)."
        )
    header_size = 4 + 4 * expected_ndim
    if len(raw) < header_size:
        raise ValueError(f"{path} is truncated: incomplete IDX header.")
    dims = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big")
        for i in range(expected_ndim)
    )
    expected_size = header_size + int(np.prod(dims, dtype=np.int64))
    if len(raw) < expected_size:
        raise ValueError(
            f"{path} is truncated: the header declares shape {dims} "
            f"({expected_size} bytes) but the data holds {len(raw)} bytes."
        )
    if len(raw) > expected_size:
        raise ValueError(
            f"{path} is corrupt: {len(raw) - expected_size} unexpected bytes "
            f"after the {dims} array the header declares."
        )
    # `frombuffer` over `bytes` gives a read-only view, safe to cache.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(
        dims
    )


def _find_idx_files(directory):
    """Returns ({split: (images_path, labels_path)}, missing_names)."""
    found, missing = {}, []
    for split, bases in _FASHION_MNIST_FILES.items():
        paths = []
        for base in bases:
            for candidate in (base + ".gz", base):
                path = os.path.join(directory, candidate)
                if os.path.isfile(path):
                    paths.append(path)
                    break
            else:
                missing.append(base + ".gz")
        found[split] = tuple(paths)
    return found, missing


def _parse_fashion_mnist(files, num_classes):
    arrays = {}
    for split, (images_path, labels_path) in files.items():
        images = _read_idx(images_path, expected_ndim=3)
        labels = _read_idx(labels_path, expected_ndim=1)
        if images.shape[0] == 0:
            raise ValueError(f"{images_path} contains no images.")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{labels_path} has {labels.shape[0]} labels but "
                f"{images_path} has {images.shape[0]} images."
            )
        if labels.max() >= num_classes:
            raise ValueError(
                f"{labels_path} is corrupt: label {int(labels.max())} is "
                f"out of range for {num_classes} classes."
            )
        arrays[split] = (images[..., np.newaxis], labels.astype(np.int32))
    return arrays


def _import_tfds():
    """Returns (module, None) or (None, reason it could not be imported)."""
    try:
        import tensorflow_datasets as tfds
    except Exception as e:  # A broken install is as unusable as none.
        return None, f"{type(e).__name__}: {e}"
    return tfds, None


def _load_tfds(name, data_dir, context=""):
    tfds, reason = _import_tfds()
    if tfds is None:
        hint = _FIX_HINT if name == "fashion_mnist" else (
            "Install it with `pip install tensorflow-datasets`."
        )
        raise DatasetUnavailableError(
            f"{context}Dataset {name!r} needs tensorflow-datasets, which "
            f"could not be imported ({reason}). {hint}"
        )
    try:
        data, ds_info = tfds.load(
            name,
            split=list(_SPLITS),
            batch_size=-1,
            as_supervised=True,
            data_dir=data_dir,
            with_info=True,
        )
        data = tfds.as_numpy(data)
    except Exception as e:
        hint = _FIX_HINT if name == "fashion_mnist" else (
            "tensorflow-datasets downloads the data on first use, which "
            "needs internet access; or prepare it in `data_dir`."
        )
        raise DatasetUnavailableError(
            f"{context}tfds.load({name!r}) failed: {e}. {hint}"
        ) from e
    arrays = {}
    for split, (images, labels) in zip(_SPLITS, data):
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 3:
            images = images[..., np.newaxis]
        arrays[split] = (images, np.asarray(labels, dtype=np.int32))
    try:
        class_names = tuple(ds_info.features["label"].names)
    except Exception:  # Metadata is a nicety; keep the static names.
        class_names = None
    return arrays, class_names


def _channel_stats(images):
    """Per-channel mean and std of uint8 NHWC images, in [0, 1] units."""
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    # Chunks keep the float64 copy small even for 50k colour images.
    for start in range(0, images.shape[0], 4096):
        chunk = images[start : start + 4096].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 1, 2))
        total_sq += np.square(chunk).sum(axis=(0, 1, 2))
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    # A constant channel would divide by zero; leave it unscaled instead.
    std = np.where(std > 0, std, 1.0)
    return mean, std


def _source(name, data_dir):
    """Returns the cached entry for a dataset, loading it on first use."""
    meta = _METADATA[name]
    context = ""
    if name == "fashion_mnist":
        directory = data_dir or DEFAULT_FASHION_MNIST_DIR
        files, missing = _find_idx_files(directory)
        if not missing:
            # File stats in the key make a rewritten file re-parse.
            key = ("idx", os.path.realpath(directory)) + tuple(
                (p, os.stat(p).st_mtime_ns, os.stat(p).st_size)
                for pair in files.values()
                for p in pair
            )
            if key not in _CACHE:
                arrays = _parse_fashion_mnist(
                    files, len(meta["class_names"])
                )
                _CACHE[key] = _make_entry(arrays, meta["class_names"])
            return _CACHE[key]
        context = (
            f"Fashion-MNIST IDX files not found in {directory} "
            f"(missing: {', '.join(missing)}). "
        )
    key = ("tfds", name, data_dir)
    if key not in _CACHE:
        arrays, class_names = _load_tfds(name, data_dir, context)
        _CACHE[key] = _make_entry(arrays, class_names or meta["class_names"])
    return _CACHE[key]


def _make_entry(arrays, class_names):
    for split, (images, _) in arrays.items():
        if images.shape[0] == 0:
            raise ValueError(f"The {split!r} split holds no examples.")
    mean, std = _channel_stats(arrays["train"][0])
    entry = dict(arrays)
    entry.update(mean=mean, std=std, class_names=tuple(class_names))
    return entry


def info(name="fashion_mnist", data_dir=None):
    """Returns metadata for a dataset.

    The mean and std are those `load(..., standardize=True)` uses: one value
    per channel, in [0, 1] pixel units, computed on the full training split.
    Computing them loads the data (then cached).

    Args:
        name: Dataset name: `"fashion_mnist"`, `"mnist"`, `"cifar10"`,
            `"cifar100"` or `"svhn_cropped"`.
        data_dir: As in `load`.

    Returns:
        A dict with keys `name`, `num_classes`, `class_names` (tuple of
        str), `input_shape` (tuple), `mean` and `std` (tuples of floats,
        one per channel) and `num_examples` (dict split -> int).

    Example:

    >>> meta = info("fashion_mnist")
    >>> meta["num_classes"], meta["input_shape"], meta["class_names"][0]
    (10, (28, 28, 1), 'T-shirt/top')
    """
    name = _canonical_name(name)
    entry = _source(name, data_dir)
    return {
        "name": name,
        "num_classes": len(entry["class_names"]),
        "class_names": entry["class_names"],
        "input_shape": tuple(int(d) for d in entry["train"][0].shape[1:]),
        "mean": tuple(float(v) for v in entry["mean"]),
        "std": tuple(float(v) for v in entry["std"]),
        "num_examples": {s: int(entry[s][0].shape[0]) for s in _SPLITS},
    }


def _augment_fn(hflip):
    def augment(example, seed):
        image, label = example
        flip_seed, crop_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 2)
        )
        if hflip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        # Zero-padding happens on raw pixels, so the border is black (0)
        # rather than whatever zero maps to after standardisation.
        padded = tf.pad(image, [[_SHIFT, _SHIFT], [_SHIFT, _SHIFT], [0, 0]])
        image = tf.image.stateless_random_crop(padded, image.shape, crop_seed)
        return image, label

    return augment


def _pipeline(images, labels, batch_size, train, augment, hflip, seed, stats):
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if train:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed per example, from a stream that is fixed by
        # `seed` but differs between epochs.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            _augment_fn(hflip),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    # Scaling per batch is much cheaper than per example.
    if stats is None:
        mean, std = 0.0, 1.0
    else:
        mean = tf.constant(stats[0], tf.float32)
        std = tf.constant(stats[1], tf.float32)

    def to_float(x, y):
        return (tf.cast(x, tf.float32) / 255.0 - mean) / std, y

    ds = ds.batch(batch_size).map(
        to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def load(
    name="fashion_mnist",
    split=("train", "test"),
    batch_size=128,
    as_numpy=False,
    augment=False,
    standardize=True,
    limit=None,
    seed=0,
    data_dir=None,
    with_info=False,
):
    """Loads an image-classification dataset.

    Images are float32 NHWC in [0, 1], then (if `standardize`) shifted and
    scaled by the per-channel mean and std of the full training split, for
    every split. Labels are int32.

    Fashion-MNIST is read from the IDX files of the Debian package
    `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist/`); when
    they are missing it falls back to `tensorflow_datasets.load`. The other
    datasets always come from tensorflow-datasets.

    Args:
        name: `"fashion_mnist"`, `"mnist"`, `"cifar10"`, `"cifar100"` or
            `"svhn_cropped"`.
        split: `"train"`, `"test"`, or a tuple of them. A single string
            returns that split alone instead of a dict.
        batch_size: Batch size of the `tf.data.Dataset`s (unused with
            `as_numpy=True`).
        as_numpy: If `True`, return `(images, labels)` numpy arrays in file
            order instead of `tf.data.Dataset`s.
        augment: If `True`, the train split gets a random horizontal flip
            (p=0.5; not for the digit datasets, where flipping changes the
            class) and a random shift of up to 2 pixels each way (zero
            padding then random crop). Needs `as_numpy=False`.
        standardize: Whether to standardise with the training statistics.
        limit: If set, keep only the first `limit` examples of each split
            (statistics still come from the full training split).
        seed: Seed of the train split's shuffling and augmentation; both are
            deterministic for a given seed and differ between epochs.
        data_dir: For Fashion-MNIST, the folder of IDX files (default
            `DEFAULT_FASHION_MNIST_DIR`); for tensorflow-datasets, its data
            folder.
        with_info: If `True`, return `(data, info_dict)` where `info_dict`
            is `info(name)` plus `"standardized": standardize`.

    Returns:
        With `as_numpy=True`, `(x, y)` per split; otherwise a batched,
        prefetched `tf.data.Dataset` of `(x, y)` per split (the train split
        reshuffled every epoch). A dict `{split: ...}` unless `split` is a
        single string.

    Raises:
        ValueError: For an unknown name or split, bad arguments, empty
            data, or a corrupt or truncated IDX file (the message names it).
        DatasetUnavailableError: If the data is neither on disk nor
            loadable through tensorflow-datasets.

    Example:

    >>> x, y = load("fashion_mnist", split="test", as_numpy=True, limit=8)
    >>> x.shape, x.dtype, y.dtype
    ((8, 28, 28, 1), dtype('float32'), dtype('int32'))
    >>> train = load(split="train", batch_size=4, limit=16, augment=True)
    >>> images, labels = next(iter(train))
    >>> tuple(images.shape)
    (4, 28, 28, 1)
    """
    name = _canonical_name(name)
    single = isinstance(split, str)
    splits = (split,) if single else tuple(dict.fromkeys(split))
    if not splits:
        raise ValueError("`split` must name at least one split.")
    for s in splits:
        if s not in _SPLITS:
            raise ValueError(
                f"Unknown split {s!r}. Valid splits: {', '.join(_SPLITS)}."
            )
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
            raise ValueError(f"`limit` must be an int or None, got {limit!r}.")
        if limit <= 0:
            raise ValueError(
                f"`limit={limit}` leaves no examples; pass None or a "
                "positive int."
            )
    if as_numpy and augment:
        raise ValueError(
            "`augment=True` is done in tf.data and needs `as_numpy=False`."
        )
    if not as_numpy and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            f"`batch_size` must be a positive int, got {batch_size!r}."
        )

    entry = _source(name, data_dir)
    stats = (entry["mean"], entry["std"]) if standardize else None
    result = {}
    for s in splits:
        images, labels = entry[s]
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        if images.shape[0] == 0:
            raise ValueError(f"The {s!r} split of {name!r} is empty.")
        if as_numpy:
            x = images.astype(np.float32) / np.float32(255.0)
            if stats is not None:
                x -= stats[0].astype(np.float32)
                x /= stats[1].astype(np.float32)
            result[s] = (x, np.array(labels, dtype=np.int32))
        else:
            result[s] = _pipeline(
                images,
                labels,
                batch_size=int(batch_size),
                train=(s == "train"),
                augment=augment and s == "train",
                hflip=_METADATA[name]["hflip"],
                seed=seed,
                stats=stats,
            )
    data = result[splits[0]] if single else result
    if with_info:
        meta = info(name, data_dir)
        meta["standardized"] = bool(standardize)
        return data, meta
    return data
