"""Hardware budgets besides latency: parameter count and peak activation memory.

Per layer and candidate, from the space's op specs (``hwprof.latency.resources``):

- parameters add up over layers (plus the fixed stem and head), like latency;
  the derivation keeps a second additive dimension for them and checks every
  candidate architecture exactly;
- the peak activation memory of a network is the largest over its ops, so a
  memory budget rules single candidates out: a candidate whose own peak is over
  the budget is never derived (and the fixed part must fit, or no architecture
  does).

In the search loss each budget adds a hinge term on its expected value
(:meth:`Constraints.loss_terms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.resources import params_of, peak_activation_bytes


@dataclass
class Constraints:
    """Per-candidate parameters and peak memory of one space, with the budgets (None: none)."""

    params: list[np.ndarray]
    fixed_params: float
    memory: list[np.ndarray]
    fixed_memory: float
    param_budget: float | None = None
    memory_budget: float | None = None

    @classmethod
    def from_space(cls, space, param_budget: float | None = None,
                   memory_budget: float | None = None) -> "Constraints":
        params, memory = [], []
        for lay in space.layers:
            specs = [space.candidate_spec(lay, n) for n in lay.candidates]
            params.append(np.array([params_of(s) if s else 0 for s in specs], dtype=float))
            memory.append(np.array([peak_activation_bytes(s) if s else 0 for s in specs],
                                   dtype=float))
        fixed = space.fixed_specs
        c = cls(params, float(sum(params_of(s) for s in fixed)), memory,
                float(max(peak_activation_bytes(s) for s in fixed)), param_budget, memory_budget)
        c.check_feasible()
        return c

    @property
    def active(self) -> bool:
        return self.param_budget is not None or self.memory_budget is not None

    def allowed(self) -> list[np.ndarray]:
        """Boolean mask per layer: candidates whose own peak memory fits the budget."""
        if self.memory_budget is None:
            return [np.ones(len(m), dtype=bool) for m in self.memory]
        return [m <= self.memory_budget for m in self.memory]

    def check_feasible(self) -> None:
        """A UserError when no architecture can meet the budgets."""
        mb, pb = self.memory_budget, self.param_budget
        if mb is not None:
            if self.fixed_memory > mb:
                raise UserError(f"the memory budget {_bytes(mb)} is below the peak activation "
                                f"memory of the space's fixed stem and head "
                                f"({_bytes(self.fixed_memory)})")
            if not all(a.any() for a in self.allowed()):
                worst = max(float(m.min()) for m in self.memory)
                raise UserError(f"the memory budget {_bytes(mb)} is below the smallest peak "
                                f"activation memory of the space ({_bytes(worst)})")
        if pb is not None:
            least = self.fixed_params + sum(float(p[a].min()) for p, a in
                                            zip(self.params, self.allowed()))
            if least > pb:
                raise UserError(f"the parameter budget {_count(pb)} is below the smallest "
                                f"architecture of the space ({_count(least)} parameters)")

    def arch_params(self, idx: Sequence[int]) -> float:
        return self.fixed_params + float(sum(p[i] for p, i in zip(self.params, idx)))

    def arch_memory(self, idx: Sequence[int]) -> float:
        return max([self.fixed_memory] + [float(m[i]) for m, i in zip(self.memory, idx)])

    def satisfied(self, idx: Sequence[int]) -> bool:
        return ((self.param_budget is None or self.arch_params(idx) <= self.param_budget)
                and (self.memory_budget is None or self.arch_memory(idx) <= self.memory_budget))

    def report(self, idx: Sequence[int]) -> list[dict]:
        """One entry per resource: value, budget (or None) and slack (budget - value)."""
        out = []
        for name, unit, value, budget in (
                ("params", "parameters", self.arch_params(idx), self.param_budget),
                ("peak_memory", "bytes", self.arch_memory(idx), self.memory_budget)):
            out.append({"name": name, "unit": unit, "value": value, "budget": budget,
                        "slack": None if budget is None else budget - value,
                        "ok": None if budget is None else value <= budget, "source": "op specs"})
        return out

    def loss_terms(self) -> list[tuple[list[np.ndarray], float, float]]:
        """(per-candidate values, fixed, scale) triples; the loss adds
        ``lam * max(0, (fixed + sum_l p_l . v_l) * scale - 1)`` for each."""
        terms = []
        if self.param_budget is not None:
            terms.append((self.params, self.fixed_params, 1.0 / self.param_budget))
        if self.memory_budget is not None:
            # max is not smooth: penalise each layer's expected excess over the budget
            excess = [np.maximum(m / self.memory_budget - 1.0, 0.0) for m in self.memory]
            terms.append((excess, 1.0, 1.0))
        return terms


def _bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


format_bytes, format_count = _bytes, _count
