"""Evaluators: what a multi-trial strategy asks for the accuracy of one architecture.

``Evaluator.evaluate(choices) -> {"accuracy", "seconds", ...}`` where
``accuracy`` is measured on the search's validation split (never the test
split, which is kept for the reported accuracy of the answer). Two built-ins:

- ``train``: train the architecture from scratch for a few epochs on the
  search data and take its validation accuracy (the honest, costly score);
- ``supernet``: the weight-sharing accuracy of the architecture's path in a
  trained single-path supernet (SPOS): nothing is trained, each batch
  normalisation uses the statistics of the batch it normalises (the supernet's
  running statistics mix every path's; SPOS recomputes them per path).

An evaluation is a pure function of (evaluator, choices): its random
generator is seeded from the evaluator's seed and the architecture itself
(:func:`arch_seed`), and its nnabla parameters live in a scope of their own
that is removed afterwards. So scores do not depend on the order of
evaluation nor on which process or machine ran it, and an evaluator is a
small picklable object (space data, data set, numbers) that an executor can
ship to worker processes or a Ray cluster.

Third parties add evaluators with :func:`register_evaluator` or through the
entry-point group ``hwprof.evaluators`` (a class taking the same keyword
arguments as :class:`TrainEvaluator`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.spaces import Space

ENTRY_POINT_GROUP = "hwprof.evaluators"


def arch_seed(seed: int, choices: Sequence[str]) -> int:
    """A 31-bit seed from the search seed and the architecture (stable across processes)."""
    key = f"{int(seed)}|{'|'.join(choices)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


class SpaceRef:
    """A space as plain data (name, dictionary, batch): pickles small, rebuilds anywhere."""

    def __init__(self, space: Space):
        self.name, self.data, self.batch = space.name, space.data, space.input[0]

    def build(self) -> Space:
        return Space(self.name, self.data, batch=self.batch)


class Evaluator:
    """Scores architectures of one space on one data set. Subclasses implement ``_score``."""

    name = ""

    def __init__(self, space: Space, data, seed: int = 0, batch: int = 64, **options):
        self.space_ref = SpaceRef(space)
        self.data, self.seed, self.batch = data, int(seed), int(batch)
        self.options = options
        self._space: Space | None = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_space"] = None   # rebuilt from space_ref on the worker
        return state

    @property
    def space(self) -> Space:
        if self._space is None:
            self._space = self.space_ref.build()
        return self._space

    def __call__(self, choices: Sequence[str]) -> dict:
        return self.evaluate(choices)

    def evaluate(self, choices: Sequence[str]) -> dict:
        choices = list(self.space.check_choices(list(choices)))
        import nnabla as nn
        scope = f"eval_{self.name}_{arch_seed(self.seed, choices)}"
        t0 = time.perf_counter()
        try:
            with nn.parameter_scope(scope):
                nn.clear_parameters()
            out = self._score(choices, scope, np.random.RandomState(arch_seed(self.seed, choices)))
        finally:
            with nn.parameter_scope(scope):
                nn.clear_parameters()
        out.setdefault("seconds", time.perf_counter() - t0)
        out["choices"] = choices
        return out

    def _score(self, choices: list[str], scope: str, rng: np.random.RandomState) -> dict:
        raise NotImplementedError


class TrainEvaluator(Evaluator):
    """Validation accuracy after ``epochs`` epochs of training from scratch.

    Scored with batch statistics in the batch normalisations (``bn="batch"``,
    the default): after an epoch or two the running statistics still lag the
    moving weights (nnabla's decay 0.9), and a network scored with them sits
    at chance accuracy whatever it learned (mbv2-mini on MNIST after one
    epoch: 0.09-0.12 with running statistics, 0.69-0.86 with batch
    statistics). ``bn="running"`` scores the way the retrained answer is.
    """

    name = "train"

    def __init__(self, space: Space, data, seed: int = 0, batch: int = 64, epochs: int = 1,
                 lr: float = 2e-3, bn: str = "batch", **options):
        super().__init__(space, data, seed, batch, **options)
        if int(epochs) < 1:
            raise UserError(f"the train evaluator needs epochs >= 1, got {epochs}")
        if bn not in ("batch", "running"):
            raise UserError(f"the train evaluator's bn is 'batch' or 'running', got {bn!r}")
        self.epochs, self.lr, self.bn = int(epochs), float(lr), bn

    def _score(self, choices, scope, rng):
        from hwprof.search.supernet import SuperNet
        from hwprof.search.train import evaluate, fit_child
        net = SuperNet(self.space, rng, scope=scope)
        t0 = time.perf_counter()
        fit_child(net, choices, self.data, self.epochs, rng, batch=self.batch, lr=self.lr)
        stats = self.bn == "batch"
        acc = evaluate(lambda v: net.child(v, choices, train=stats), self.data.x_val,
                       self.data.y_val)
        return {"accuracy": acc, "seconds": time.perf_counter() - t0, "epochs": self.epochs}


class SupernetEvaluator(Evaluator):
    """Validation accuracy of the architecture's path in a trained supernet.

    ``weights``: the supernet's parameters as ``{name: numpy array}`` (names
    relative to the supernet's scope, as :meth:`SuperNet.weights` gives them).
    ``images``: score on the first N validation images (None: all of them).
    """

    name = "supernet"

    def __init__(self, space: Space, data, seed: int = 0, batch: int = 200,
                 weights: dict | None = None, images: int | None = None, **options):
        super().__init__(space, data, seed, batch, **options)
        if not weights:
            raise UserError("the supernet evaluator needs a trained supernet's weights; it is the "
                            "evaluator of --algo spos, which trains one")
        self.weights = {k: np.asarray(v) for k, v in weights.items()}
        self.images = None if images is None else int(images)

    def _score(self, choices, scope, rng):
        import nnabla as nn

        from hwprof.search.supernet import SuperNet
        from hwprof.search.train import evaluate
        with nn.parameter_scope(scope):
            for key, value in self.weights.items():
                nn.parameter.set_parameter(key, nn.Variable.from_numpy_array(value.copy()))
        net = SuperNet(self.space, rng, scope=scope)
        n = len(self.data.y_val) if self.images is None else min(self.images, len(self.data.y_val))
        # train=True: batch statistics in every batch normalisation (see the module doc)
        acc = evaluate(lambda v: net.child(v, choices, train=True), self.data.x_val[:n],
                       self.data.y_val[:n], batch=self.batch)
        return {"accuracy": acc, "images": n}


_BUILTIN = {"train": TrainEvaluator, "supernet": SupernetEvaluator}
_REGISTRY: dict[str, type] = dict(_BUILTIN)


def register_evaluator(name: str, cls: type) -> None:
    """Make ``cls`` (an :class:`Evaluator` subclass) available as ``--evaluator name``."""
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise TypeError(f"an evaluator must subclass hwprof.search.evaluators.Evaluator, "
                        f"got {cls!r}")
    _REGISTRY[name] = cls


def _entry_points() -> dict:
    from importlib.metadata import entry_points
    eps = entry_points()
    group = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") \
        else eps.get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in group}


def evaluator_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_evaluator(name: str) -> type:
    """The evaluator class registered as ``name`` (built-in, registered or entry point)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    ep = _entry_points().get(name)
    if ep is None:
        raise UserError(f"unknown evaluator {name!r}; choose one of {', '.join(evaluator_names())}")
    cls = ep.load()
    register_evaluator(name, cls)
    return cls
