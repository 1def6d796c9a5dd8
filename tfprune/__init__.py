"""tfprune: structured channel pruning for Keras 3.

Example:

```python
import tfprune
plan = tfprune.prune(model, criterion="l1", target_macs=0.5)
slim = tfprune.rebuild(model, plan)
print(tfprune.cost(model).macs, tfprune.cost(slim).macs)
```
"""

import importlib

from tfprune import callbacks, layers
from tfprune.comparison import report
from tfprune.core import branches
from tfprune.core.batchnorm import recalibrate_bn
from tfprune.core.cost import Cost, LayerCost, cost
from tfprune.core.graph import Barrier, ChannelGraph, ChannelGroup, analyze
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import rebuild, zero_out
from tfprune.core.registry import LayerSpec, register_layer
from tfprune.errors import (
    DatasetUnavailableError,
    InvalidPlanError,
    NonFiniteWeightsError,
    TargetUnreachableError,
    TfpruneError,
    UnsupportedLayerError,
    UnsupportedModelError,
)
from tfprune.methods import distill, hfp, prunenet, prunetrain, regularizers, smof
from tfprune.methods.finetuning import OneCycle, finetune
from tfprune.ranking import importance
from tfprune.ranking.prune import prune

__version__ = "0.1.0"

__all__ = [
    "Barrier", "ChannelGraph", "ChannelGroup", "Cost", "DatasetUnavailableError",
    "InvalidPlanError", "LayerCost", "LayerSpec", "NonFiniteWeightsError", "OneCycle",
    "PruningPlan", "TargetUnreachableError", "TfpruneError",
    "UnsupportedLayerError", "UnsupportedModelError", "analyze", "cost",
    "branches", "callbacks", "distill", "finetune", "hfp", "importance", "layers", "prune",
    "prunenet", "prunetrain", "rebuild", "recalibrate_bn", "register_layer",
    "regularizers", "report", "smof", "zero_out",
]

# Modules with heavier imports (tf.data, pygad), loaded on first use.
_LAZY = {"zoo": "tfprune.zoo", "datasets": "tfprune.datasets",
         "search": "tfprune.methods.search", "cli": "tfprune.cli",
         "latency": "tfprune.latency"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'tfprune' has no attribute {name!r}")
