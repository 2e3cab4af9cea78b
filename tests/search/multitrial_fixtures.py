"""A search problem on the ``tiny`` space with a synthetic latency table (no timing of this CPU)."""

from __future__ import annotations

import numpy as np

from hwprof.latency.spaces import get_space
from hwprof.search.constraints import Constraints
from hwprof.search.latency_loss import LatencyLoss, LatencyTable2D
from hwprof.search.strategy import SearchProblem

# tiny: layer 1 (mbconv_e3_k3, mbconv_e6_k3), layer 2 (mbconv_e3_k3, mbconv_e6_k3, skip)
MS = [np.array([0.20, 0.40]), np.array([0.15, 0.30, 0.0])]
FIXED = 0.10


def tiny_lut() -> LatencyTable2D:
    sp = get_space("tiny")
    return LatencyTable2D([list(lay.candidates) for lay in sp.layers], [m.copy() for m in MS],
                          FIXED, {"synthetic": 5})


def tiny_problem(data, budget_ms: float = 0.62, seed: int = 0, epochs: int = 3,
                 options: dict | None = None, evaluator=None, executor="local",
                 log=lambda m: None) -> SearchProblem:
    """Budget 0.62 ms admits 4 of the 6 architectures (all but e6 + e3/e6 in layer 2)."""
    sp = get_space("tiny")
    lut = tiny_lut()
    est = lambda ch: lut.arch_ms([n.index(c) for n, c in zip(lut.names, ch)])  # noqa: E731
    return SearchProblem(space=sp, lut=lut, loss=LatencyLoss(lut, budget_ms), budget_ms=budget_ms,
                         estimate=est, limits=Constraints.from_space(sp), data=data, seed=seed,
                         epochs=epochs, batch=32, log=log,
                         options={"workers": "1", **(options or {})}, evaluator=evaluator,
                         executor=executor)


def within(problem, choices) -> bool:
    return problem.estimate(list(choices)) <= problem.budget_ms
