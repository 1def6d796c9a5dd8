"""Keras layers that tfprune inserts into models while they train."""

import keras


@keras.saving.register_keras_serializable(package="tfprune")
class ChannelGate(keras.layers.Layer):
    """Multiplies each channel by a trainable factor in [0, 1].

    One gate serves one channel group: where a group has several producers
    (the branches of a residual `Add`), the same layer is called on each, so
    the factors are shared and a channel is counted, and removed, once.

    Args:
        initial_value: starting value of every factor.
        **kwargs: base layer arguments (name, dtype, trainable).

    Example:

    ```python
    x = keras.layers.Conv2D(16, 3)(inputs)
    x = tfprune.layers.ChannelGate(name="conv_gate")(x)
    ```
    """

    def __init__(self, initial_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        self.gate = self.add_weight(
            name="gate", shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.initial_value),
            constraint=lambda g: keras.ops.clip(g, 0.0, 1.0), trainable=True)

    def call(self, inputs):
        return inputs * keras.ops.cast(self.gate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial_value": self.initial_value}
