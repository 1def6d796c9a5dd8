"""Reference models for pruning experiments.

Every model here is a Keras 3 functional model (`keras.Input` -> layers ->
`keras.Model`) built only from stock layers, so it can be saved to `.keras`,
reloaded, and walked layer by layer by the pruning graph.

Layer names are explicit and stable: building the same model twice gives the
same names, and no name is left to Keras's auto-numbering (`conv2d_7`). The
naming scheme is `stage{s}_block{b}_{part}` for residual networks, for example
`stage1_block0_conv1`, `stage1_block0_bn1`, `stage1_block0_add` and
`stage2_block0_shortcut_conv`, so pruning plans and reports stay readable and
can be matched across runs.

The classifier is always `GlobalAveragePooling2D` ("avg_pool") followed by a
`Dense` layer ("predictions") that returns logits unless
`classifier_activation` is given.
"""

import keras
from keras import layers

__all__ = [
    "vgg",
    "vgg11",
    "vgg16",
    "resnet",
    "resnet20",
    "resnet32",
    "resnet56",
    "mobilenet_v2",
    "get",
]

# Convolution widths per stage; a MaxPool follows each stage. These are the
# VGG "A" (11), "B" (13), "D" (16) and "E" (19) configurations.
_VGG_STAGES = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    16: (
        (64, 64),
        (128, 128),
        (256, 256, 256),
        (512, 512, 512),
        (512, 512, 512),
    ),
    19: (
        (64, 64),
        (128, 128),
        (256, 256, 256, 256),
        (512, 512, 512, 512),
        (512, 512, 512, 512),
    ),
}

# Inverted residual settings (expansion t, channels c, repeats n, stride s)
# for small (~32x32) images: the ImageNet list cut after the 96-channel stage,
# with the early strides removed so a 32x32 input ends at 8x8.
_MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 2, 2),
    (6, 96, 1, 1),
)

_KERNEL_INIT = "he_normal"


def _check_common(input_shape, classes):
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels), "
            f"got {input_shape}."
        )
    if input_shape[-1] is None:
        raise ValueError(
            "The channel dimension of `input_shape` must be known, "
            f"got {input_shape}."
        )
    if not isinstance(classes, int) or isinstance(classes, bool):
        raise ValueError(f"`classes` must be an int, got {classes!r}.")
    if classes < 1:
        raise ValueError(f"`classes` must be >= 1, got {classes}.")
    return input_shape


def _classifier(x, classes, classifier_activation):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(
        classes, activation=classifier_activation, name="predictions"
    )(x)


def _conv_bn(x, filters, kernel_size, strides, name):
    """Bias-free convolution followed by BatchNorm (the BN adds the bias)."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=_KERNEL_INIT,
        kernel_regularizer=None,
        name=f"{name}_conv",
    )(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _scale_channels(channels, factor):
    return max(1, int(round(channels * factor)))


def _make_divisible(value, divisor=8, min_value=None):
    """Rounds a channel count to a multiple of `divisor`.

    This is the rule of the MobileNetV2 reference code: round to the nearest
    multiple, but never go below `min_value` (default `divisor`) or more than
    10% below `value`.
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def vgg(
    depth=11,
    input_shape=(32, 32, 3),
    classes=10,
    width=1.0,
    name=None,
    classifier_activation=None,
):
    """Instantiates a CIFAR-style VGG network with BatchNorm.

    Each convolution is a 3x3 `Conv2D` -> `BatchNormalization` -> `ReLU`; a
    2x2 `MaxPooling2D` ends each of the five stages, except that pooling is
    skipped once the feature map is smaller than 2x2 (so a 28x28 input pools
    four times, down to 1x1, and then stops). The head is
    `GlobalAveragePooling2D` followed by a single `Dense` layer.

    Layers are named `stage{s}_conv{i}`, `stage{s}_bn{i}`, `stage{s}_relu{i}`
    and `stage{s}_pool` (stages from 1, convolutions within a stage from 1),
    then `avg_pool` and `predictions`.

    Args:
        depth: Number of weight layers, one of 11, 13, 16 or 19.
        input_shape: Shape of one input image, `(height, width, channels)`.
            Height and width may be `None`, in which case every stage pools.
        classes: Number of output classes.
        width: Multiplier for the channel plan 64/128/256/512/512. Each
            count is rounded to the nearest integer and is at least 1.
        name: Model name. Defaults to `"vgg{depth}"`.
        classifier_activation: Activation of the last `Dense` layer. The
            default `None` returns logits; pass `"softmax"` for
            probabilities.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = vgg(11, input_shape=(28, 28, 1), classes=10, width=0.25)
    >>> model.output_shape
    (None, 10)
    """
    if depth not in _VGG_STAGES:
        raise ValueError(
            f"`depth` must be one of {sorted(_VGG_STAGES)}, got {depth!r}."
        )
    if width <= 0:
        raise ValueError(f"`width` must be > 0, got {width}.")
    input_shape = _check_common(input_shape, classes)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    height, width_px = input_shape[0], input_shape[1]
    for s, stage in enumerate(_VGG_STAGES[depth], start=1):
        for i, channels in enumerate(stage, start=1):
            x = layers.Conv2D(
                _scale_channels(channels, width),
                3,
                padding="same",
                use_bias=False,
                kernel_initializer=_KERNEL_INIT,
                name=f"stage{s}_conv{i}",
            )(x)
            x = layers.BatchNormalization(name=f"stage{s}_bn{i}")(x)
            x = layers.ReLU(name=f"stage{s}_relu{i}")(x)
        # Unknown sizes are assumed large enough; known ones must not drop
        # below 1x1, which "valid" pooling of a 1-pixel map would do.
        if (height is not None and height < 2) or (
            width_px is not None and width_px < 2
        ):
            continue
        x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
        height = None if height is None else height // 2
        width_px = None if width_px is None else width_px // 2

    outputs = _classifier(x, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"vgg{depth}")


def vgg11(input_shape=(32, 32, 3), classes=10, **kwargs):
    """VGG-11 with BatchNorm; see `vgg` for the arguments.

    Example:

    >>> vgg11(input_shape=(28, 28, 1), width=0.25).output_shape
    (None, 10)
    """
    return vgg(11, input_shape=input_shape, classes=classes, **kwargs)


def vgg16(input_shape=(32, 32, 3), classes=10, **kwargs):
    """VGG-16 with BatchNorm; see `vgg` for the arguments.

    Example:

    >>> vgg16(width=0.25).output_shape
    (None, 10)
    """
    return vgg(16, input_shape=input_shape, classes=classes, **kwargs)


def resnet(
    depth=20,
    input_shape=(32, 32, 3),
    classes=10,
    width=16,
    name=None,
    classifier_activation=None,
):
    """Instantiates the CIFAR ResNet of He et al. (2016).

    The network is a 3x3 stem convolution followed by three stages of
    `n = (depth - 2) / 6` basic blocks with 16, 32 and 64 channels (scaled by
    `width / 16`); the first block of stages 2 and 3 has stride 2. Every
    convolution is bias-free and followed by BatchNorm. Where a block changes
    shape, the shortcut is a 1x1 stride-2 projection plus BatchNorm
    ("option B"). Each block ends with `Add` then `ReLU`. With 10 classes and
    32x32x3 inputs ResNet-20 has about 0.27M parameters.

    Layers are named `stem_conv`, `stem_bn`, `stem_relu`, then for block `b`
    (from 0) of stage `s` (from 1): `stage{s}_block{b}_conv1`, `_bn1`,
    `_relu1`, `_conv2`, `_bn2`, `_shortcut_conv`, `_shortcut_bn`, `_add` and
    `_relu2`; finally `avg_pool` and `predictions`.

    Args:
        depth: Total depth, `6n + 2`: 20, 32, 44, 56, 110, ...
        input_shape: Shape of one input image, `(height, width, channels)`.
        classes: Number of output classes.
        width: Channels of the first stage (16 in the paper); the later
            stages use 2x and 4x this, rounded, at least 1.
        name: Model name. Defaults to `"resnet{depth}"`.
        classifier_activation: Activation of the last `Dense` layer. The
            default `None` returns logits; pass `"softmax"` for
            probabilities.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = resnet(20, input_shape=(28, 28, 1), classes=10)
    >>> model.get_layer("stage2_block0_shortcut_conv").strides
    (2, 2)
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            "`depth` must be 6n + 2 for some n >= 1 (e.g. 20, 32, 56), "
            f"got {depth!r}."
        )
    if width <= 0:
        raise ValueError(f"`width` must be > 0, got {width}.")
    input_shape = _check_common(input_shape, classes)
    blocks = (depth - 2) // 6
    factor = width / 16.0

    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, _scale_channels(16, factor), 3, 1, name="stem")
    x = layers.ReLU(name="stem_relu")(x)
    for s, base in enumerate((16, 32, 64), start=1):
        filters = _scale_channels(base, factor)
        for b in range(blocks):
            strides = 2 if (s > 1 and b == 0) else 1
            x = _residual_block(x, filters, strides, f"stage{s}_block{b}")

    outputs = _classifier(x, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def _residual_block(x, filters, strides, prefix):
    """Basic block with names `{prefix}_conv1`, `{prefix}_bn1`, ..."""
    in_channels = x.shape[-1]
    y = layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=_KERNEL_INIT,
        kernel_regularizer=None,
        name=f"{prefix}_conv1",
    )(x)
    y = layers.BatchNormalization(name=f"{prefix}_bn1")(y)
    y = layers.ReLU(name=f"{prefix}_relu1")(y)
    y = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer=_KERNEL_INIT,
        kernel_regularizer=None,
        name=f"{prefix}_conv2",
    )(y)
    y = layers.BatchNormalization(name=f"{prefix}_bn2")(y)
    shortcut = x
    if strides != 1 or in_channels != filters:
        # Option B of He et al.: project only where the shape changes.
        shortcut = _conv_bn(x, filters, 1, strides, name=f"{prefix}_shortcut")
    y = layers.Add(name=f"{prefix}_add")([y, shortcut])
    return layers.ReLU(name=f"{prefix}_relu2")(y)


def resnet20(input_shape=(32, 32, 3), classes=10, **kwargs):
    """ResNet-20 (3 blocks per stage); see `resnet` for the arguments.

    Example:

    >>> resnet20().count_params()  # 272,474 trainable + BN moving stats
    274042
    """
    return resnet(20, input_shape=input_shape, classes=classes, **kwargs)


def resnet32(input_shape=(32, 32, 3), classes=10, **kwargs):
    """ResNet-32 (5 blocks per stage); see `resnet` for the arguments.

    Example:

    >>> resnet32(input_shape=(28, 28, 1)).output_shape
    (None, 10)
    """
    return resnet(32, input_shape=input_shape, classes=classes, **kwargs)


def resnet56(input_shape=(32, 32, 3), classes=10, **kwargs):
    """ResNet-56 (9 blocks per stage); see `resnet` for the arguments.

    Example:

    >>> resnet56(classes=100).output_shape
    (None, 100)
    """
    return resnet(56, input_shape=input_shape, classes=classes, **kwargs)


def _inverted_residual(x, expansion, filters, strides, prefix):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, linear project 1x1."""
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = layers.Conv2D(
            in_channels * expansion,
            1,
            padding="same",
            use_bias=False,
            kernel_initializer=_KERNEL_INIT,
            name=f"{prefix}_expand_conv",
        )(y)
        y = layers.BatchNormalization(name=f"{prefix}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{prefix}_expand_relu")(y)
    y = layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        depthwise_initializer=_KERNEL_INIT,
        name=f"{prefix}_dw_conv",
    )(y)
    y = layers.BatchNormalization(name=f"{prefix}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(y)
    y = layers.Conv2D(
        filters,
        1,
        padding="same",
        use_bias=False,
        kernel_initializer=_KERNEL_INIT,
        name=f"{prefix}_project_conv",
    )(y)
    # No activation after the projection: the bottleneck is linear.
    y = layers.BatchNormalization(name=f"{prefix}_project_bn")(y)
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=f"{prefix}_add")([x, y])
    return y


def mobilenet_v2(
    input_shape=(32, 32, 3),
    classes=10,
    alpha=1.0,
    name=None,
    classifier_activation=None,
):
    """Instantiates a small MobileNetV2 for ~32x32 images.

    A stride-1 3x3 stem (32 channels) is followed by inverted residual
    blocks with settings `(t, c, n, s)` = (1, 16, 1, 1), (6, 24, 2, 1),
    (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1): expansion `t`, output
    channels `c`, `n` repeats, stride `s` on the first repeat. A block is a
    1x1 expand conv-BN-ReLU6 (omitted when `t == 1`), a 3x3 depthwise
    conv-BN-ReLU6 and a linear 1x1 project conv-BN, with an `Add` when the
    stride is 1 and the channel count is unchanged. A 1x1 conv-BN-ReLU6 head
    with 320 channels precedes the classifier. All channel counts are scaled
    by `alpha` and rounded to a multiple of 8, as in the paper.

    Layers are named `stem_conv`, `stem_bn`, `stem_relu`, then for block `b`
    (from 0) of stage `s` (from 1): `stage{s}_block{b}_expand_conv`,
    `_expand_bn`, `_expand_relu`, `_dw_conv`, `_dw_bn`, `_dw_relu`,
    `_project_conv`, `_project_bn` and `_add`; then `head_conv`, `head_bn`,
    `head_relu`, `avg_pool` and `predictions`.

    Args:
        input_shape: Shape of one input image, `(height, width, channels)`.
        classes: Number of output classes.
        alpha: Width multiplier for every layer.
        name: Model name. Defaults to `"mobilenet_v2"`.
        classifier_activation: Activation of the last `Dense` layer. The
            default `None` returns logits; pass `"softmax"` for
            probabilities.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = mobilenet_v2(input_shape=(28, 28, 1), alpha=0.5)
    >>> model.get_layer("stage2_block0_expand_conv").filters
    48
    """
    if alpha <= 0:
        raise ValueError(f"`alpha` must be > 0, got {alpha}.")
    input_shape = _check_common(input_shape, classes)

    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, _make_divisible(32 * alpha), 3, 1, name="stem")
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for s, (t, c, n, first_stride) in enumerate(_MOBILENET_V2_STAGES, 1):
        filters = _make_divisible(c * alpha)
        for b in range(n):
            strides = first_stride if b == 0 else 1
            x = _inverted_residual(x, t, filters, strides, f"stage{s}_block{b}")
    x = _conv_bn(x, _make_divisible(320 * alpha), 1, 1, name="head")
    x = layers.ReLU(6.0, name="head_relu")(x)

    outputs = _classifier(x, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name or "mobilenet_v2")


_MODELS = {
    "vgg11": vgg11,
    "vgg16": vgg16,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "mobilenet_v2": mobilenet_v2,
}


def get(name, /, **kwargs):
    """Builds a reference model by name.

    Args:
        name: One of `"vgg11"`, `"vgg16"`, `"resnet20"`, `"resnet32"`,
            `"resnet56"` or `"mobilenet_v2"` (case-insensitive; `-` is
            accepted for `_`). Positional-only, so that `name=` in
            `kwargs` still sets the model's name.
        **kwargs: Passed to the builder, e.g. `input_shape`, `classes`,
            `width`, `alpha`, `name`, `classifier_activation`.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = get("resnet20", input_shape=(28, 28, 1), classes=10)
    >>> model.name
    'resnet20'
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in _MODELS:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(_MODELS)}."
        )
    return _MODELS[key](**kwargs)
