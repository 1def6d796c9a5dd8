"""SMOF: prune kernel sizes as well as channels, under a params/MACs budget.

After Liu, Guan, Xu, Li and Quan, "SMOF: Squeezing More Out of Filters
Yields Hardware-Friendly CNN Pruning" (arXiv 2110.10842): besides removing
channels, shrink each convolution's kernel by whole outer rings (5x5 ->
3x3 -> 1x1). A smaller kernel removes MACs without narrowing the tensors,
so it is not limited by SIMD width granularity, and the result is a plain
convolution every runtime runs without custom kernels.

The training recipe below is tfprune's own, built like `tfprune.methods.hfp`
so the two methods read alike:

- Masks: every `Conv1D/2D`, `DepthwiseConv1D/2D` and `SeparableConv1D/2D`
  (depthwise kernel) with a kernel wider than 1 and `same`/`valid`
  padding is wrapped in a `KernelRingMask`: one trainable factor in [0, 1]
  per ring of taps around the centre (the centre is never masked). Every
  prunable channel group gets a `ChannelGate` after its producers' BN,
  exactly where HFP puts it.
- Counting: a ring counts while its factor, or that of any ring outside
  it, is above `threshold` (an outer ring cannot outlive an inner one: the
  kernel stays a centred square); the kernel size along an axis is
  1 + 2 * (rings counted). Channels count as in HFP (the strongest of each
  group always counts). The forward pass uses the factors; the budget sees
  the hard counts, with straight-through gradients to the factors.
- Budget loss: `weight * relu(cost / target - 1)` over `tfprune.cost`'s
  formulas with those channel counts *and* kernel sizes, so one loss trades
  rings against channels by what each costs. `SMOFSchedule` ramps the
  target from the full size over the first `ramp_epochs`.
- Plan: kernel radius per conv from the ring factors (largest ring above
  `threshold`); channels whose gate is above a threshold, raised (by
  bisection over the gate values) until the plan, with its kernel sizes,
  meets the target. So the target is met even when training stopped short.
- Rebuild: ring factors and gate factors are folded into the weights;
  removed rings and channels are sliced away (`tfprune.rebuild`).
"""

from tfprune.methods.smof.model import SMOFModel, SMOFSchedule, attach, kernel_plan, mask, plan
from tfprune.methods.smof.ring_masks import KernelRingMask

__all__ = ["KernelRingMask", "SMOFModel", "SMOFSchedule", "attach", "kernel_plan", "mask", "plan"]
