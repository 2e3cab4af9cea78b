"""Random search: distinct architectures drawn uniformly within the budget, each scored.

The compute budget ``problem.epochs`` buys ``epochs // trial_epochs`` trials
(each trained ``trial_epochs`` epochs from scratch by the ``train``
evaluator). Draws are rejection-sampled among the architectures the latency
model puts within the budget, inside the derivation's fill band first; a
space with fewer such architectures than trials has them all evaluated. The
best validation accuracy wins. This is the baseline every other strategy has
to beat at equal compute.
"""

from __future__ import annotations

from hwprof.search.multitrial import COMMON_OPTIONS, BudgetSampler, Trials, evaluate_all, trial_tools
from hwprof.search.strategy import SearchProblem, SearchResult, Strategy

TRIAL_OPTIONS = {
    "trial_epochs": "epochs of training per trial (default: 1); trials = epochs // trial_epochs",
    "trial_lr": "learning rate of a trial's training (default: 0.002)",
    "trial_bn": "score trials with 'batch' statistics in batch norm (default) or 'running' ones",
}


def trial_count(problem: SearchProblem) -> tuple[int, int]:
    """(trials, epochs per trial) that ``problem.epochs`` pays for."""
    from hwprof.errors import UserError
    per = problem.option("trial_epochs", 1)
    if per < 1:
        raise UserError(f"--strategy-option trial_epochs must be >= 1, got {per}")
    return max(1, problem.epochs // per), per


def train_tools(problem: SearchProblem, per: int):
    return trial_tools(problem, epochs=per, batch=problem.batch,
                       lr=problem.option("trial_lr", 2e-3), bn=problem.option("trial_bn", "batch"))


class RandomSearch(Strategy):
    name = "random"
    kind = "multi-trial"
    description = "random search: sample architectures within budget, score each"
    option_help = {**TRIAL_OPTIONS, **COMMON_OPTIONS}
    default_epochs = 8
    default_evaluator = "train"

    def search(self, problem: SearchProblem) -> SearchResult:
        n, per = trial_count(problem)
        archs = BudgetSampler(problem, problem.rng(1)).sample_many(n)
        evaluator, executor = train_tools(problem, per)
        problem.log(f"[random] {len(archs)} trial(s) of {per} epoch(s) on "
                    f"{executor.describe()}")
        trials = Trials(problem)
        with executor:
            evaluate_all(problem, trials, evaluator, executor, archs)
        best = trials.best()
        problem.log(f"[random] best of {len(archs)}: accuracy {best['accuracy']:.4f}, "
                    f"{best['estimate_ms']:.3f} ms")
        return SearchResult(probs=trials.probs(problem.option("top_k", 5)),
                            history=trials.history(), choices=best["choices"],
                            extras=trials.extras(trial_epochs=per, executor=executor.describe()))
