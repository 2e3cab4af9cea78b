"""The strategy interface: a search problem goes in, a result comes out.

A *strategy* explores a space for an accurate architecture under a latency
budget. One-shot strategies (DARTS, ProxylessNAS, FBNet) train a supernet with
architecture weights and the differentiable latency term ``problem.loss``;
multi-trial strategies (random search, regularized evolution, SPOS) sample
architectures that ``problem.within_budget`` accepts and score them with an
evaluator. Either way the strategy returns a per-layer preference
distribution (:attr:`SearchResult.probs`); the runner derives the network
from it under the budget and checks it end to end (the closed loop), the same
way for every strategy.

A strategy never talks to hardware: latencies come from ``problem.lut`` and
``problem.estimate``, both from the LatencyModel.

Write your own by subclassing :class:`Strategy` and registering it
(:func:`hwprof.search.registry.register_strategy`, or the ``hwprof.strategies``
entry-point group)::

    class Fastest(Strategy):
        name, kind, description = "fastest", "one-shot", "the fastest candidate of each layer"

        def search(self, problem):
            probs = [one_hot(int(t.argmin()), len(t)) for t in problem.lut.ms]
            return SearchResult(probs=probs)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.spaces import Space
from hwprof.search.constraints import Constraints
from hwprof.search.latency_loss import LatencyLoss, LatencyTable2D

KINDS = ("one-shot", "multi-trial")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class SearchProblem:
    """Everything a strategy needs; built by the runner, read-only for strategies.

    ``estimate(choices) -> ms`` is the whole-network estimate of one choice list
    (calibrated when the model has a calibration, else the table sum);
    ``epochs`` is the compute budget in training epochs over ``data``'s train
    split; ``options`` holds ``--strategy-option key=value`` pairs as strings
    (read them with :meth:`option`). ``min_fill``: the derivation prefers
    networks estimated at >= ``min_fill`` x budget, so a multi-trial strategy does
    well to look there first.
    """

    space: Space
    lut: LatencyTable2D
    loss: LatencyLoss
    budget_ms: float
    estimate: Callable[[list[str]], float]
    limits: Constraints
    data: Any
    seed: int = 0
    epochs: int = 8
    batch: int = 64
    log: Callable[[str], None] = print
    options: dict = field(default_factory=dict)
    evaluator: str | None = None
    executor: str | None = "local"
    min_fill: float = 0.0   # the derivation prefers networks estimated at >= min_fill x budget
    model: Any = None       # the LatencyModel itself (latencies of op specs of your own)

    # --- helpers for strategies ------------------------------------------ #
    def indices(self, choices: Sequence[str]) -> list[int]:
        """Candidate index per layer of a choice list."""
        if len(choices) != len(self.lut.names):
            raise ValueError(f"{len(choices)} choices for {len(self.lut.names)} searchable layers")
        return [names.index(c) for names, c in zip(self.lut.names, choices)]

    def choices_of(self, idx: Sequence[int]) -> list[str]:
        """Choice list of candidate indices, one per layer."""
        return [names[int(i)] for names, i in zip(self.lut.names, idx)]

    def within_budget(self, choices: Sequence[str]) -> bool:
        """Whether ``choices`` is estimated within the latency budget and meets the other limits."""
        return (self.estimate(list(choices)) <= self.budget_ms
                and self.limits.satisfied(self.indices(choices)))

    def rng(self, salt: int = 0) -> np.random.RandomState:
        """A generator seeded from ``seed`` (and ``salt``, for independent streams)."""
        return np.random.RandomState((self.seed * 1000003 + salt) % (2 ** 32))

    def option(self, key: str, default: Any) -> Any:
        """``options[key]`` converted to the type of ``default`` (``default`` when absent)."""
        if key not in self.options:
            return default
        return convert_option(key, self.options[key], default)


def convert_option(key: str, raw: Any, default: Any) -> Any:
    """A ``--strategy-option`` string converted to the type of ``default``; a UserError
    naming the option when it does not convert."""
    if not isinstance(raw, str) or default is None or isinstance(default, str):
        return raw
    text = raw.strip().lower()
    try:
        if isinstance(default, bool):
            if text not in _TRUE + _FALSE:
                raise ValueError
            return text in _TRUE
        return type(default)(text)
    except ValueError:
        raise UserError(f"--strategy-option {key}={raw}: expected "
                        f"{_type_word(default)}") from None


def _type_word(default) -> str:
    if isinstance(default, bool):
        return "true or false"
    return {int: "an integer", float: "a number"}.get(type(default), type(default).__name__)


@dataclass
class SearchResult:
    """What a strategy hands back.

    ``probs``: per searchable layer, a preference distribution over that
    layer's candidates (in ``problem.lut.names`` order); the derivation picks
    the most preferred network within the budget from it. ``history``: series
    per epoch or trial (``epoch``, ``expected_ms``, ``probs``, ``tau``, ...;
    any may be missing). ``choices``: the strategy's own pick, if it has one.
    ``extras``: strategy-specific report entries (costs, timings, trial counts),
    written into report.json.
    """

    probs: list[np.ndarray]
    history: dict = field(default_factory=dict)
    choices: list[str] | None = None
    extras: dict = field(default_factory=dict)

    def check(self, problem: SearchProblem, name: str = "strategy") -> "SearchResult":
        """Validate shapes and values against ``problem``; returns self with float arrays."""
        names = problem.lut.names
        if len(self.probs) != len(names):
            raise UserError(f"search strategy {name!r} returned {len(self.probs)} distributions "
                            f"for {len(names)} searchable layers")
        probs = []
        for li, (p, n) in enumerate(zip(self.probs, names)):
            p = np.asarray(p, dtype=np.float64)
            if p.shape != (len(n),) or not np.all(np.isfinite(p)) or (p < 0).any() or p.sum() <= 0:
                raise UserError(f"search strategy {name!r}: layer {li}'s distribution must be "
                                f"{len(n)} non-negative finite numbers, not summing to 0")
            probs.append(p / p.sum())
        self.probs = probs
        if self.choices is not None:
            try:
                problem.indices(self.choices)
            except ValueError as e:
                raise UserError(f"search strategy {name!r} picked choices that are not the "
                                f"space's candidates: {e}") from None
        return self


def one_hot(i: int, n: int) -> np.ndarray:
    p = np.zeros(n)
    p[int(i)] = 1.0
    return p


class Strategy(ABC):
    """Base of every search strategy. Subclasses set the class attributes and ``search``.

    ``option_help`` maps the ``--strategy-option`` keys the strategy reads to a
    line of help; the runner refuses other keys (``None``: not checked).
    ``default_epochs`` is the compute budget used when ``--epochs`` is not given.
    A strategy may define ``validate_options(options)`` to check option values
    early (a UserError), before the data is loaded and the search starts.
    """

    name: str = ""
    kind: str = "one-shot"
    description: str = ""
    option_help: dict[str, str] | None = None
    default_epochs: int = 8
    default_evaluator: str | None = None

    @abstractmethod
    def search(self, problem: SearchProblem) -> SearchResult:
        """Explore ``problem.space``; return the per-layer preferences (and history, extras)."""


def check_options(strategy, options: dict) -> None:
    """A UserError for option keys ``strategy`` does not read (when it declares them)."""
    known = getattr(strategy, "option_help", None)
    if known is None:
        return
    unknown = sorted(set(options) - set(known))
    if unknown:
        valid = ", ".join(f"{k} ({v})" for k, v in known.items()) or "none"
        raise UserError(f"search strategy {strategy.name!r} has no option "
                        f"{', '.join(unknown)}; its options: {valid}")
    validate = getattr(strategy, "validate_options", None)
    if callable(validate):   # values too, before any data is loaded
        validate(options)
