"""The closed loop: derive, measure the network end to end, re-derive until it fits.

A derivation is only as good as the whole-network estimate it checks against;
the answer of a search is the network measured on the device. The loop:

1. derive against the budget (``derive_at(target, min_fill, exclude)``);
2. measure the derived network end to end (``measure(choices) -> ms``, a
   callable the caller hands in: this package never talks to hardware);
3. if the measured latency is over the budget, or far under it (outside
   ``[fill, 1] x budget``), learn the ratio measured / estimate of this
   network and derive again against ``aim x budget / ratio``: tightened when
   it was over, loosened when it was far under; networks already measured are
   excluded, so every round measures a new one;
4. stop when a round lands in the band, after ``max_rounds``, or when nothing
   can be derived any more.

The answer is the most probable network measured in the band; if none, the
fullest one measured within the budget; if none is within the budget, no answer
(the caller refuses, or keeps the fastest measured one when asked to).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from hwprof.errors import UserError

FILL = 0.95   # measured / budget at or above this fills the budget
AIM = 0.99    # re-derivations aim this far under the budget (measurement noise)


@dataclass
class Round:
    round: int
    target_ms: float
    min_fill: float
    choices: list[str]
    estimate_ms: float
    sum_ms: float
    log_prob: float
    budget_ms: float
    measured_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.measured_ms is None else self.measured_ms / self.budget_ms

    @property
    def within(self) -> bool:
        return self.measured_ms is not None and self.measured_ms <= self.budget_ms

    def in_band(self, fill: float = FILL) -> bool:
        return self.within and self.ratio >= fill

    def to_dict(self, fill: float = FILL) -> dict:
        return {**asdict(self), "ratio": self.ratio, "within_budget": self.within,
                "in_band": self.in_band(fill)}


def _describe(r: Round, rounds: int) -> str:
    head = (f"round {r.round}/{rounds}: target {r.target_ms:.3f} ms, estimate "
            f"{r.estimate_ms:.3f} ms")
    if r.measured_ms is None:
        return head + ", not measured"
    verdict = "over" if not r.within else ("in band" if r.in_band() else "under")
    return (head + f", measured {r.measured_ms:.3f} ms = {r.ratio:.3f} x budget "
            f"{r.budget_ms:.3f} ms ({verdict})")


def next_target(r: Round, aim: float = AIM) -> float:
    """Target for the next derivation from what ``r`` measured (tightened or loosened)."""
    return aim * r.budget_ms * r.estimate_ms / r.measured_ms


def pick(rounds: Sequence[Round], fill: float = FILL) -> Round | None:
    """Most probable round in the band, else the fullest within budget, else None."""
    band = [r for r in rounds if r.in_band(fill)]
    if band:
        return max(band, key=lambda r: r.log_prob)
    within = [r for r in rounds if r.within]
    return max(within, key=lambda r: r.measured_ms) if within else None


def close_loop(derive_at: Callable[[float, float, list], dict],
               measure: Callable[[list[str]], float | None] | None, budget_ms: float, *,
               max_rounds: int = 4, min_fill: float = 0.9, fill: float = FILL,
               log: Callable[[str], None] = print) -> dict:
    """Run the loop; {"rounds": [Round], "answer": Round | None, "status": str}.

    ``status``: "in_band", "within" (under the budget, not filling it),
    "over" (nothing measured within budget) or "unmeasured" (``measure`` is
    None or could not measure the first network: the answer is the derivation).
    """
    if max_rounds < 1:
        raise UserError(f"--max-rounds must be at least 1, got {max_rounds}")
    rounds: list[Round] = []
    target, fill_k = budget_ms, min_fill
    for k in range(1, max_rounds + 1):
        try:
            d = derive_at(target, fill_k, [r.choices for r in rounds])
        except UserError as e:
            if k == 1:
                raise
            log(f"round {k}/{max_rounds}: nothing more to derive ({e}); stopping")
            break
        r = Round(k, target, fill_k, d["choices"], d["estimate_ms"], d["sum_ms"], d["log_prob"],
                  budget_ms)
        rounds.append(r)
        r.measured_ms = measure(r.choices) if measure is not None else None
        log(_describe(r, max_rounds))
        if r.measured_ms is None or r.in_band(fill):
            break
        target, fill_k = next_target(r), fill / AIM
        if k < max_rounds:
            log(f"  re-deriving against {target:.3f} ms "
                f"({'tightened' if not r.within else 'loosened'} by measured/estimate "
                f"{r.measured_ms / r.estimate_ms:.3f})")
    return {"rounds": rounds, "answer": _answer(rounds, fill), "status": _status(rounds, fill)}


def _answer(rounds: Sequence[Round], fill: float) -> Round | None:
    if rounds and all(r.measured_ms is None for r in rounds):
        return rounds[0]
    return pick([r for r in rounds if r.measured_ms is not None], fill)


def _status(rounds: Sequence[Round], fill: float) -> str:
    measured = [r for r in rounds if r.measured_ms is not None]
    if not measured:
        return "unmeasured"
    best = pick(measured, fill)
    if best is None:
        return "over"
    return "in_band" if best.in_band(fill) else "within"


def fastest_measured(rounds: Sequence[Round]) -> Round | None:
    """The round with the lowest measured latency (what --allow-over-budget keeps)."""
    measured = [r for r in rounds if r.measured_ms is not None]
    return min(measured, key=lambda r: r.measured_ms) if measured else None
