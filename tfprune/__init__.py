"""tfprune: structured channel pruning for Keras 3.

Example:

```python
import tfprune
plan = tfprune.prune(model, method="l1", target_macs=0.5)
slim = tfprune.rebuild(model, plan)
print(tfprune.cost(model).macs, tfprune.cost(slim).macs)
```
"""

from tfprune import (branches, callbacks, distill, hfp, importance, layers,
                     prunetrain, regularizers)
from tfprune.cost import Cost, LayerCost, cost
from tfprune.errors import (InvalidPlanError, TargetUnreachableError,
                            TfpruneError, UnsupportedLayerError,
                            UnsupportedModelError)
from tfprune.graph import Barrier, ChannelGraph, ChannelGroup, analyze
from tfprune.plan import PruningPlan
from tfprune.prune import prune
from tfprune.rebuild import rebuild, zero_out

__version__ = "0.1.0"

__all__ = [
    "Barrier", "ChannelGraph", "ChannelGroup", "Cost", "InvalidPlanError",
    "LayerCost", "PruningPlan", "TargetUnreachableError", "TfpruneError",
    "UnsupportedLayerError", "UnsupportedModelError", "analyze", "cost",
    "branches", "callbacks", "distill", "hfp", "importance", "layers", "prune",
    "prunetrain", "rebuild", "regularizers", "zero_out",
]


def __getattr__(name):
    # These pull in heavier imports (tf.data, pygad); load on first use.
    if name in ("zoo", "datasets", "search"):
        import importlib

        return importlib.import_module(f"tfprune.{name}")
    raise AttributeError(f"module 'tfprune' has no attribute {name!r}")
