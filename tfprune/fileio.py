"""Atomic file writes: a file is either fully written or not there at all.

Every file tfprune writes (models, plans, `.tflite` files and their side
files, checkpoints, benchmark rows) goes through `atomic_path`: the content is
written to a hidden temporary file in the target's directory, flushed to disk,
then renamed over the target in one step (`os.replace`). A run that fails or
is interrupted (Ctrl-C included) removes the temporary file and leaves the
target as it was.
"""

import contextlib
import os

__all__ = ["atomic_path", "remove_pending", "save_model", "write_atomic"]

# Temporary files being written now, so that a process that must exit at
# once (the CLI's second Ctrl-C) can still remove them.
_PENDING = set()


def remove_pending():
    """Removes the temporary files of writes still in progress.

    For a process about to exit without unwinding (`os._exit`); the targets
    are left as they were.
    """
    for tmp in list(_PENDING):
        with contextlib.suppress(OSError):
            os.remove(tmp)
        _PENDING.discard(tmp)


def _temporary_name(path):
    """A fresh hidden name next to `path`, with the same extension.

    The extension is kept because some writers insist on it (Keras saves
    only to names ending in `.keras`); the process id and random part make
    the name one no user file has.
    """
    directory, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(directory,
                        f".{stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp{ext}")


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. a directory on a file system without fsync
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renames it to `path` on success.

    The temporary file lies in the same directory (so the rename is atomic)
    and ends with the same extension. It is created empty first, so that no
    other process can take the name; the writer may overwrite it. If the
    block raises (KeyboardInterrupt included), or the rename fails, the
    temporary file is removed and `path` is left untouched.

    Args:
        path: the file to write.

    Yields:
        The temporary path to write to.

    Example:

    ```python
    from tfprune.fileio import atomic_path
    with atomic_path("slim.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = os.fspath(path)
    tmp = _temporary_name(path)
    # Mode 0o666 lets the umask decide the permissions, as for any new file
    # (tempfile.mkstemp would make it private to the user).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    _PENDING.add(tmp)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        _PENDING.discard(tmp)
    _fsync(os.path.dirname(os.path.abspath(path)))


def write_atomic(path, data):
    """Writes `data` (bytes, or text written as UTF-8) to `path` atomically.

    Args:
        path: the file to write.
        data: `bytes` or `str`.

    Example:

    ```python
    plan = tfprune.prune(model, tfprune.Budget(macs=0.5))
    tfprune.fileio.write_atomic("plan.json", plan.to_json(indent=1))
    ```
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def save_model(model, path):
    """`model.save(path)`, atomically: `path` must end with `.keras`.

    Example:

    ```python
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    tfprune.fileio.save_model(slim, "slim.keras")
    ```
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: a model file name must end with '.keras'.")
    with atomic_path(path) as tmp:
        model.save(tmp)
