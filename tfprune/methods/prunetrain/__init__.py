"""PruneTrain: train from scratch while group lasso removes channels.

After Lym et al., "PruneTrain: Fast Neural Network Training by Dynamic
Sparse Model Reconfiguration" (SC'19, arXiv 1901.09290). The model trains
with a group-lasso penalty (`tfprune.methods.regularizers.GroupLasso`); channels the
penalty drives to zero rarely come back, so every few epochs the network is
*reconfigured*: dead channels are physically removed with `tfprune.rebuild`
and training goes on with the smaller model, so later epochs cost less.

Inside `model.fit`:

    session = tfprune.methods.prunetrain.attach(model, penalty_ratio=0.2)
    session.model.compile(optimizer, loss, metrics=["accuracy"])
    session.model.fit(train, epochs=30, callbacks=session.callbacks)
    slim = session.rebuild()

`PruneTrainModel` wraps the functional network; `Reconfigure` swaps in the
slimmer network, with the optimizer's slots and step carried, between
epochs of the same `fit` call, so History, CSVLogger, ModelCheckpoint,
EarlyStopping and TensorBoard see one run. `prunetrain.fit` is a thin layer
over this that adds resumable checkpoints and the dynamic mini-batch.

The method's public facts, and tfprune's choices where they leave room:

- Penalty: one lasso group per input and per output channel of every
  Conv/Dense, except channels that can never be removed (the first layer's
  input, the classifier's output). λ is set once, at the first training
  step, from the penalty ratio r: λ = r·CE₀ / ((1−r)·R₀), so the penalty is
  a fraction r of the first step's loss (CE₀: the compiled loss on that
  batch, R₀: the unweighted penalty).
- Minimisation: by default a proximal step after every optimizer step
  (group soft-thresholding by learning rate × λ), so a group reaches exactly
  zero while the rate is still high; `mode="subgradient"` adds λ·R to the
  loss instead, as the paper does (there weights oscillate around zero until
  the rate decays).
- Dead channels: a channel is dead when every Conv/Dense weight tied to it,
  the filters (and biases) that write it *and* the kernel slices that read
  it, is below `threshold` in absolute value. Both sides, because with
  BatchNorm after a conv a near-zero filter is re-amplified by BN; only when
  every reader ignores the channel is its content (BN shift included)
  irrelevant. BN and depthwise weights are therefore not consulted.
- Residual streams: a stream is one channel group spanning every branch of
  its `Add`s, so a stream channel is kept when it is alive in any producer
  or consumer (the paper's channel union), with no extra code.
- Branches: when every channel of a group inside a residual branch is dead,
  the branch is removed and its `Add` keeps the shortcut alone
  (`tfprune.core.branches`); the block becomes an identity. The branch then
  added a constant (its last BN's shift), which goes with it; the epochs
  that follow absorb that. The reconfiguration after the last epoch has no
  epochs after it, so there a dead branch keeps one channel instead and the
  returned model computes what the trained one computed. Any other group
  that dies entirely keeps its strongest channel, since a tensor cannot
  have no channel.
- Optimizer state: every slot (SGD momentum, Adam moments, ...) is sliced
  with the same masks as the weight it belongs to; the step counter is
  copied, so learning-rate schedules continue where they were.
- Training FLOPs: 2 FLOPs per multiply-accumulate, 3 passes per sample
  (forward, backward to activations, backward to weights): an epoch costs
  6 × MACs × samples, with the MACs of the width trained in that epoch
  (`tfprune.cost`'s convention: convs and dense layers).
- Reconfiguration every `reconfigure_every` epochs (the paper uses 10 on
  CIFAR), and once more after the last epoch, so the returned model carries
  no dead channel.
"""

from tfprune.methods.prunetrain.callback import FLOPS_PER_MAC, PASSES_PER_SAMPLE, Reconfigure
from tfprune.methods.prunetrain.dead import channel_magnitudes, dead_channels
from tfprune.methods.prunetrain.model import PruneTrainModel, attach, trained_plan, wrap
from tfprune.methods.prunetrain.reconfigure import Reconfiguration, reconfigure
from tfprune.methods.prunetrain.training import (
    BatchScaledSchedule,
    PruneTrainResult,
    fit,
)

__all__ = [
    "FLOPS_PER_MAC", "PASSES_PER_SAMPLE", "BatchScaledSchedule", "PruneTrainModel", "PruneTrainResult",
    "Reconfiguration", "Reconfigure", "attach", "channel_magnitudes",
    "dead_channels", "fit", "reconfigure", "trained_plan", "wrap",
]
