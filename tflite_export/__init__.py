"""tflite_export: ship a pruned Keras model to a phone, and prove it is faster.

`convert` writes a `.tflite` file with TFLite builtin ops only (what the
stock LiteRT runtime on Android runs), checks it against the Keras model and
writes the side files an app needs. `benchmark`, `compare` and `profile` time
files with the LiteRT interpreter and XNNPACK, as an Android app runs them.

Example:

```python
import tfprune
from tflite_export import benchmark, convert

slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
info = convert(slim, "slim.tflite", quantization="int8",
               representative_data=x, labels=["a", "b", "c", "d"])
report = benchmark("slim.tflite", threads=1, runs=100)
print(info.top1_agreement, report.median_ms, report.size_bytes)
```
"""

from tflite_export.benchmark import (
                                     BenchmarkReport,
                                     OpTime,
                                     Profile,
                                     benchmark,
                                     compare,
                                     compare_profiles,
                                     profile,
)
from tflite_export.convert import (
                                     QUANTIZATIONS,
                                     ExportInfo,
                                     UnsupportedOpError,
                                     VerificationError,
                                     convert,
                                     convert_saved_model,
)
from tflite_export.tflite_model import ModelInfo, model_info

__all__ = [
    "BenchmarkReport", "ExportInfo", "ModelInfo", "OpTime", "Profile",
    "QUANTIZATIONS", "UnsupportedOpError", "VerificationError", "benchmark",
    "compare", "compare_profiles", "convert", "convert_saved_model", "model_info",
    "profile",
]
