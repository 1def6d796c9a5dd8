"""PruneTrain: group lasso, dead channels, reconfiguration, fit, resume."""

import csv

import keras
import numpy as np
import pytest
from conftest import assert_close, randomize_bn
from keras import layers

import tfprune
from tfprune import zoo
from tfprune.cli.train import train_zoo_model
from tfprune.methods import prunetrain
from tfprune.methods.regularizers import GroupLasso
from tfprune.training.optimizer_state import learning_rate_schedule, optimizer_state

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(n=64, shape=(6, 6, 2), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32") + (x[:, 0, 0, 0] > 0)
    return x, y


def _chain(seed=0):
    """input -> c1 -> bn1 -> relu -> c2 (bias) -> relu -> gap -> fc."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.Conv2D(5, 3, padding="same", name="c2")(x)
    x = layers.ReLU(name="r2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, name="fc")(x), name="chain")


def _resnet(blocks=2, seed=0):
    """stem, then `blocks` residual blocks a{i} -> b{i} -> add{i}, gap, fc."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i in range(blocks):
        y = layers.Conv2D(4, 3, padding="same", use_bias=False, name=f"a{i}")(x)
        y = layers.BatchNormalization(name=f"a{i}_bn")(y)
        y = layers.ReLU(name=f"a{i}_relu")(y)
        y = layers.Conv2D(4, 3, padding="same", use_bias=False, name=f"b{i}")(y)
        y = layers.BatchNormalization(name=f"b{i}_bn")(y)
        x = layers.Add(name=f"add{i}")([x, y])
        x = layers.ReLU(name=f"out{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, name="fc")(x), name="res")


def _set(model, name, weight, index, value):
    layer = model.get_layer(name)
    w = next(v for v in layer.weights if v.name == weight)
    array = keras.ops.convert_to_numpy(w).copy()
    array[index] = value
    w.assign(array)


def _kill_branch(model, i):
    """Block i's branch: zero convs, zero BN shift, so it adds exactly 0."""
    _set(model, f"a{i}", "kernel", ..., 0.0)
    _set(model, f"b{i}", "kernel", ..., 0.0)
    for name in ("beta", "moving_mean"):
        _set(model, f"b{i}_bn", name, ..., 0.0)
        _set(model, f"a{i}_bn", name, ..., 0.0)


def _kill_stream_channel(model, c, blocks):
    """Stream channel c: zero in every producer and consumer."""
    _set(model, "stem", "kernel", (..., c), 0.0)
    _set(model, "fc", "kernel", (c, slice(None)), 0.0)
    for i in range(blocks):
        _set(model, f"a{i}", "kernel", (slice(None), slice(None), c), 0.0)
        _set(model, f"b{i}", "kernel", (..., c), 0.0)


def _numpy(v):
    return keras.ops.convert_to_numpy(v)


def test_group_lasso_groups_and_value():
    model = _chain()
    k1, k2 = _numpy(model.get_layer("c1").kernel), _numpy(model.get_layer("c2").kernel)
    fc = _numpy(model.get_layer("fc").kernel)
    b2 = np.arange(1, 6, dtype="float32")
    model.get_layer("c2").bias.assign(b2)
    norm = np.linalg.norm
    expected = (
        sum(norm(k1[..., o]) for o in range(4))  # c1 outputs (not its inputs)
        + sum(norm(k2[:, :, i, :]) for i in range(4))  # c2 inputs
        + sum(np.sqrt(norm(k2[..., o]) ** 2 + b2[o] ** 2) for o in range(5))
        + sum(norm(fc[i, :]) for i in range(5)))  # fc inputs (not classes)
    lasso = GroupLasso(model, weight=0.5, mode="subgradient")
    assert lasso.num_groups == 4 + 4 + 5 + 5
    assert set(lasso.group_norms()) == {("c1", "output"), ("c2", "input"),
                                        ("c2", "output"), ("fc", "input")}
    np.testing.assert_allclose(float(lasso.penalty()), expected, rtol=1e-5)
    np.testing.assert_allclose(float(lasso()), 0.5 * expected, rtol=1e-5)

    # As a loss term with plain model.fit: the reported loss is CE + λR, and
    # training shrinks R.
    x, y = _data(32)
    model.compile(keras.optimizers.SGD(0.05), loss=lasso.with_loss(LOSS))
    ce = float(LOSS(y, model(x, training=False)))
    assert_close(model.evaluate(x, y, verbose=0), ce + 0.5 * expected, rtol=1e-4)
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    assert float(lasso.penalty()) < expected


def test_penalty_weight_is_set_at_first_step():
    model = _chain()
    x, y = _data(32)
    r = 0.3
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    ce0 = float(LOSS(y, reference(x, training=True)))  # the first step's loss
    r0 = float(GroupLasso(model).penalty())
    result = prunetrain.fit(model, x, y, batch_size=32, epochs=1, penalty_ratio=r,
                            reconfigure_every=None, verbose=0,
                            optimizer=keras.optimizers.SGD(0.01))
    np.testing.assert_allclose(result.penalty_weight, r * ce0 / ((1 - r) * r0),
                               rtol=1e-4)
    # so the penalty is a share r of the first step's loss
    np.testing.assert_allclose(result.history["loss"][0], ce0 / (1 - r), rtol=1e-4)


def test_dead_channel_rule():
    model = randomize_bn(_chain())
    graph = tfprune.analyze(model)
    group = graph.group_of("c1")
    _set(model, "c1", "kernel", (..., 0), 0.0)  # 0: written and read as zero
    _set(model, "c2", "kernel", (slice(None), slice(None), 0), 0.0)
    _set(model, "c1", "kernel", (..., 1), 0.0)  # 1: written as zero, still read
    _set(model, "c2", "kernel", (slice(None), slice(None), 2), 0.0)  # 2: not read
    _set(model, "c1", "kernel", (..., 3), 5e-5)  # 3: below 1e-4 on both sides
    _set(model, "c2", "kernel", (slice(None), slice(None), 3), -5e-5)
    span = slice(group.offset, group.offset + group.size)
    assert prunetrain.dead_channels(model, 1e-4)[span].tolist() == [True, False, False, True]
    assert prunetrain.dead_channels(model, 1e-5)[span].tolist() == [True, False, False, False]

    step = prunetrain.reconfigure(model, threshold=1e-4)
    assert step.changed and step.removed_channels == 2
    assert step.model.get_layer("c1").filters == 2
    assert step.model.get_layer("c2").filters == 5  # c2's outputs are alive
    # the slim model computes what the model computes with channel 3's tiny
    # weights set to zero
    _set(model, "c1", "kernel", (..., 3), 0.0)
    _set(model, "c2", "kernel", (slice(None), slice(None), 3), 0.0)
    x, _ = _data(8)
    assert_close(model(x, training=False), step.model(x, training=False), rtol=1e-5)
    assert model.get_layer("c1").filters == 4  # the input model is untouched
    assert not prunetrain.reconfigure(step.model).changed  # nothing else is dead


def test_residual_stream_keeps_the_union_of_live_channels():
    model = randomize_bn(_resnet(blocks=1))
    _kill_stream_channel(model, 1, blocks=1)  # dead everywhere
    _kill_stream_channel(model, 0, blocks=1)
    _set(model, "b0", "kernel", (..., 0), 0.3)  # ... but b0 still writes channel 0
    graph = tfprune.analyze(model)
    stream = graph.group_of("b0")
    assert {"stem", "b0"} <= set(stream.producers)
    dead = prunetrain.dead_channels(graph)[stream.offset:stream.offset + stream.size]
    assert dead.tolist() == [False, True, False, False]
    slim = prunetrain.reconfigure(model).model
    for name in ("stem", "b0"):
        assert slim.get_layer(name).filters == 3
    assert slim.get_layer("a0").filters == 4
    x, _ = _data(8)
    assert_close(model(x, training=False), slim(x, training=False), rtol=1e-5)


def test_dead_branch_is_removed_and_block_becomes_identity():
    model = randomize_bn(_resnet(blocks=2))
    _kill_branch(model, 1)
    step = prunetrain.reconfigure(model)
    slim = step.model
    assert step.removed_branches == ["add1"]
    names = {layer.name for layer in slim.layers}
    assert not names & {"a1", "a1_bn", "a1_relu", "b1", "b1_bn", "add1"}
    assert {"a0", "b0", "add0", "out1"} <= names
    # out1 now reads block 0's output directly: the block is an identity
    # (its ReLU of a ReLU output changes nothing)
    assert slim.get_layer("out1").input is slim.get_layer("out0").output
    x, _ = _data(8)
    assert_close(model(x, training=False), slim(x, training=False), rtol=1e-5)
    assert "add1" in {layer.name for layer in model.layers}  # input untouched
    # a dead branch that still adds a constant (its BN shift): dropping it
    # changes the output, keeping it at one channel does not
    _set(model, "b1_bn", "beta", ..., 0.7)
    kept = prunetrain.reconfigure(model, drop_branches=False)
    assert kept.removed_branches == [] and kept.model.get_layer("a1").filters == 1
    assert_close(model(x, training=False), kept.model(x, training=False), rtol=1e-5)
    dropped = prunetrain.reconfigure(model).model(x, training=False)
    assert not np.allclose(model(x, training=False), dropped, atol=1e-3)
    # an Add never loses every input: two dead branches into one Add stay,
    # each with its strongest channel
    inputs = keras.Input((6, 6, 2))
    ends = []
    for j in range(2):
        y = layers.Conv2D(3, 3, padding="same", name=f"p{j}")(inputs)
        y = layers.ReLU(name=f"p{j}_relu")(y)
        ends.append(layers.Conv2D(4, 3, padding="same", name=f"q{j}")(y))
    y = layers.GlobalAveragePooling2D(name="gap")(layers.Add(name="add")(ends))
    both = keras.Model(inputs, layers.Dense(3, name="fc")(y))
    for name in ("p0", "q0", "p1", "q1"):
        _set(both, name, "kernel", ..., 0.0)
    step = prunetrain.reconfigure(both)
    assert step.removed_branches == []
    assert step.model.get_layer("p0").filters == step.model.get_layer("p1").filters == 1


@pytest.mark.parametrize("make", [lambda: keras.optimizers.SGD(0.1, momentum=0.9),
                                  lambda: keras.optimizers.Adam(1e-3)])
def test_optimizer_state_is_sliced_with_the_weights(make):
    model = randomize_bn(_chain())
    optimizer = make()
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    for _ in range(3):  # non-zero slots everywhere
        grads = [rng.normal(size=v.shape).astype("float32")
                 for v in model.trainable_variables]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    _set(model, "c1", "kernel", (..., 1), 0.0)
    _set(model, "c2", "kernel", (slice(None), slice(None), 1), 0.0)
    before = optimizer_state(optimizer, model)
    step = prunetrain.reconfigure(model, optimizer)
    after = optimizer_state(step.optimizer, step.model)
    assert step.optimizer is not optimizer and type(step.optimizer) is type(optimizer)
    kept = [0, 2, 3]
    slots = {k[1] for k in before if k[0] is not None}
    assert slots == ({"momentum"} if isinstance(optimizer, keras.optimizers.SGD)
                     else {"momentum", "velocity"})
    for slot in slots:
        c1, c2 = ((("c1",), "kernel"), slot), ((("c2",), "kernel"), slot)
        np.testing.assert_array_equal(after[c1], before[c1][..., kept])
        np.testing.assert_array_equal(after[c2], before[c2][:, :, kept, :])
        for bn in ("gamma", "beta"):
            key = ((("bn1",), bn), slot)
            np.testing.assert_array_equal(after[key], before[key][kept])
        for key in [((("c2",), "bias"), slot), ((("fc",), "kernel"), slot)]:
            np.testing.assert_array_equal(after[key], before[key])
    assert int(step.optimizer.iterations) == 3


class _Watch(keras.callbacks.Callback):
    def __init__(self, kill_at=None):
        super().__init__()
        self.begins, self.ends, self.epochs, self.kill_at = 0, 0, [], kill_at
        self.snapshot = self.at_start = None

    def _state(self):
        opt = self.model.optimizer
        return {"filters": self.model.get_layer("stem").filters,
                "weights": [_numpy(w).copy() for w in self.model.get_layer("stem").weights],
                "momentum": {k: v.copy() for k, v in optimizer_state(
                    opt, self.model).items() if k[0] == (("stem",), "kernel")},
                "iterations": int(opt.iterations)}

    def on_train_begin(self, logs=None):
        self.begins += 1
        if self.model.optimizer.built:
            self.at_start = self._state()

    def on_train_end(self, logs=None):
        self.ends += 1

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.kill_at:
            raise _Killed()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.snapshot = self._state()
        logs["watched"] = epoch


class _Killed(Exception):
    pass


def _doomed_resnet():
    """A 2-block net with a dead branch and two dead stream channels."""
    model = randomize_bn(_resnet(blocks=2))
    _kill_branch(model, 1)
    for c in (0, 1):
        _kill_stream_channel(model, c, blocks=2)
        for name in ("stem_bn", "b0_bn"):
            _set(model, name, "beta", c, 0.0)
    return model


def test_fit_shrinks_model_and_keeps_callbacks_and_schedule(tmp_path):
    model = _doomed_resnet()
    x, y = _data(64)
    watch = _Watch()
    log = tmp_path / "log.csv"
    schedule = keras.optimizers.schedules.CosineDecay(0.05, 16)
    result = prunetrain.fit(
        model, x, y, batch_size=16, epochs=4, penalty_ratio=0.2,
        reconfigure_every=2, verbose=0, validation_data=_data(16, seed=1),
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        callbacks=[watch, keras.callbacks.CSVLogger(str(log))])
    h = result.history
    assert watch.begins == 1 and watch.ends == 1 and watch.epochs == [0, 1, 2, 3]
    assert all(len(v) == 4 for v in h.values())
    assert h["watched"] == [0, 1, 2, 3]  # what callbacks log is kept
    assert {"loss", "accuracy", "val_loss", "macs", "params", "train_flops"} <= set(h)
    rows = list(csv.DictReader(open(log)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and "macs" in rows[0]
    # reconfigured after epoch 2: the branch and the dead channels are gone
    assert h["macs"][0] == h["macs"][1] > h["macs"][2] == h["macs"][3]
    assert result.reconfigurations[0]["removed_branches"] == ["add1"]
    assert result.model.get_layer("stem").filters == 2
    assert "a1" not in {layer.name for layer in result.model.layers}
    per_epoch = np.diff([0.0] + h["train_flops"])
    np.testing.assert_allclose(per_epoch, [6 * m * 64 for m in h["macs"]])
    assert result.train_flops < result.dense_train_flops
    # the learning-rate schedule ran on: 4 epochs of 4 steps
    assert int(result.optimizer.iterations) == 16
    carried = learning_rate_schedule(result.optimizer)
    assert isinstance(carried, keras.optimizers.schedules.CosineDecay)
    assert carried.get_config() == schedule.get_config()
    np.testing.assert_allclose(float(result.optimizer.learning_rate), float(schedule(16)),
                               rtol=1e-6)
    assert model.get_layer("stem").filters == 4  # input untouched
    result.model.evaluate(x, y, verbose=0)  # compiled, ready to use


def test_resume_after_interruption(tmp_path):
    x, y = _data(64)
    kwargs = dict(batch_size=16, epochs=4, penalty_ratio=0.2, reconfigure_every=2,
                  verbose=0, checkpoint_dir=str(tmp_path / "run"))
    killer = _Watch(kill_at=3)
    with pytest.raises(_Killed):
        prunetrain.fit(_doomed_resnet(), x, y, callbacks=[killer],
                       optimizer=keras.optimizers.SGD(0.05, momentum=0.9), **kwargs)
    assert killer.epochs == [0, 1, 2] and killer.snapshot["filters"] == 2
    watch = _Watch()
    result = prunetrain.fit(_doomed_resnet(), x, y, callbacks=[watch], **kwargs)
    assert watch.epochs == [3]  # nothing trained is redone
    start, saved = watch.at_start, killer.snapshot
    assert start["filters"] == 2 and start["iterations"] == saved["iterations"] == 12
    for a, b in zip(start["weights"], saved["weights"]):
        np.testing.assert_array_equal(a, b)
    for key in saved["momentum"]:
        np.testing.assert_array_equal(start["momentum"][key], saved["momentum"][key])
    assert len(result.history["loss"]) == 4
    assert result.history["macs"][2] == result.history["macs"][3] < result.history["macs"][0]
    assert int(result.optimizer.iterations) == 16
    assert isinstance(result.optimizer, keras.optimizers.SGD)
    # a finished run, started again, returns without training
    again = prunetrain.fit(_doomed_resnet(), x, y, **kwargs)
    assert again.history == result.history


def test_dynamic_batch_grows_batch_and_scales_learning_rate():
    model = _resnet(blocks=1)  # BN shifts start at 0: dead channels stay dead
    for c in (0, 1, 2):  # three of four stream channels dead: MACs fall > 2x
        _kill_stream_channel(model, c, blocks=1)
    for c in (0, 1, 2):
        _set(model, "a0", "kernel", (..., c), 0.0)
        _set(model, "b0", "kernel", (slice(None), slice(None), c), 0.0)
    x, y = _data(64)
    result = prunetrain.fit(model, x, y, batch_size=8, epochs=2, reconfigure_every=1,
                            dynamic_batch=True, max_batch_scale=4, verbose=0,
                            optimizer=keras.optimizers.SGD(0.01))
    assert result.history["batch_size"] == [8.0, 32.0]
    assert int(result.optimizer.iterations) == 8 + 2
    schedule = learning_rate_schedule(result.optimizer)
    assert isinstance(schedule, prunetrain.BatchScaledSchedule) and schedule.scale == 4
    np.testing.assert_allclose(float(schedule(10)), 0.04, rtol=1e-6)


def test_bad_input_is_named():
    model = _chain()
    x, y = _data(8)
    with pytest.raises(ValueError, match="penalty_ratio must be in"):
        prunetrain.fit(model, x, y, penalty_ratio=1.0)
    with pytest.raises(ValueError, match="reconfigure_every"):
        prunetrain.fit(model, x, y, reconfigure_every=0)
    with pytest.raises(ValueError, match="dynamic_batch needs"):
        prunetrain.fit(model, iter([(x, y)]), dynamic_batch=True)

    class Sub(keras.Model):
        def call(self, x):
            return x

    sub = Sub()
    sub(x)
    with pytest.raises(tfprune.UnsupportedModelError, match="subclassed"):
        prunetrain.fit(sub, x, y)


def test_cli_train_writes_slim_model(tmp_path, capsys):
    out = tmp_path / "slim.keras"
    # A threshold above every weight: all channels but the strongest of each
    # group count as dead, so the written model must be much slimmer.
    assert train_zoo_model("resnet20", "fashion_mnist", epochs=1, output=str(out),
                           limit=128, batch_size=64, reconfigure_every=None,
                           threshold=100.0, verbose=0) == 0
    text = capsys.readouterr().out
    assert "training FLOPs" in text and "wrote" in text
    slim = keras.saving.load_model(out)
    assert slim.output_shape == (None, 10)
    full = zoo.get("resnet20", input_shape=(28, 28, 1), classes=10)
    assert slim.count_params() < full.count_params() / 2
    assert slim.get_layer("stem_conv").filters < full.get_layer("stem_conv").filters
    with pytest.raises(ValueError, match="output"):
        train_zoo_model("resnet20", epochs=1, output=None)


def test_proximal_step_zeroes_small_groups_and_shrinks_others_exactly():
    model = _chain()
    lasso = GroupLasso(model)
    assert lasso.mode == "proximal"
    rng = np.random.default_rng(0)
    k1 = rng.normal(size=(3, 3, 2, 4)).astype("float32")
    norms = [0.05, 0.3, 0.099, 2.0]  # channel 2 just below the threshold
    for c, n in enumerate(norms):
        k1[..., c] *= n / np.linalg.norm(k1[..., c])
    model.get_layer("c1").kernel.assign(k1)
    fc = _numpy(model.get_layer("fc").kernel).copy()
    fc[0] *= 0.01 / np.linalg.norm(fc[0])
    model.get_layer("fc").kernel.assign(fc)
    t = 0.1
    lasso.proximal_step(t)
    after = _numpy(model.get_layer("c1").kernel)
    # c1's filters are one group each (its inputs are the model's: no group)
    for c, n in enumerate(norms):
        if n <= t:
            assert not after[..., c].any()  # exactly zero
        else:
            np.testing.assert_allclose(np.linalg.norm(after[..., c]), n - t, rtol=1e-5)
            np.testing.assert_allclose(after[..., c], k1[..., c] * (1 - t / n), rtol=1e-5)
    # fc: one group per input row (its outputs, the classes, have none)
    fc_after = _numpy(model.get_layer("fc").kernel)
    assert not fc_after[0].any()
    for i in range(1, 5):
        n = np.linalg.norm(fc[i])
        np.testing.assert_allclose(fc_after[i], fc[i] * max(0.0, 1 - t / n), rtol=1e-5)
    with pytest.raises(ValueError, match="subgradient"):
        lasso.with_loss(LOSS)
    with pytest.raises(ValueError, match="mode"):
        GroupLasso(model, mode="prox")


def test_proximal_training_zeroes_channels_the_subgradient_leaves_small():
    x, y = _data(64)
    zeros = {}
    for mode in ("proximal", "subgradient"):
        pt = prunetrain.wrap(_chain(), penalty_ratio=0.35, mode=mode)
        pt.compile(keras.optimizers.SGD(0.2, momentum=0.9), LOSS)
        pt.fit(x, y, batch_size=16, epochs=3, verbose=0)
        norms = np.concatenate(list(pt.lasso.group_norms().values()))
        zeros[mode] = int((norms == 0).sum())
    # the same penalty: the proximal steps reach zero within 12 steps, the
    # subgradient ones do not (nor does the model collapse)
    assert 0 < zeros["proximal"] < len(norms) and zeros["subgradient"] == 0, zeros


class _Score(keras.callbacks.Callback):
    """Logs a made-up score (best at epoch 1) and keeps the epoch-1 model."""

    def __init__(self):
        super().__init__()
        self.kept = None

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = [1.0, 0.0, 2.0, 3.0][epoch]
        if epoch == 1:
            self.kept = _copy_network(self.model.network)


def _copy_network(network):
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def test_reconfigure_callback_inside_fit_with_checkpoints(tmp_path):
    x, y = _data(64)
    pt = prunetrain.wrap(_doomed_resnet(), penalty_ratio=0.2)
    pt.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS, metrics=["accuracy"])
    log = tmp_path / "log.csv"
    path = str(tmp_path / "ckpt-{epoch}.keras")
    history = pt.fit(x, y, batch_size=16, epochs=4, verbose=0,
                     validation_data=_data(16, seed=1),
                     callbacks=[prunetrain.Reconfigure(every=2),
                                keras.callbacks.ModelCheckpoint(path),
                                keras.callbacks.CSVLogger(str(log))])
    h = history.history
    assert history.epoch == [0, 1, 2, 3]  # one continuous record
    assert all(len(v) == 4 for v in h.values())
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "macs", "params",
            "train_flops"} <= set(h)
    assert h["macs"][0] == h["macs"][1] > h["macs"][2] == h["macs"][3]
    rows = list(csv.DictReader(open(log)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[3]["macs"]) == h["macs"][3]
    assert pt.get_layer("stem").filters == 2 and "a1" not in {l.name for l in pt.layers}
    assert pt.run.reconfigurations[0]["removed_branches"] == ["add1"]
    assert int(pt.optimizer.iterations) == 16  # the step counter ran on
    # the checkpoints load, with the width each epoch had
    before = keras.saving.load_model(tmp_path / "ckpt-2.keras")
    after = keras.saving.load_model(tmp_path / "ckpt-4.keras")
    assert isinstance(after, prunetrain.PruneTrainModel)
    assert before.get_layer("stem").filters == 4 and after.get_layer("stem").filters == 2
    assert_close(pt(x[:8], training=False), after(x[:8], training=False), rtol=1e-5)
    after.fit(x, y, batch_size=16, epochs=1, verbose=0)  # compiled: trains on


def test_early_stopping_restores_the_best_width_across_reconfiguration():
    x, y = _data(64)
    pt = prunetrain.wrap(_doomed_resnet(), penalty_ratio=0.2)
    pt.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS)
    score = _Score()
    stop = keras.callbacks.EarlyStopping(monitor="score", mode="min", patience=1,
                                         restore_best_weights=True)
    history = pt.fit(x, y, batch_size=16, epochs=4, verbose=0,
                     callbacks=[score, stop, prunetrain.Reconfigure(every=2)])
    # stopped after epoch 2 (no better score for `patience` epochs)
    assert history.epoch == [0, 1, 2] and stop.best_epoch == 1 and pt.stop_training
    assert history.history["macs"][1] > history.history["macs"][2]
    # restored to the end of epoch 1 (taken before the reconfiguration at
    # epoch 2), then slimmed by the final reconfiguration: same function
    assert pt.get_layer("stem").filters == 2
    assert_close(score.kept(x[:8], training=False), pt(x[:8], training=False), rtol=1e-5)
    pt.fit(x, y, batch_size=16, epochs=1, verbose=0)  # and trains on
