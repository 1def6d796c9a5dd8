"""`Budget`: what a user asks a pruning method to reach.

One value for every method: a MACs and/or params target, a predicted-latency
target read from a latency table, and the width granularity (`round_to`).
It is validated when made, so a bad value fails before any work starts, and
resolved against a model once (`resolve`), which turns fractions into counts
and milliseconds.
"""

import dataclasses
import math
import numbers

from tfprune.core.cost import cost

TARGETS = ("macs", "params", "latency")


def _count_target(value, name):
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(
            f"{name} must be a finite fraction in (0, 1] of the original or a "
            f"positive count, got {value!r}.")
    return float(value)


def _latency_target(value):
    """A latency target as given: a positive number, or "<ms>ms"."""
    if value is None or not isinstance(value, str):
        return _count_target(value, "latency")
    text = value.strip().lower()
    try:
        if not text.endswith("ms"):
            raise ValueError
        ms = float(text[:-2])
    except ValueError:
        raise ValueError(
            f"latency must be a fraction (<= 1), milliseconds (> 1) or a string "
            f"like '0.8ms', got {value!r}.") from None
    if not (math.isfinite(ms) and ms > 0):
        raise ValueError(f"latency must be a finite positive time, got {value!r}.")
    return f"{ms!r}ms"


def _round_to(value, table):
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"round_to must be a positive integer or 'auto', got {value!r}.")
        if table is None:
            raise ValueError("round_to='auto' reads the widths from a latency table: "
                             "pass table= as well.")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"round_to must be a positive integer or 'auto', got {value!r}.")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Budget:
    """A pruning target: MACs, params and/or predicted latency, and widths.

    Every method takes one (`tfprune.prune`, the `plan` and `attach` of each
    registered method). A target at most 1 is a fraction of the original
    model's figure; above 1 it is an absolute count (or milliseconds). A plan
    meets every target given.

    Args:
        macs: fraction of the original MACs (e.g. 0.5) or a MACs count.
        params: the same for the number of parameters.
        latency: predicted LiteRT latency: a fraction (<= 1) of the original's
            predicted latency, milliseconds (> 1), or a string such as "0.8ms"
            (milliseconds whatever its size). Needs `table`.
        table: a `tfprune.latency.LatencyTable` measured for the model before
            pruning; needed for `latency` and `round_to="auto"`.
        round_to: kept widths are multiples of this (or a group's whole
            width); "auto" keeps only the widths `table` measured.

    Raises:
        ValueError: no target, a target that is not a finite positive number,
            a latency target without its table, or a bad `round_to`.

    Example:

    ```python
    budget = tfprune.Budget(macs=0.5, round_to=4)  # widths in steps of 4
    plan = tfprune.prune(model, budget)
    ```
    """

    macs: "float | None" = None
    params: "float | None" = None
    latency: "float | str | None" = None
    table: object = dataclasses.field(default=None, compare=False, repr=False)
    round_to: "int | str" = 1

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "macs", _count_target(self.macs, "macs"))
        set_(self, "params", _count_target(self.params, "params"))
        set_(self, "latency", _latency_target(self.latency))
        if self.macs is None and self.params is None and self.latency is None:
            raise ValueError("a Budget needs macs=, params= and/or latency= (with "
                             "table=): what should the pruned model fit in?")
        if self.latency is not None and self.table is None:
            raise ValueError("a latency target needs table=, measured with "
                             "tfprune.latency.LatencyTable.measure(model) on the model "
                             "before pruning.")
        if self.table is not None and not all(
                hasattr(self.table, a) for a in ("predict", "base_ms", "check")):
            raise ValueError(f"table must be a tfprune.latency.LatencyTable, got "
                             f"{type(self.table).__name__}.")
        set_(self, "round_to", _round_to(self.round_to, self.table))

    @classmethod
    def of(cls, budget=None, *, target_macs=None, target_params=None,
           target_latency=None, latency_table=None, round_to=None):
        """`budget`, or one made from keyword targets (not both).

        The keyword form is the convenience of `tfprune.prune`.

        Example:

        ```python
        budget = tfprune.Budget.of(target_macs=0.5)
        ```
        """
        keywords = {"macs": target_macs, "params": target_params,
                    "latency": target_latency, "table": latency_table}
        if budget is not None:
            check_budget(budget)
            given = [f"target_{k}" if k != "table" else "latency_table"
                     for k, v in keywords.items() if v is not None]
            if round_to is not None:
                given.append("round_to")
            if given:
                raise ValueError(f"give either a Budget or {', '.join(given)}, not both.")
            return budget
        return cls(**keywords, round_to=1 if round_to is None else round_to)

    @property
    def targets(self):
        """The targets given, as a dict name -> value."""
        return {k: getattr(self, k) for k in TARGETS if getattr(self, k) is not None}

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def resolve(self, graph):
        """The targets in absolute figures for the model of `graph`.

        Args:
            graph: the `ChannelGraph` of the model to prune.

        Returns:
            A dict "macs" / "params" -> count, "latency" -> milliseconds, with
            the targets given only.

        Raises:
            LatencyTableMismatchError: the table was measured for another model.
        """
        out = {}
        base = cost(graph) if self.macs is not None or self.params is not None else None
        for key in ("macs", "params"):
            value = getattr(self, key)
            if value is not None:
                total = getattr(base, key)
                out[key] = value * total if value <= 1 else value
        if self.table is not None:
            self.table.check(graph)
        if self.latency is not None:
            out["latency"] = self.latency_ms(self.table.base_ms)
        return out

    def latency_ms(self, base_ms):
        """The latency target in milliseconds, given the original's `base_ms`."""
        if isinstance(self.latency, str):
            return float(self.latency[:-2])
        return self.latency * base_ms if self.latency <= 1 else self.latency

    def fractions(self, graph):
        """The MACs/params targets as fractions of the model's figures."""
        base = cost(graph)
        return {k: (v * total if v <= 1 else v) / total  # as `resolve` counts, once
                for k, v, total in (("macs", self.macs, base.macs),
                                    ("params", self.params, base.params))
                if v is not None}


def check_budget(budget):
    """`budget` if it is a `Budget`, else a `ValueError` naming what it is.

    Every entry point that takes a budget calls this first, so a target
    passed the old way (`0.5`, a dict) or arguments in the wrong order get
    one clear message.

    Example:

    ```python
    budget = tfprune.core.budget.check_budget(tfprune.Budget(macs=0.5))
    ```
    """
    if not isinstance(budget, Budget):
        raise ValueError(f"expected a tfprune.Budget, got {type(budget).__name__} "
                         f"({budget!r:.40}); e.g. tfprune.Budget(macs=0.5).")
    return budget
