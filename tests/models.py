"""Random functional CNNs for property tests (hypothesis strategies)."""

import keras
from hypothesis import strategies as st
from keras import layers

BLOCKS = ("conv", "residual", "projection", "concat", "depthwise",
          "separable", "se", "pool", "transpose")


class _Namer:
    def __init__(self):
        self.n = 0

    def __call__(self, kind):
        self.n += 1
        return f"{kind}{self.n}"


def _block(kind, x, width, draw, name):
    c = x.shape[-1]
    if kind == "conv":
        x = layers.Conv2D(width, draw(st.sampled_from([1, 3])), padding="same",
                          name=name("conv"))(x)
        x = layers.BatchNormalization(name=name("bn"))(x)
        act = draw(st.sampled_from(["relu", "prelu", "leaky", "none"]))
        if act == "relu":
            x = layers.ReLU(name=name("relu"))(x)
        elif act == "prelu":
            x = layers.PReLU(shared_axes=[1, 2], name=name("prelu"))(x)
        elif act == "leaky":
            x = layers.LeakyReLU(name=name("leaky"))(x)
        return x
    if kind == "residual":
        y = layers.Conv2D(c, 3, padding="same", name=name("conv"))(x)
        y = layers.BatchNormalization(name=name("bn"))(y)
        return layers.Add(name=name("add"))([x, y])
    if kind == "projection":
        s = layers.Conv2D(width, 1, name=name("proj"))(x)
        y = layers.Conv2D(width, 3, padding="same", name=name("conv"))(x)
        y = layers.ReLU(name=name("relu"))(y)
        y = layers.Conv2D(width, 3, padding="same", name=name("conv"))(y)
        return layers.Add(name=name("add"))([s, y])
    if kind == "concat":
        a = layers.Conv2D(width, 1, name=name("conv"))(x)
        b = layers.Conv2D(draw(st.integers(1, 5)), 3, padding="same", name=name("conv"))(x)
        return layers.Concatenate(name=name("cat"))([a, x, b])
    if kind == "depthwise":
        x = layers.DepthwiseConv2D(3, padding="same",
                                   depth_multiplier=draw(st.sampled_from([1, 2])),
                                   name=name("dw"))(x)
        return layers.BatchNormalization(name=name("bn"))(x)
    if kind == "separable":
        return layers.SeparableConv2D(width, 3, padding="same",
                                      depth_multiplier=draw(st.sampled_from([1, 2])),
                                      name=name("sep"))(x)
    if kind == "se":
        s = layers.GlobalAveragePooling2D(name=name("gap"))(x)
        s = layers.Dense(max(1, c // 2), activation="relu", name=name("squeeze"))(s)
        s = layers.Dense(c, activation="sigmoid", name=name("excite"))(s)
        s = layers.Reshape((1, 1, c), name=name("reshape"))(s)
        return layers.Multiply(name=name("mul"))([x, s])
    if kind == "pool":
        if x.shape[1] >= 4:
            return layers.MaxPooling2D(2, name=name("pool"))(x)
        return x
    if kind == "transpose":
        return layers.Conv2DTranspose(width, 3, padding="same", name=name("tconv"))(x)
    raise ValueError(kind)


@st.composite
def cnns(draw, max_blocks=5):
    """A random functional CNN: chains, residuals, concats, depthwise,
    separable, squeeze-excite, transposed convs, Flatten->Dense heads."""
    name = _Namer()
    size = draw(st.sampled_from([6, 8]))
    channels = draw(st.sampled_from([1, 3]))
    inputs = keras.Input((size, size, channels), name="image")
    x = layers.Conv2D(draw(st.integers(2, 6)), 3, padding="same", name=name("stem"))(inputs)
    for kind in draw(st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=max_blocks)):
        x = _block(kind, x, draw(st.integers(2, 6)), draw, name)
    if draw(st.booleans()):
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(draw(st.integers(2, 6)), activation="relu", name="fc")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs, name="random_cnn")
