# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test lint docs install data clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST's original files, from Debian's package.
data: $(FMNIST)
$(FMNIST):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist)

demo: install data
	$(PY) examples/demo.py

# The core and the HFP gates are written in keras.ops: their tests run a
# second time on JAX (tests/conftest.py says which).
test: install data lint docs
	$(PY) -m pytest -q tests --markdown-docs --markdown-docs-syntax=superfences README.md docs
	KERAS_BACKEND=jax $(PY) -m pytest -q -m "backend_agnostic and not slow_on_jax" tests

# Import contracts (core <- ranking <- methods; tflite_export -> tfprune) and ruff.
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

# The documentation site (MkDocs, Material), into site/; --strict: a broken
# link or a missing API reference fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -q -d site

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis site
