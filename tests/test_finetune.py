"""tfprune.finetune and its one-cycle schedule; `tfprune prune --finetune-epochs`
and `--refit`."""

import os

import keras
import numpy as np
import pytest

import tfprune
from tfprune import cli, zoo


def _net(seed, classes=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def _separable(n=256, seed=0):
    """Three classes told apart by the mean brightness of the image."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 8, 8, 1)) + (y[:, None, None, None] - 1.0)
    return x.astype("float32"), y.astype("int32")


def test_one_cycle_shape_and_config():
    s = tfprune.methods.finetuning.OneCycle(0.1, total_steps=100, warmup=0.3)
    lr = [float(s(i)) for i in range(101)]
    assert lr[0] == 0.0
    assert lr[30] == pytest.approx(0.1)
    assert max(lr) == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(lr[:30], lr[1:31]))  # rises
    assert all(a >= b for a, b in zip(lr[30:], lr[31:]))  # then falls
    assert lr[100] == pytest.approx(0.0, abs=1e-7)
    again = tfprune.methods.finetuning.OneCycle.from_config(s.get_config())
    assert [float(again(i)) for i in (0, 17, 64)] == [lr[0], lr[17], lr[64]]
    for bad in ({"peak": 0.0, "total_steps": 10}, {"peak": 0.1, "total_steps": 0},
                {"peak": 0.1, "total_steps": 10, "warmup": 1.0}):
        with pytest.raises(ValueError):
            tfprune.methods.finetuning.OneCycle(**bad)


def test_finetune_on_labels_learns():
    x, y = _separable()
    model = _net(0)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    history = tfprune.finetune(model, (x, y), epochs=8, learning_rate=0.1,
                               batch_size=32, verbose=0)
    assert len(history.history["loss"]) == 8
    after = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    assert after > max(before, 0.8)


def test_finetune_distils_from_the_teacher_and_leaves_it_as_it_was():
    # With alpha = 1 the labels carry no weight: a student given labels that
    # are all wrong still learns what the teacher predicts.
    x, y = _separable()
    teacher = _net(1)
    tfprune.finetune(teacher, (x, y), epochs=8, learning_rate=0.1, batch_size=32,
                     verbose=0)
    teacher_pred = teacher.predict(x, verbose=0).argmax(-1)
    assert (teacher_pred == y).mean() > 0.8
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    student = _net(2)
    wrong = (y + 1) % 3
    tfprune.finetune(student, (x, wrong), teacher, epochs=8, learning_rate=0.1,
                     batch_size=32, alpha=1.0, temperature=2.0, verbose=0)
    agree = (student.predict(x, verbose=0).argmax(-1) == teacher_pred).mean()
    assert agree > 0.8
    assert teacher.trainable
    for a, b in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    # left compiled on the labels, ready to evaluate
    assert "accuracy" in student.evaluate(x, y, verbose=0, return_dict=True)


def test_finetune_of_a_rebuilt_model_with_a_dataset():
    tf = pytest.importorskip("tensorflow")
    model = zoo.resnet20(input_shape=(8, 8, 1), classes=3)
    slim = tfprune.rebuild(model, tfprune.prune(model, target_macs=0.5))
    x, y = _separable(64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    before = [w.copy() for w in slim.get_weights()]
    history = tfprune.finetune(slim, ds, model, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, slim.get_weights()))


def test_bad_input_is_named():
    x, y = _separable(16)
    model = _net(0)
    with pytest.raises(ValueError, match="epochs"):
        tfprune.finetune(model, (x, y), epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        tfprune.finetune(model, (x, y), batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        tfprune.finetune(model, (x[:0], y[:0]))
    tf = pytest.importorskip("tensorflow")
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        tfprune.finetune(model, endless)
    history = tfprune.finetune(model, endless, steps_per_epoch=2, verbose=0)
    assert len(history.history["loss"]) == 3


def test_cli_fine_tunes_with_distillation(tmp_path, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("needs Debian's dataset-fashion-mnist")
    keras.utils.set_random_seed(0)
    src = tmp_path / "net.keras"
    zoo.vgg11(input_shape=(28, 28, 1), width=0.125).save(src)
    out = str(tmp_path / "slim.keras")
    assert cli.main(["prune", str(src), "--target-macs", "0.5", "--finetune-epochs", "1",
                     "--data", "fashion_mnist", "--limit", "256", "-o", out]) == 0
    text = capsys.readouterr().out
    assert "distilling from the original" in text and "fine-tuned" in text
    slim = keras.saving.load_model(out, compile=False)
    original = keras.saving.load_model(src, compile=False)
    pruned = tfprune.rebuild(original, tfprune.prune(original, target_macs=0.5))
    # the saved model is the fine-tuned one, not the plain rebuild
    assert any(not np.allclose(a, b) for a, b in zip(slim.get_weights(),
                                                     pruned.get_weights()))
    assert cli.main(["prune", str(src), "--target-macs", "0.5", "--finetune-epochs", "1",
                     "-o", str(tmp_path / "x.keras")]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_cli_refit(tmp_path, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("needs Debian's dataset-fashion-mnist")
    keras.utils.set_random_seed(0)
    src = tmp_path / "net.keras"
    zoo.vgg11(input_shape=(28, 28, 1), width=0.125).save(src)
    out = str(tmp_path / "slim.keras")
    assert cli.main(["prune", str(src), "--target-macs", "0.5", "--refit", "--data",
                     "fashion_mnist", "--limit", "256", "-o", out]) == 0
    original = keras.saving.load_model(src, compile=False)
    plan = tfprune.prune(original, target_macs=0.5)
    slim, plain = keras.saving.load_model(out, compile=False), tfprune.rebuild(original, plan)
    assert tfprune.cost(slim).macs == tfprune.cost(plain).macs
    assert any(not np.allclose(a, b) for a, b in zip(slim.get_weights(), plain.get_weights()))
    for argv, message in (([], "--refit needs --data"),
                          (["--method", "hfp", "--data", "fashion_mnist"], "not hfp")):
        assert cli.main(["prune", str(src), "--target-macs", "0.5", "--refit",
                         "-o", str(tmp_path / "x.keras")] + argv) == 2
        assert message in capsys.readouterr().err
