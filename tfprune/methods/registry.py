"""The method registry: every pruning method, used one way.

A method is registered once, with `register_method`, and declares what it
needs (calibration data, training) and what it supports (latency budgets,
kernel sizes, `round_to`). tfprune's own methods are registered through the
same call a user makes for their own, and the command line, the benchmark
runner and the documentation are made from this table.

Two shapes:

- one-shot methods make a plan from a trained model:
  `method.plan(model, budget, data=None, **options) -> PruningPlan`;
- training-time methods change the model while it trains:
  `method.attach(model, budget, **options) -> TrainingSession`; compile and
  fit `session.model` with `session.callbacks`, then `session.plan()` gives
  the `PruningPlan` and `session.rebuild()` the slim model.

Packages add methods through the `tfprune.methods` entry-point group: an
entry naming a `Method` registers it under the entry's name; an entry naming
a function calls it (it registers its methods itself).

Example:

```python
from tfprune.ranking.fit import fit_plan

def random_plan(model, budget, data=None, seed=0):
    graph = tfprune.analyze(model)
    rng = np.random.default_rng(seed)
    scores = {g.id: rng.random(g.size) for g in graph.prunable_groups}
    return fit_plan(graph, scores, budget)

tfprune.register_method("random", tfprune.Method(
    plan=random_plan, summary="random channels (a control)",
    options=[tfprune.Option("seed", int, 0, "random seed")]))
plan = tfprune.get_method("random").plan(model, tfprune.Budget(macs=0.5))
```
"""

import dataclasses

from tfprune.core.budget import Budget
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import rebuild
from tfprune.errors import TfpruneError

ENTRY_POINTS = "tfprune.methods"

_REGISTRY = {}
_entry_points_loaded = False


@dataclasses.dataclass(frozen=True)
class Option:
    """A knob of a method beyond its budget, shown by the CLI as `--name`.

    Args:
        name: the keyword the method's `plan`/`attach` takes, e.g.
            "generations" (the CLI flag is `--generations`).
        type: a function from the command line's text to the value (`int`,
            `float`, `str`, or a validating function).
        default: the value when the option is not given.
        help: one line for `tfprune prune --help`.
        choices: the allowed values, or None.

    Example:

    ```python
    option = tfprune.Option("generations", int, 30, "generations per group")
    ```
    """

    name: str
    type: object = str
    default: object = None
    help: str = ""
    choices: tuple = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"an option's name must be a Python identifier, got "
                             f"{self.name!r}.")
        if not callable(self.type):
            raise ValueError(f"option '{self.name}': type must be a function, got "
                             f"{self.type!r}.")

    @property
    def flag(self):
        """The command-line flag, e.g. "--iterative-steps"."""
        return "--" + self.name.replace("_", "-")


class TrainingSession:
    """What a training-time method's `attach` returns.

    Compile and fit `model` (with `callbacks` among the fit callbacks); then
    `plan()` gives the `PruningPlan` and `rebuild()` the slim, trained model.

    Args:
        model: the `keras.Model` to compile and fit.
        callbacks: the Keras callbacks the method needs in `fit`.
        plan: function () -> the `PruningPlan` of the trained model.
        rebuild: function () -> the slim model; by default
            `tfprune.rebuild(model, plan())`.

    Example:

    ```python
    session = tfprune.methods.hfp.attach(model, tfprune.Budget(macs=0.5))
    session.model.compile("sgd", "sparse_categorical_crossentropy")
    session.model.fit(x, y, epochs=1, callbacks=session.callbacks, verbose=0)
    slim = session.rebuild()
    ```
    """

    def __init__(self, model, callbacks, plan, rebuild=None):
        self.model = model
        self.callbacks = list(callbacks)
        self._plan = plan
        self._rebuild = rebuild

    def plan(self):
        """The `PruningPlan` of the trained model."""
        return self._plan()

    def rebuild(self, custom_objects=None):
        """The slim model with the trained weights (a new `keras.Model`)."""
        if self._rebuild is not None:
            return self._rebuild()
        return rebuild(self.model, self.plan(), custom_objects)


class Method:
    """A pruning method: what it needs, what it supports, how to call it.

    Give `plan` for a one-shot method or `attach` for a training-time one.

    Args:
        plan: function (model, budget, data=None, **options) -> `PruningPlan`.
        attach: function (model, budget, **options) -> `TrainingSession`.
        summary: one line saying what the method does (CLI help, docs).
        paper: the publication it follows, or "".
        needs_data: whether it needs calibration data (`data=`; the CLI
            passes 512 training samples of `--data`).
        latency: whether it takes a latency budget (`Budget(latency=...)`).
        round_to: whether it honours `Budget(round_to=...)`.
        kernels: whether its plans change kernel sizes.
        refits: whether its plans already carry re-fitted weights (the CLI's
            `--refit` would replace them).
        budget: whether it takes a budget at all; a method without (PruneTrain:
            its penalty decides the widths) gets `budget=None`.
        options: the `Option`s it takes besides the budget.

    Example:

    ```python
    def l1_plan(model, budget, data=None):
        return tfprune.prune(model, budget, criterion="l1", scope="uniform")

    method = tfprune.Method(plan=l1_plan, summary="uniform L1 pruning")
    plan = method.plan(model, tfprune.Budget(macs=0.5))
    ```
    """

    def __init__(self, plan=None, attach=None, *, summary="", paper="", needs_data=False,
                 latency=False, round_to=True, kernels=False, refits=False, budget=True,
                 options=()):
        if (plan is None) == (attach is None):
            raise ValueError("a Method takes plan= (a one-shot method) or attach= (a "
                             "training-time method), exactly one of them.")
        for name, fn in (("plan", plan), ("attach", attach)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be a function, got {fn!r}.")
        options = tuple(options)
        for option in options:
            if not isinstance(option, Option):
                raise ValueError(f"options must be tfprune.Option values, got {option!r}.")
        self.name = None  # set by register_method
        self._plan, self._attach = plan, attach
        self.summary, self.paper = summary, paper
        self.needs_data, self.latency, self.round_to = needs_data, latency, round_to
        self.kernels, self.refits, self.budget = kernels, refits, budget
        self.options = options

    @property
    def kind(self):
        """"one-shot" or "training"."""
        return "one-shot" if self._plan is not None else "training"

    @property
    def trains(self):
        """Whether the method trains the model (it has `attach`)."""
        return self._attach is not None

    def option(self, name):
        """The `Option` called `name`, or None."""
        return next((o for o in self.options if o.name == name), None)

    def check_budget(self, budget):
        """The budget this method can take, or a `TfpruneError` saying why not."""
        label = f"method '{self.name}'"
        if not self.budget:
            if budget is not None:
                raise TfpruneError(f"{label} takes no budget (its training decides "
                                   "the widths); pass budget=None.")
            return None
        if not isinstance(budget, Budget):
            raise TfpruneError(f"{label} needs a tfprune.Budget, got "
                               f"{type(budget).__name__}; e.g. tfprune.Budget(macs=0.5).")
        if budget.latency is not None and not self.latency:
            raise TfpruneError(f"{label} takes no latency target; give macs= or params=.")
        if budget.round_to != 1 and not self.round_to:
            raise TfpruneError(f"{label} does not round widths; leave round_to at 1.")
        return budget

    def _check_options(self, options):
        unknown = sorted(set(options) - {o.name for o in self.options})
        if unknown:
            takes = ", ".join(o.name for o in self.options) or "none"
            raise TfpruneError(f"method '{self.name}' takes no option "
                               f"{', '.join(unknown)} (its options: {takes}).")

    def plan(self, model, budget, data=None, **options):
        """Runs a one-shot method: the `PruningPlan` for `model` within `budget`."""
        if self._plan is None:
            raise TfpruneError(f"method '{self.name}' trains the model: use "
                               "attach(model, budget) and fit the session's model.")
        budget = self.check_budget(budget)
        if self.needs_data and data is None:
            raise TfpruneError(f"method '{self.name}' needs calibration data: pass "
                               "data=(x, y) or a batched dataset.")
        self._check_options(options)
        plan = self._plan(model, budget, data, **options)
        if not isinstance(plan, PruningPlan):
            raise TfpruneError(f"method '{self.name}' returned "
                               f"{type(plan).__name__}, not a PruningPlan.")
        return plan

    def attach(self, model, budget, **options):
        """Starts a training-time method: a `TrainingSession` for `model`."""
        if self._attach is None:
            raise TfpruneError(f"method '{self.name}' does not train: use "
                               "plan(model, budget, data) instead.")
        budget = self.check_budget(budget)
        self._check_options(options)
        session = self._attach(model, budget, **options)
        if not isinstance(session, TrainingSession):
            raise TfpruneError(f"method '{self.name}' returned "
                               f"{type(session).__name__}, not a TrainingSession.")
        return session

    def __repr__(self):
        return f"<Method {self.name!r} ({self.kind}): {self.summary}>"


def register_method(name, method):
    """Adds a pruning method to tfprune, under `name`.

    A registered method is listed by `available_methods()`, found by
    `get_method(name)` and offered by `tfprune prune --method name`, with
    its options as flags. Registering a name again replaces the method.

    Args:
        name: the method's name, e.g. "random" (letters, digits, "_", "-").
        method: a `Method`.

    Returns:
        `method`, named.

    Raises:
        ValueError: a bad name, or `method` is not a `Method`.

    Example:

    ```python
    def random_plan(model, budget, data=None):
        graph = tfprune.analyze(model)
        scores = {g.id: np.random.rand(g.size) for g in graph.prunable_groups}
        return tfprune.ranking.fit.fit_plan(graph, scores, budget)

    tfprune.register_method("random", tfprune.Method(plan=random_plan,
                                                     summary="random channels"))
    ```
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").replace(
            "-", "").isalnum():
        raise ValueError(f"a method's name is letters, digits, '_' and '-', got {name!r}.")
    if not isinstance(method, Method):
        raise ValueError(f"register_method expects a tfprune.Method for '{name}', got "
                         f"{type(method).__name__}.")
    method.name = name
    _REGISTRY[name] = method
    return method


def _load_entry_points():
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda ep: ep.name):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not break tfprune
            raise TfpruneError(f"the '{ep.name}' entry point of '{ENTRY_POINTS}' "
                               f"({ep.value}) failed to load: {e}") from e
        if isinstance(obj, Method):
            register_method(ep.name, obj)
        elif callable(obj):
            obj()
        else:
            raise TfpruneError(f"the '{ep.name}' entry point of '{ENTRY_POINTS}' "
                               f"names {type(obj).__name__}, not a Method or a function.")


def available_methods():
    """Dict name -> `Method` of every registered method, in name order."""
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def get_method(name):
    """The `Method` registered as `name`.

    Raises:
        ValueError: no method has that name (the message lists them).
    """
    methods = available_methods()
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; choose one of "
                         f"{', '.join(methods)}.")
    return methods[name]
