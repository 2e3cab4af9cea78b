"""Regularized (aging) evolution (Real et al., 2019) of architectures within the budget.

A population of ``population`` architectures, drawn like random search's, is
scored; then, ``step`` children at a time: pick ``sample`` members at random,
take the most accurate of them as the parent, change one of its layers to
another candidate (within budget, not evaluated before), score the children,
and let each one push the oldest member out of the population. Age, not
accuracy, decides who leaves, which keeps a lucky score from ruling forever.

Compute: like random search, ``epochs // trial_epochs`` trials in all,
counting the first population. ``step`` fixes how many children are made
from one state of the population, so the answer depends on it but not on the
executor or the number of workers; set it to the number of workers you have.
"""

from __future__ import annotations

from collections import deque

from hwprof.search.multitrial import COMMON_OPTIONS, BudgetSampler, Trials, evaluate_all, mutate
from hwprof.search.random_search import TRIAL_OPTIONS, train_tools, trial_count
from hwprof.search.strategy import SearchProblem, SearchResult, Strategy

EVOLUTION_OPTIONS = {
    "population": "architectures in the population (default: 8)",
    "sample": "tournament size: members compared to pick a parent (default: 3)",
    "step": "children made and scored together from one population (default: 2)",
}


class RegularizedEvolution(Strategy):
    name = "evolution"
    kind = "multi-trial"
    description = "regularized (aging) evolution of architectures within budget"
    option_help = {**EVOLUTION_OPTIONS, **TRIAL_OPTIONS, **COMMON_OPTIONS}
    default_epochs = 8
    default_evaluator = "train"

    def search(self, problem: SearchProblem) -> SearchResult:
        n, per = trial_count(problem)
        size = max(2, problem.option("population", 8))
        sample = max(1, problem.option("sample", 3))
        step = max(1, problem.option("step", 2))
        rng = problem.rng(2)
        sampler = BudgetSampler(problem, problem.rng(1))
        evaluator, executor = train_tools(problem, per)
        trials = Trials(problem)
        first = sampler.sample_many(min(size, n))
        problem.log(f"[evolution] population {len(first)}, tournament {sample}, {n} trial(s) "
                    f"of {per} epoch(s) on {executor.describe()}")
        with executor:
            population = deque(evaluate_all(problem, trials, evaluator, executor, first,
                                            generation=0))
            generation = 0
            while len(trials.records) < n:
                generation += 1
                children = self._children(problem, population, trials, sampler, rng, sample,
                                          min(step, n - len(trials.records)))
                if not children:
                    problem.log("[evolution] no new architecture within budget: stopping early")
                    break
                for rec in evaluate_all(problem, trials, evaluator, executor, children,
                                        generation=generation):
                    population.append(rec)
                    if len(population) > size:
                        population.popleft()   # the oldest leaves
        best = trials.best()
        problem.log(f"[evolution] best of {len(trials.records)}: accuracy {best['accuracy']:.4f}, "
                    f"{best['estimate_ms']:.3f} ms")
        return SearchResult(probs=trials.probs(problem.option("top_k", 5)),
                            history=trials.history(), choices=best["choices"],
                            extras=trials.extras(trial_epochs=per, generations=generation,
                                                 executor=executor.describe()))

    @staticmethod
    def _children(problem, population, trials, sampler, rng, sample, k) -> list[list[str]]:
        """``k`` new architectures: mutated tournament winners (random draws when mutation
        keeps finding evaluated ones)."""
        members = list(population)
        seen = set(trials.scores)
        out = []
        for _ in range(k):
            child = None
            for _ in range(20):
                pick = rng.choice(len(members), min(sample, len(members)), replace=False)
                parent = max((members[i] for i in pick), key=lambda r: (r["accuracy"], -r["trial"]))
                child = mutate(problem, parent["choices"], rng)
                if child is not None and tuple(child) not in seen:
                    break
                child = None
            if child is None:
                child = sampler.sample(seen)
            if child is None:
                break
            seen.add(tuple(child))
            out.append(child)
        return out
