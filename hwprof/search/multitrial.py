"""What the multi-trial strategies share: sampling within budget, mutation, trial records.

- :class:`BudgetSampler` draws architectures uniformly among those that
  ``problem.within_budget`` accepts (rejection sampling with a cap), first
  inside the fill band ``[min_fill * budget, budget]`` (the band the
  derivation prefers), then anywhere within budget; a budget that admits none
  of the draws is a one-line error.
- :func:`mutate`: one layer changed to another of its candidates, kept within
  budget.
- :class:`Trials`: every evaluated architecture with its score, in the order
  evaluated; the ranking, the history for the report, and the per-layer
  preference distribution handed to the shared derivation (rank-weighted
  frequencies over the best trials: the best trial is the most preferred
  network, the runners-up shape the rest for when the closed loop tightens
  the target).
- :func:`trial_tools`: the evaluator and executor a problem asks for.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwprof.errors import UserError

COMMON_OPTIONS = {
    "workers": "local executor: worker processes (default: one per CPU)",
    "min_fill": "sample inside [min_fill x budget, budget] first (default: the runner's --min-fill)",
    "top_k": "trials whose choices shape the per-layer preferences handed to derivation "
             "(default: 5)",
}


def min_fill(problem) -> float:
    return float(problem.option("min_fill", float(getattr(problem, "min_fill", 0.0) or 0.0)))


class BudgetSampler:
    """Uniform architectures within the budget (band first), by rejection with ``tries`` draws.

    ``fill``: the band's lower edge as a fraction of the budget (default: :func:`min_fill`;
    0 samples uniformly within the whole budget).
    """

    def __init__(self, problem, rng: np.random.RandomState, tries: int = 2000,
                 fill: float | None = None):
        self.problem, self.rng, self.tries = problem, rng, int(tries)
        self.fill = min_fill(problem) if fill is None else float(fill)
        self._band_empty = self.fill <= 0

    def _draw(self) -> list[str]:
        return [names[self.rng.randint(len(names))] for names in self.problem.lut.names]

    def in_band(self, choices: Sequence[str]) -> bool:
        p = self.problem
        return p.within_budget(choices) and p.estimate(list(choices)) >= self.fill * p.budget_ms

    def sample(self, exclude: set | frozenset = frozenset()) -> list[str] | None:
        """A new architecture (not in ``exclude``), or None when ``tries`` draws found none."""
        if not self._band_empty:
            got = self._rejection(self.in_band, exclude)
            if got is not None:
                return got
            self._band_empty = True   # no new one in the band: later draws take the whole budget
        return self._rejection(self.problem.within_budget, exclude)

    def _rejection(self, accept, exclude) -> list[str] | None:
        for _ in range(self.tries):
            c = self._draw()
            if tuple(c) not in exclude and accept(c):
                return c
        return None

    def sample_many(self, n: int, exclude: set | None = None) -> list[list[str]]:
        """Up to ``n`` distinct new architectures (fewer when the budget admits fewer)."""
        seen = set(exclude or ())
        out = []
        for _ in range(n):
            c = self.sample(seen)
            if c is None:
                break
            seen.add(tuple(c))
            out.append(c)
        if not out and not seen:
            raise no_architecture_error(self.problem, self.tries)
        return out


def no_architecture_error(problem, tries: int) -> UserError:
    lo, hi = problem.lut.range_ms()
    return UserError(f"none of {tries} random architectures of {problem.space.name} is within the "
                     f"budget {problem.budget_ms:.4g} ms and the other limits (additive range "
                     f"{lo:.4g}..{hi:.4g} ms); raise the budget or use a one-shot strategy, "
                     f"whose derivation finds the few that fit")


def mutate(problem, choices: Sequence[str], rng: np.random.RandomState,
           tries: int = 50) -> list[str] | None:
    """``choices`` with one layer's candidate replaced, within budget; None if ``tries`` fail."""
    names = problem.lut.names
    movable = [li for li, n in enumerate(names) if len(n) > 1]
    if not movable:
        return None
    for _ in range(tries):
        li = movable[rng.randint(len(movable))]
        others = [c for c in names[li] if c != choices[li]]
        child = list(choices)
        child[li] = others[rng.randint(len(others))]
        if problem.within_budget(child):
            return child
    return None


class Trials:
    """Evaluated architectures: choices, score (validation accuracy), estimate, cost."""

    def __init__(self, problem):
        self.problem = problem
        self.records: list[dict] = []
        self.scores: dict[tuple, float] = {}

    def add(self, result: dict, **extra) -> dict:
        ch = list(result["choices"])
        rec = {"trial": len(self.records) + 1, "choices": ch, "accuracy": float(result["accuracy"]),
               "estimate_ms": float(self.problem.estimate(ch)),
               "seconds": float(result.get("seconds", 0.0)), **extra}
        self.records.append(rec)
        self.scores[tuple(ch)] = rec["accuracy"]
        return rec

    def ranked(self) -> list[dict]:
        """Best first; ties by earlier trial (stable)."""
        return sorted(self.records, key=lambda r: (-r["accuracy"], r["trial"]))

    def best(self) -> dict:
        return self.ranked()[0]

    def probs(self, top_k: int = 5, eps: float = 0.05) -> list[np.ndarray]:
        """Per layer: ``eps`` spread evenly plus rank-weighted frequencies over the best ``top_k``
        distinct trials (weight 2^-rank, so the best trial's candidate leads every layer)."""
        names = self.problem.lut.names
        seen, top = set(), []
        for r in self.ranked():
            if tuple(r["choices"]) not in seen:
                seen.add(tuple(r["choices"]))
                top.append(r["choices"])
            if len(top) >= max(1, top_k):
                break
        out = []
        for li, layer in enumerate(names):
            w = np.zeros(len(layer))
            for rank, ch in enumerate(top):
                w[layer.index(ch[li])] += 0.5 ** rank
            out.append(eps / len(layer) + (1 - eps) * w / w.sum())
        return out

    def history(self) -> dict:
        """Series per trial for the report: accuracy, best so far, estimate."""
        acc = [r["accuracy"] for r in self.records]
        return {"trial": [r["trial"] for r in self.records], "accuracy": acc,
                "best_accuracy": [float(a) for a in np.maximum.accumulate(acc)] if acc else [],
                "latency_ms": [r["estimate_ms"] for r in self.records],
                "choices": [r["choices"] for r in self.records]}

    def extras(self, **more) -> dict:
        b = self.best()
        return {"trials": len(self.records), "best_trial": b,
                "trial_seconds": float(sum(r["seconds"] for r in self.records)), **more}


def trial_tools(problem, evaluator: str | None = None, **evaluator_kwargs):
    """(evaluator, executor) for ``problem``: ``evaluator`` overrides ``problem.evaluator``
    (default ``train``); the executor is ``problem.executor`` with the ``workers`` option."""
    from hwprof.search.evaluators import get_evaluator
    from hwprof.search.executors import make_executor
    name = evaluator or problem.evaluator or "train"
    cls = get_evaluator(name)
    ev = cls(problem.space, problem.data, seed=problem.seed, **evaluator_kwargs)
    workers = getattr(problem, "workers", None)
    if workers is None and "workers" in problem.options:
        workers = problem.option("workers", 1)
    return ev, make_executor(problem.executor, workers)


def evaluate_all(problem, trials: Trials, evaluator, executor, archs: Sequence[Sequence[str]],
                 what: str = "trial", **extra) -> list[dict]:
    """Score ``archs`` through ``executor`` (in order), record them in ``trials``, log each."""
    from tqdm import tqdm
    out = []
    results = executor.imap(evaluator, [list(a) for a in archs])
    for res in tqdm(results, total=len(archs), desc=what, unit=what, leave=False,
                    disable=len(archs) < 2):
        rec = trials.add(res, **extra)
        out.append(rec)
        problem.log(f"  {what} {rec['trial']}: accuracy {rec['accuracy']:.4f}  "
                    f"{rec['estimate_ms']:.3f} ms / {problem.budget_ms:.3f} ms  "
                    f"{' '.join(rec['choices'])}")
    return out
