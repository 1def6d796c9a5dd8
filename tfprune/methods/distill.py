"""Knowledge distillation for fine-tuning a pruned model."""

import contextlib

import keras


@keras.saving.register_keras_serializable(package="tfprune")
class Distiller(keras.Model):
    """Trains `student` on labels and on a frozen `teacher`'s soft outputs.

    loss = (1 - alpha) * CE(labels, student) + alpha * T^2 * KL(teacher_T || student_T),
    where `_T` are softmax outputs at temperature T (Hinton et al. 2015). The
    Distiller is a `keras.Model`: compile, fit, evaluate and callbacks work
    as usual; metrics are computed on the student's outputs. After training,
    use `distiller.student`.

    Args:
        student: the model to train (e.g. from `tfprune.rebuild`).
        teacher: the model to imitate (e.g. the unpruned original); frozen
            while the distiller trains, and left as it was afterwards.
        temperature: softening temperature T.
        alpha: weight of the distillation term.
        from_logits: whether both models output logits (True) or
            probabilities (False; their log is used as logits).

    Example:

    ```python
    slim = tfprune.rebuild(model, tfprune.prune(model, tfprune.Budget(macs=0.5)))
    distiller = tfprune.methods.distill.Distiller(student=slim, teacher=model)
    distiller.compile(keras.optimizers.SGD(0.01), metrics=["accuracy"])
    distiller.fit(train, epochs=1, verbose=0)
    slim = distiller.student
    ```
    """

    def __init__(self, student, teacher, temperature=4.0, alpha=0.9,
                 from_logits=True, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.student = student
        self.teacher = teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.from_logits = bool(from_logits)

    @contextlib.contextmanager
    def _frozen_teacher(self):
        # Frozen only while training, and given back as it was: the teacher
        # is the user's model (often the unpruned original) and must not
        # come out of distillation untrainable.
        was = self.teacher.trainable
        self.teacher.trainable = False
        try:
            yield
        finally:
            self.teacher.trainable = was

    def fit(self, *args, **kwargs):
        with self._frozen_teacher():
            return super().fit(*args, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        with self._frozen_teacher():
            return super().train_on_batch(*args, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compile(self, optimizer="sgd", metrics=None, **kwargs):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def _logits(self, outputs):
        if self.from_logits:
            return outputs
        return keras.ops.log(keras.ops.clip(outputs, 1e-7, 1.0))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        hard = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)
        t = self.temperature
        teacher = keras.ops.stop_gradient(self.teacher(x, training=False))
        p_teacher = keras.ops.softmax(self._logits(teacher) / t, axis=-1)
        log_p_student = keras.ops.log_softmax(self._logits(y_pred) / t, axis=-1)
        log_p_teacher = keras.ops.log(keras.ops.clip(p_teacher, 1e-12, 1.0))
        kl = keras.ops.sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
        soft = keras.ops.mean(kl) * t * t
        return (1.0 - self.alpha) * hard + self.alpha * soft

    def get_config(self):
        return {**super().get_config(),
                "student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "temperature": self.temperature, "alpha": self.alpha,
                "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("student", "teacher"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects)
        return cls(**config)
