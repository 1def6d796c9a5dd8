from setuptools import find_packages, setup

# TensorFlow is Keras's backend here and runs the TFLite converter. On Linux
# x86-64 the CPU-only wheel is enough and much smaller; for GPU training,
# install `tensorflow[and-cuda]` instead (see README).
LINUX_X86 = "platform_system == 'Linux' and platform_machine == 'x86_64'"
OTHER = "platform_system != 'Linux' or platform_machine != 'x86_64'"

setup(
    name="tfprune",
    version="0.1.0",
    description="Structured channel pruning for Keras 3 models.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfprune", "tfprune.*", "tflite_export",
                                    "tflite_export.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.10,<4",  # private uses checked in tfprune/compat.py
        "numpy>=1.24",
        f"tensorflow-cpu>=2.16; {LINUX_X86}",
        f"tensorflow>=2.16; {OTHER}",
        # LiteRT runs and times exported .tflite files (tflite_export/), as
        # on Android; tf.lite.Interpreter is deprecated.
        "ai-edge-litert>=2.0",
        "flatbuffers>=23.5",  # reading .tflite files (tflite_export)
        "pygad>=3.3",  # the genetic channel search (tfprune.methods.search)
        "matplotlib>=3.7",  # sensitivity and report plots
    ],
    extras_require={
        # jax[cpu]: `make test` runs the core's tests on the JAX backend too;
        # pytest-markdown-docs runs the code blocks of README.md and docs/;
        # mkdocs builds the documentation site (`make docs`).
        "dev": ["pytest>=7", "hypothesis>=6", "ruff>=0.6", "import-linter>=2.0",
                "jax[cpu]>=0.4", "pytest-markdown-docs>=0.9", "mkdocs>=1.6,<2",
                "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
        "tfds": ["tensorflow-datasets>=4.9"],
        # The peer row of `python -m benchmarks.latency`: tfmot only prunes
        # tf_keras models. tf_keras requires the `tensorflow` package by
        # name; next to tensorflow-cpu, install it with `pip install
        # --no-deps tf_keras==<your TF version>` first.
        "bench": ["tf_keras>=2.16", "tensorflow-model-optimization>=0.8"],
        # benchmarks/peers/torch_pruning.py: the same resnet20 in PyTorch,
        # pruned by Torch-Pruning (CPU wheels are enough).
        "peers": ["torch>=2.1", "torch-pruning>=1.6"],
    },
    entry_points={
        "console_scripts": ["tfprune=tfprune.cli:run"],
        # Commands other packages add to the `tfprune` CLI.
        "tfprune.cli": ["export=tflite_export.cli:register"],
        # Timing .tflite files for `tfprune report --tflite`.
        "tfprune.profilers": ["tflite=tflite_export.report:profile_pair"],
        # Timing Keras models for `tfprune.latency.LatencyTable.measure`.
        "tfprune.timers": ["tflite=tflite_export.timing:time_model"],
    },
)
