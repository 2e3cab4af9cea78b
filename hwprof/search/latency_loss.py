"""The expected-latency term and the budget-aware loss forms.

``E(alpha) = fixed + sum_l sum_k p_lk T_lk`` with ``p_l = softmax(alpha_l / tau)``
and ``T_lk`` the LatencyModel's milliseconds for candidate ``k`` of layer ``l``
(skip = 0 ms; ``fixed`` = the space's stem and head). Variable depth needs
nothing more: only the layers a stage may drop (beyond its minimum depth) have
a ``skip`` candidate, so ``E`` never prices a stage shallower than allowed. E and its gradient are
computed in closed form with numpy, so a search step pays a few microseconds
for them, and the gradient is exact (tests compare it with finite differences).

Loss forms (``ce`` is the cross-entropy of the architecture step, ``B`` the
budget in ms):

- ``hinge`` (default): ``ce + lam * max(0, E/B - 1)``
- ``mul#log`` (ProxylessNAS): ``ce * (log E / log B) ** beta`` with E, B in
  microseconds (so the logarithms stay positive for sub-millisecond budgets)
- ``add#linear`` (ProxylessNAS): ``ce + lam * E / B``

Other budgets (parameters, peak memory; :mod:`hwprof.search.constraints`) add
``lam * max(0, V / budget - 1)`` on their expected value ``V`` to any form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.spaces import Space

LOSS_FORMS = ("hinge", "mul#log", "add#linear")


def softmax(a: np.ndarray, tau: float = 1.0) -> np.ndarray:
    z = a / tau
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


@dataclass
class LatencyTable2D:
    """Per-layer candidate latencies of one space under one LatencyModel."""

    names: list[list[str]]      # candidate names per layer
    ms: list[np.ndarray]        # T_lk per layer, same order
    fixed_ms: float             # stem + head
    sources: dict[str, int]     # how many values came from table / predictor
    # per layer: the stage of a layer the stage may drop (variable depth), else -1
    optional_stage: list[int] | None = None

    @classmethod
    def from_model(cls, space: Space, model) -> "LatencyTable2D":
        names, specs, where = [], [], []
        for li, lay in enumerate(space.layers):
            names.append(list(lay.candidates))
            for k, n in enumerate(lay.candidates):
                s = space.candidate_spec(lay, n)
                if s is not None:
                    specs.append(s)
                    where.append((li, k))
        lat = model.latencies(list(space.fixed_specs) + specs)
        sources: dict[str, int] = {}
        for _, src in lat:
            sources[src] = sources.get(src, 0) + 1
        vals = [float(ms) for ms, _ in lat]
        bad = [v for v in vals if not (v > 0 and np.isfinite(v))]
        if bad:
            raise UserError(f"the latency model gave {len(bad)} non-positive or non-finite "
                            f"latencies for space {space.name!r}; rebuild the table")
        nfix = len(space.fixed_specs)
        ms = [np.zeros(len(n)) for n in names]
        for (li, k), v in zip(where, vals[nfix:]):
            ms[li][k] = v
        optional = [lay.stage if getattr(lay, "optional", False) else -1 for lay in space.layers]
        return cls(names, ms, float(sum(vals[:nfix])), sources, optional)

    def arch_ms(self, idx: Sequence[int]) -> float:
        return self.fixed_ms + float(sum(t[i] for t, i in zip(self.ms, idx)))

    def range_ms(self) -> tuple[float, float]:
        return (self.fixed_ms + float(sum(t.min() for t in self.ms)),
                self.fixed_ms + float(sum(t.max() for t in self.ms)))


def expected_latency(alphas: Sequence[np.ndarray], lut: LatencyTable2D, tau: float = 1.0,
                     grad: bool = True):
    """(E in ms, [dE/dalpha_l]) for softmax(alpha_l / tau) probabilities."""
    return expected_value(alphas, lut.ms, lut.fixed_ms, tau, grad)


def expected_value(alphas: Sequence[np.ndarray], values: Sequence[np.ndarray], fixed: float,
                   tau: float = 1.0, grad: bool = True):
    """(fixed + sum_l p_l . v_l, its gradient per layer) for any per-candidate values."""
    e = fixed
    grads = []
    for a, t in zip(alphas, values):
        p = softmax(a, tau)
        el = float(p @ t)
        e += el
        if grad:
            # d(p.t)/da_j = p_j (t_j - p.t) / tau
            grads.append(p * (t - el) / tau)
    return e, grads


class LatencyLoss:
    """One of the loss forms; ``__call__`` gives the total loss and the alpha gradients.

    ``ce_grads`` are d ce / d alpha from the network (list per layer, or None
    when the caller only wants the latency part).
    """

    def __init__(self, lut: LatencyTable2D, budget_ms: float, form: str = "hinge",
                 lam: float = 2.0, beta: float = 0.6, extra_terms=()):
        if form not in LOSS_FORMS:
            raise UserError(f"unknown latency loss {form!r}; choose one of {', '.join(LOSS_FORMS)}")
        if not budget_ms > 0:
            raise UserError(f"the latency budget must be positive, got {budget_ms}")
        self.lut, self.budget_ms, self.form, self.lam, self.beta = lut, budget_ms, form, lam, beta
        self.extra_terms = list(extra_terms)   # (values, fixed, scale): other budgets' hinges

    def __call__(self, alphas, ce: float, ce_grads=None, tau: float = 1.0):
        e, de = expected_latency(alphas, self.lut, tau)
        b = self.budget_ms
        if ce_grads is None:
            ce_grads = [np.zeros_like(a) for a in alphas]
        if self.form == "hinge":
            over = e / b - 1.0
            loss = ce + self.lam * max(0.0, over)
            scale = self.lam / b if over > 0 else 0.0
            grads = [g + scale * d for g, d in zip(ce_grads, de)]
        elif self.form == "add#linear":
            loss = ce + self.lam * e / b
            grads = [g + (self.lam / b) * d for g, d in zip(ce_grads, de)]
        else:  # mul#log, in microseconds
            lb = np.log(b * 1e3)
            r = np.log(e * 1e3) / lb
            f = r ** self.beta
            loss = ce * f
            df_de = self.beta * r ** (self.beta - 1) / (lb * e)
            grads = [f * g + ce * df_de * d for g, d in zip(ce_grads, de)]
        loss += self._extra(alphas, grads, tau)
        return float(loss), e, grads

    def _extra(self, alphas, grads, tau: float) -> float:
        """Add the other budgets' hinge terms ``lam * max(0, V * scale - 1)`` (in place)."""
        total = 0.0
        for values, fixed, scale in self.extra_terms:
            v, dv = expected_value(alphas, values, fixed, tau)
            over = v * scale - 1.0
            if over > 0:
                total += self.lam * over
                for g, d in zip(grads, dv):
                    g += self.lam * scale * d
        return total
