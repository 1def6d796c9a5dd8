import gzip
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfprune import datasets

HAVE_DEBIAN_FILES = os.path.isfile(
    os.path.join(
        datasets.DEFAULT_FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz"
    )
)
needs_debian = pytest.mark.skipif(
    not HAVE_DEBIAN_FILES,
    reason="Debian package dataset-fashion-mnist is not installed",
)


def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def _write_idx(directory, n_train=12, n_test=6, compress=True, edit=None):
    """Writes a tiny Fashion-MNIST-like IDX set; returns the arrays.

    `edit`, if given, maps a base file name to a function rewriting that
    file's bytes (after compression), to simulate corruption.
    """
    rng = np.random.default_rng(0)
    arrays = {
        "train": (
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train, dtype=np.uint8),
        ),
        "test": (
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test, dtype=np.uint8),
        ),
    }
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[split]
        for base, array in (
            (f"{prefix}-images-idx3-ubyte", images),
            (f"{prefix}-labels-idx1-ubyte", labels),
        ):
            data = _idx_bytes(array)
            if compress:
                data = gzip.compress(data)
            if edit and base in edit:
                data = edit[base](data)
            name = base + (".gz" if compress else "")
            (directory / name).write_bytes(data)
    return arrays


def _first_batch(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


@needs_debian
def test_load_debian_fashion_mnist_numpy():
    data = datasets.load(as_numpy=True, limit=100, standardize=False)
    assert set(data) == {"train", "test"}
    for x, y in data.values():
        assert x.shape == (100, 28, 28, 1)
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
        assert 0 <= y.min() and y.max() <= 9


@needs_debian
def test_info_matches_known_statistics():
    meta = datasets.info("fashion_mnist")
    assert meta["num_classes"] == 10
    assert meta["class_names"][0] == "T-shirt/top"
    assert meta["class_names"][-1] == "Ankle boot"
    assert meta["input_shape"] == (28, 28, 1)
    assert meta["num_examples"] == {"train": 60000, "test": 10000}
    # Widely quoted Fashion-MNIST statistics.
    assert meta["mean"][0] == pytest.approx(0.2860, abs=1e-3)
    assert meta["std"][0] == pytest.approx(0.3530, abs=1e-3)


@needs_debian
def test_standardization_uses_training_statistics():
    x, _ = datasets.load(split="train", as_numpy=True, limit=10000)
    assert abs(float(x.mean())) < 0.05
    assert float(x.std()) == pytest.approx(1.0, abs=0.05)
    raw, _ = datasets.load(
        split="test", as_numpy=True, limit=50, standardize=False
    )
    test, _ = datasets.load(split="test", as_numpy=True, limit=50)
    meta = datasets.info()
    np.testing.assert_allclose(
        test, (raw - meta["mean"][0]) / meta["std"][0], atol=1e-5
    )


@needs_debian
def test_tf_data_pipeline_shapes_and_order():
    ds = datasets.load(split="test", batch_size=16, limit=40)
    assert isinstance(ds, tf.data.Dataset)
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [16, 16, 8]
    x, y = batches[0]
    assert x.dtype == tf.float32 and y.dtype == tf.int32
    assert tuple(x.shape[1:]) == (28, 28, 1)
    # The test split is not shuffled and matches the numpy path.
    ref_x, ref_y = datasets.load(split="test", as_numpy=True, limit=16)
    np.testing.assert_allclose(x.numpy(), ref_x, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), ref_y)


@needs_debian
def test_train_shuffle_is_seeded():
    def labels(seed):
        ds = datasets.load(split="train", limit=64, batch_size=64, seed=seed)
        return _first_batch(ds)[1]

    np.testing.assert_array_equal(labels(1), labels(1))
    assert not np.array_equal(labels(1), labels(2))
    ordered = datasets.load(split="train", as_numpy=True, limit=64)[1]
    np.testing.assert_array_equal(np.sort(labels(1)), np.sort(ordered))


@needs_debian
def test_augmentation_is_deterministic_and_a_flip_or_shift():
    def batch(seed, augment):
        ds = datasets.load(
            split="train",
            limit=32,
            batch_size=32,
            augment=augment,
            standardize=False,
            seed=seed,
        )
        return _first_batch(ds)

    x1, y1 = batch(5, augment=True)
    x2, y2 = batch(5, augment=True)
    assert x1.shape == (32, 28, 28, 1) and x1.dtype == np.float32
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, batch(6, augment=True)[0])

    # Same seed without augmentation gives the same order of originals, and
    # each augmented image is one of the 2 x 5 x 5 flips/shifts of its own.
    originals, labels = batch(5, augment=False)
    np.testing.assert_array_equal(labels, y1)
    changed = 0
    for aug, orig in zip(x1, originals):
        matches = False
        for img in (orig, orig[:, ::-1]):
            padded = np.pad(img, ((2, 2), (2, 2), (0, 0)))
            for dy in range(5):
                for dx in range(5):
                    if np.array_equal(aug, padded[dy : dy + 28, dx : dx + 28]):
                        matches = True
        assert matches
        changed += not np.array_equal(aug, orig)
    assert changed > 16


def test_augmentation_changes_between_epochs(tmp_path):
    _write_idx(tmp_path)

    def epochs(seed):
        ds = datasets.load(
            data_dir=str(tmp_path),
            split="train",
            limit=1,
            batch_size=1,
            augment=True,
            seed=seed,
        )
        return [_first_batch(ds)[0] for _ in range(4)]

    first, again = epochs(0), epochs(0)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(first[0], x) for x in first[1:])


def test_synthetic_idx_files_round_trip(tmp_path):
    arrays = _write_idx(tmp_path, compress=False)
    data = datasets.load(
        data_dir=str(tmp_path), as_numpy=True, standardize=False
    )
    for split in ("train", "test"):
        x, y = data[split]
        images, labels = arrays[split]
        np.testing.assert_array_equal(
            np.rint(x[..., 0] * 255).astype(np.uint8), images
        )
        np.testing.assert_array_equal(y, labels.astype(np.int32))
    meta = datasets.info(data_dir=str(tmp_path))
    train = arrays["train"][0] / 255.0
    assert meta["mean"][0] == pytest.approx(train.mean())
    assert meta["std"][0] == pytest.approx(train.std())


def test_parsed_arrays_are_cached(tmp_path, monkeypatch):
    _write_idx(tmp_path)
    calls = []
    real = datasets._read_idx
    monkeypatch.setattr(
        datasets,
        "_read_idx",
        lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs),
    )
    datasets.load(data_dir=str(tmp_path), as_numpy=True)
    datasets.load(data_dir=str(tmp_path), split="test", batch_size=4)
    datasets.info(data_dir=str(tmp_path))
    assert len(calls) == 4


def _truncate(data):
    return data[: len(data) // 2]


def _corrupt_stream(data):
    return data[:10] + bytes(255 - b for b in data[10:])


def _bad_magic(data):
    raw = bytearray(gzip.decompress(data))
    raw[2] = 0x0D  # float instead of uint8
    return gzip.compress(bytes(raw))


def _short_payload(data):
    return gzip.compress(gzip.decompress(data)[:-5])


def _trailing(data):
    return gzip.compress(gzip.decompress(data) + b"junk")


@pytest.mark.parametrize(
    "base,edit,message",
    [
        ("train-images-idx3-ubyte", _truncate, "gzip"),
        ("t10k-labels-idx1-ubyte", _corrupt_stream, "gzip"),
        ("train-labels-idx1-ubyte", _bad_magic, "magic number"),
        ("t10k-images-idx3-ubyte", _short_payload, "truncated"),
        ("train-images-idx3-ubyte", _trailing, "unexpected bytes"),
        ("t10k-labels-idx1-ubyte", lambda d: b"\x00\x00", "too short"),
    ],
)
def test_corrupt_idx_file_names_the_file(tmp_path, base, edit, message):
    _write_idx(tmp_path, edit={base: edit})
    with pytest.raises(ValueError, match=message) as error:
        datasets.load(data_dir=str(tmp_path), as_numpy=True)
    assert os.path.join(str(tmp_path), base + ".gz") in str(error.value)


def test_mismatched_counts_and_empty_files(tmp_path):
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    _write_idx(mismatch)
    labels = np.zeros(3, dtype=np.uint8)
    (mismatch / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(labels))
    )
    with pytest.raises(ValueError, match="3 labels"):
        datasets.load(data_dir=str(mismatch), as_numpy=True)

    empty = tmp_path / "empty"
    empty.mkdir()
    _write_idx(empty, n_test=0)
    with pytest.raises(ValueError, match="t10k-images.*no images"):
        datasets.load(data_dir=str(empty), as_numpy=True)


def test_missing_files_without_tfds(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CACHE", {})  # Nothing loaded earlier.
    # A None entry in sys.modules makes `import tensorflow_datasets` fail.
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(datasets.DatasetUnavailableError) as error:
        datasets.load(data_dir=str(tmp_path / "nowhere"))
    message = str(error.value)
    assert isinstance(error.value, RuntimeError)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "pip install tensorflow-datasets" in message
    assert "nowhere" in message

    with pytest.raises(datasets.DatasetUnavailableError, match="pip install"):
        datasets.load("cifar10")


def test_argument_errors(tmp_path):
    _write_idx(tmp_path)
    kwargs = {"data_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="no examples"):
        datasets.load(limit=0, **kwargs)
    with pytest.raises(ValueError, match="Unknown split"):
        datasets.load(split="validation", **kwargs)
    with pytest.raises(ValueError, match="fashion_mnist.*cifar10"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="as_numpy"):
        datasets.load(as_numpy=True, augment=True, **kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        datasets.load(batch_size=0, **kwargs)


def test_return_forms_and_info(tmp_path):
    _write_idx(tmp_path)
    kwargs = {"data_dir": str(tmp_path)}
    both = datasets.load(batch_size=4, **kwargs)
    assert set(both) == {"train", "test"}
    assert all(isinstance(d, tf.data.Dataset) for d in both.values())
    test = datasets.load(split="test", batch_size=4, **kwargs)
    assert isinstance(test, tf.data.Dataset)
    only = datasets.load(split=["test"], as_numpy=True, limit=2, **kwargs)
    assert set(only) == {"test"} and only["test"][0].shape == (2, 28, 28, 1)
    (x, y), meta = datasets.load(
        split="train", as_numpy=True, with_info=True, **kwargs
    )
    assert x.shape == (12, 28, 28, 1)
    assert meta["standardized"] is True
    assert meta["num_examples"] == {"train": 12, "test": 6}
    assert len(meta["class_names"]) == meta["num_classes"] == 10


def test_static_class_names():
    meta = datasets._METADATA
    assert len(meta["cifar100"]["class_names"]) == 100
    assert list(meta["cifar100"]["class_names"]) == sorted(
        meta["cifar100"]["class_names"]
    )
    assert meta["cifar10"]["class_names"][0] == "airplane"
    assert not meta["mnist"]["hflip"] and meta["fashion_mnist"]["hflip"]


class _FakeTfds:
    """Stands in for tensorflow_datasets: 3-D images, int64 labels."""

    def __init__(self, shape):
        self.shape = shape
        self.calls = []

    def load(self, name, split, batch_size, as_supervised, data_dir, with_info):
        assert batch_size == -1 and as_supervised and with_info
        self.calls.append((name, data_dir))
        rng = np.random.default_rng(len(self.calls))
        data = [
            (
                rng.integers(0, 256, (n,) + self.shape, dtype=np.uint8),
                rng.integers(0, 10, n).astype(np.int64),
            )
            for n in (10, 4)
        ]
        label = type("Label", (), {"names": [f"c{i}" for i in range(10)]})
        ds_info = type("Info", (), {"features": {"label": label}})
        return data, ds_info

    def as_numpy(self, data):
        return data


def test_tfds_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CACHE", {})  # Keep fakes out of it.
    fake = _FakeTfds((28, 28))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    missing = str(tmp_path / "missing")
    x, y = datasets.load(
        split="train", as_numpy=True, data_dir=missing, standardize=False
    )
    assert x.shape == (10, 28, 28, 1) and y.dtype == np.int32
    assert fake.calls == [("fashion_mnist", missing)]

    fake.shape = (32, 32, 3)
    ds = datasets.load("cifar10", split="train", batch_size=5, augment=True)
    images, labels = _first_batch(ds)
    assert images.shape == (5, 32, 32, 3) and labels.dtype == np.int32
    meta = datasets.info("cifar10")
    assert len(meta["mean"]) == 3 and meta["class_names"][0] == "c0"
    assert fake.calls[-1] == ("cifar10", None) and len(fake.calls) == 2
