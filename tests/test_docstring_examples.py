"""Every docstring `Example:` in tfprune and tflite_export runs.

Each ```python block that follows an "Example:" line is executed on tiny
stand-ins for what the prose calls its inputs: `model` (a small trained-size
CNN with logits), `x`, `y` (64 samples), `train` (a batched `tf.data` set of
them) and `loss`. A block that names anything else must define it.
"""

import importlib
import inspect
import pkgutil
import re

import pytest
from conftest import example_namespace

import tflite_export
import tfprune

BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# Modules whose import has side effects a test must not have (none today).
SKIP_MODULES = {"tfprune.__main__"}


def _modules():
    names = []
    for package in (tfprune, tflite_export):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in SKIP_MODULES:
                names.append(info.name)
    return names


def _documented(module):
    """(qualified name, docstring) of the module and what it defines."""
    yield module.__name__, inspect.getdoc(module) or ""
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
            continue
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", inspect.getdoc(obj) or ""
        elif inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj.__doc__ or ""
            for attr, member in vars(obj).items():
                member = getattr(member, "__func__", member)  # class/static methods
                if (attr.startswith("_") and attr != "__init__") or not callable(member):
                    continue
                # Its own docstring only: getdoc would inherit Keras's examples.
                yield f"{module.__name__}.{name}.{attr}", inspect.cleandoc(
                    getattr(member, "__doc__", None) or "")


def _examples():
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for qualname, doc in _documented(module):
            if "Example:" not in doc:
                continue
            after = doc[doc.index("Example:"):]
            for i, block in enumerate(BLOCK.findall(inspect.cleandoc(after))):
                found.append(pytest.param(block, id=f"{qualname}#{i}"))
    return found


EXAMPLES = _examples()


def test_examples_were_found():
    assert len(EXAMPLES) >= 60


@pytest.mark.parametrize("code", EXAMPLES)
def test_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files
    exec(compile(code, "<docstring example>", "exec"), example_namespace())
