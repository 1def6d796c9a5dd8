"""`tfprune train`: a zoo model trained from scratch while PruneTrain prunes it."""

import math

import keras

from tfprune.core.cost import cost
from tfprune.fileio import save_model
from tfprune.methods.prunetrain import fit


def train_zoo_model(model_name, data="fashion_mnist", epochs=30, output=None, *,
              penalty_ratio=0.2, reconfigure_every=5, threshold=1e-4,
              batch_size=128, learning_rate=0.1, checkpoint_dir=None, limit=None,
              dynamic_batch=False, verbose=2):
    """`tfprune train --method prunetrain`: a zoo model, trained and pruned.

    Trains `model_name` (a `tfprune.zoo` name) on `data` (a
    `tfprune.datasets` name; flips and 2-pixel shifts as augmentation) with
    SGD (Nesterov momentum 0.9, weight decay 5e-4) and a cosine learning
    rate with 10% linear warm-up, then saves the slim model.

    Args:
        model_name: e.g. "resnet20".
        data: e.g. "fashion_mnist".
        epochs: total epochs.
        output: the .keras file to write (written atomically).
        penalty_ratio, reconfigure_every, threshold, checkpoint_dir,
            dynamic_batch: as for `fit`.
        batch_size: training batch size.
        learning_rate: peak learning rate.
        limit: use only the first N images of each split (a smoke test).
        verbose: as for `keras.Model.fit`.

    Returns:
        0, after printing accuracy, MACs, params and training FLOPs.
    """
    from tfprune import datasets, zoo

    if not output:
        raise ValueError("give the output file with -o slim.keras")
    if not str(output).endswith(".keras"):
        raise ValueError(f"{output}: the output must be a .keras file")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive int, got {batch_size!r}")
    if learning_rate <= 0:
        raise ValueError(f"--lr must be positive, got {learning_rate}")
    meta = datasets.info(data)
    train = datasets.load(data, split="train", batch_size=batch_size, augment=True,
                          limit=limit)
    test = datasets.load(data, split="test", batch_size=512, limit=limit)
    model = zoo.get(model_name, input_shape=meta["input_shape"],
                    classes=meta["num_classes"])
    samples = min(limit or meta["num_examples"]["train"], meta["num_examples"]["train"])
    steps = math.ceil(samples / batch_size) * epochs
    warmup = max(1, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), warmup_target=learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                     weight_decay=5e-4)
    result = fit(model, train, epochs=epochs, validation_data=test,
                 optimizer=optimizer, penalty_ratio=penalty_ratio,
                 reconfigure_every=reconfigure_every, threshold=threshold,
                 checkpoint_dir=checkpoint_dir, dynamic_batch=dynamic_batch,
                 verbose=verbose)
    before, after = cost(model), cost(result.model)
    accuracy = result.model.evaluate(test, verbose=0, return_dict=True).get("accuracy")
    save_model(result.model, output)  # atomic: never a half-written file
    print(f"{'':<8} {'params':>14} {'MACs':>16}")
    print(f"{'before':<8} {before.params:>14,.0f} {before.macs:>16,.0f}")
    print(f"{'after':<8} {after.params:>14,.0f} {after.macs:>16,.0f}")
    print(f"test accuracy {accuracy:.4f}; training FLOPs {result.train_flops:.3e} "
          f"({result.train_flops_ratio:.3f} of dense training); "
          f"λ = {result.penalty_weight:.3e}")
    print(f"wrote {output}")
    return 0
