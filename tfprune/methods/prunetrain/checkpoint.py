"""Checkpoints of a PruneTrain run: the model, its optimizer state, the run."""

import dataclasses
import json
import os

import keras
import numpy as np

from tfprune.errors import TfpruneError
from tfprune.fileio import atomic_path, save_model, write_atomic
from tfprune.training.optimizer_state import load_optimizer_state, optimizer_state

CHECKPOINT_FORMAT = "tfprune.prunetrain/1"


@dataclasses.dataclass
class RunState:
    """The state of a run that a checkpoint must restore."""

    model_name: str
    epoch: int = 0
    reconfigured_at: int = -1
    penalty_weight: float = -1.0
    history: dict = dataclasses.field(default_factory=dict)
    train_flops: float = 0.0
    samples: int = 0
    dense_macs: float = 0.0
    reconfigurations: list = dataclasses.field(default_factory=list)
    batch_scale: int = 1
    base_batch: int = 0
    # layer name -> the original output channels it still has (changed only)
    kept: dict = dataclasses.field(default_factory=dict)


def state_path(directory):
    return os.path.join(directory, "state.json")


def save_checkpoint(directory, run, model, optimizer):
    """Writes model, optimizer state and run state; the state file last."""
    os.makedirs(directory, exist_ok=True)
    tag = f"e{run.epoch:04d}-r{len(run.reconfigurations)}"
    model_file, state_file = f"model-{tag}.keras", f"optimizer-{tag}.npz"
    state = optimizer_state(optimizer, model)
    keys = list(state)
    save_model(model, os.path.join(directory, model_file))
    with atomic_path(os.path.join(directory, state_file)) as tmp, open(tmp, "wb") as f:
        np.savez(f, *[state[k] for k in keys])
    data = {
        "format": CHECKPOINT_FORMAT, "run": dataclasses.asdict(run),
        "model": model_file, "optimizer_state": state_file,
        "optimizer_keys": [[list(k[0]) if k[0] else None, k[1]] for k in keys],
        "optimizer": keras.saving.serialize_keras_object(optimizer),
    }
    # Written last: a run killed before this keeps the last checkpoint.
    write_atomic(state_path(directory), json.dumps(data))
    for name in os.listdir(directory):
        if name.startswith(("model-", "optimizer-")) and name not in (model_file, state_file):
            os.remove(os.path.join(directory, name))


def load_checkpoint(directory, custom_objects):
    with open(state_path(directory)) as f:
        data = json.load(f)
    if data.get("format") != CHECKPOINT_FORMAT:
        raise TfpruneError(
            f"{directory} holds no PruneTrain checkpoint (state.json is not "
            f"'{CHECKPOINT_FORMAT}'); choose another checkpoint_dir.")
    run = RunState(**data["run"])
    model = keras.saving.load_model(os.path.join(directory, data["model"]),
                                    custom_objects=custom_objects, compile=False)
    optimizer = keras.saving.deserialize_keras_object(
        data["optimizer"], custom_objects=custom_objects)
    with np.load(os.path.join(directory, data["optimizer_state"])) as arrays:
        values = [arrays[f"arr_{i}"] for i in range(len(data["optimizer_keys"]))]
    state = {}
    for (weight, name), value in zip(data["optimizer_keys"], values):
        key = (None if weight is None else (tuple(weight[0]),) + tuple(weight[1:]), name)
        state[key] = value
    load_optimizer_state(optimizer, model, state)
    return model, optimizer, run
