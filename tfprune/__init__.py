"""tfprune: structured channel pruning for Keras 3.

Example:

```python
import tfprune
plan = tfprune.prune(model, tfprune.Budget(macs=0.5))
slim = tfprune.rebuild(model, plan)
print(tfprune.cost(model).macs, tfprune.cost(slim).macs)
```
"""

import importlib

from tfprune import native_logs

native_logs.silence_if_command()  # before TensorFlow loads: see native_logs

from tfprune.core.batchnorm import recalibrate_bn  # noqa: E402
from tfprune.core.budget import Budget
from tfprune.core.cost import cost
from tfprune.core.graph import analyze
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import rebuild
from tfprune.core.registry import LayerSpec, register_layer
from tfprune.errors import (
    DatasetUnavailableError,
    InvalidPlanError,
    LatencyTableMismatchError,
    NonFiniteWeightsError,
    TargetUnreachableError,
    TfpruneError,
    UnsupportedLayerError,
    UnsupportedModelError,
)
from tfprune.methods import (
    Method,
    Option,
    TrainingSession,
    available_methods,
    get_method,
    register_method,
)
from tfprune.methods.finetuning import finetune
from tfprune.ranking.prune import prune

__version__ = "0.1.0"

__all__ = [
    "Budget", "DatasetUnavailableError", "InvalidPlanError", "LatencyTableMismatchError",
    "LayerSpec", "Method", "NonFiniteWeightsError", "Option", "PruningPlan",
    "TargetUnreachableError", "TfpruneError", "TrainingSession", "UnsupportedLayerError",
    "UnsupportedModelError", "analyze", "available_methods", "cost", "finetune",
    "get_method", "prune", "rebuild", "recalibrate_bn", "register_layer",
    "register_method",
]

# Tools with heavier imports (tf.data, LiteRT), loaded on first use.
_LAZY = {"zoo": "tfprune.zoo", "datasets": "tfprune.datasets",
         "latency": "tfprune.latency"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'tfprune' has no attribute {name!r}")
