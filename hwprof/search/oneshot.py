"""One-shot strategies: a supernet with architecture weights, trained by gradient.

:class:`OneShotStrategy` runs a :class:`~hwprof.search.learner.Learner`
subclass on a :class:`~hwprof.search.strategy.SearchProblem` and reports what
the report needs (per-epoch history, the cost of the latency term) through the
:class:`~hwprof.search.strategy.SearchResult`. Subclasses name their learner
and their defaults; DARTS, ProxylessNAS and FBNet are a few lines each.
"""

from __future__ import annotations

import inspect

import numpy as np

from hwprof.search.strategy import SearchProblem, SearchResult, Strategy, convert_option

LEARNER_OPTIONS = {
    "w_lr": "Adam learning rate of the weights",
    "a_lr": "Adam learning rate of the architecture parameters",
    "tau0": "softmax temperature of the first epoch",
    "tau_end": "softmax temperature of the last epoch (annealed geometrically)",
    "warmup": "epochs of weight-only training before architecture steps (default epochs // 4)",
}


class OneShotStrategy(Strategy):
    """A gradient-trained supernet; ``learner_class`` does the work."""

    kind = "one-shot"
    learner_class = None           # a Learner subclass (imported lazily by subclasses)
    learner_defaults: dict = {}    # options the learner gets unless the user gives them
    option_help = LEARNER_OPTIONS

    def learner_options(self, options: dict) -> dict:
        """Learner keyword arguments: the strategy's defaults, then ``--strategy-option``
        values (converted to the type of the learner's default)."""
        sig = inspect.signature(self.learner_class.__init__).parameters
        opts = dict(self.learner_defaults)
        for key in self.option_help:
            if key in options:
                default = opts.get(key, sig[key].default if key in sig else None)
                opts[key] = convert_option(key, options[key], 0 if key == "warmup" else default)
        return opts

    def validate_options(self, options: dict) -> None:
        self.learner_options(options)

    def make_learner(self, problem: SearchProblem):
        import nnabla as nn
        nn.clear_parameters()
        nn.seed(problem.seed)
        rng = np.random.RandomState(problem.seed)
        return self.learner_class(problem.space, problem.lut, problem.loss, problem.data, rng,
                                  batch=problem.batch, log=problem.log,
                                  **self.learner_options(problem.options))

    def search(self, problem: SearchProblem) -> SearchResult:
        if problem.evaluator is not None or problem.executor not in (None, "local"):
            problem.log(f"note: {self.name} trains one supernet in this process; --evaluator and "
                        f"--executor apply to multi-trial strategies and are ignored")
        learner = self.make_learner(problem)
        history = learner.fit(problem.epochs)
        probs = learner.probs(history["tau"][-1])
        return SearchResult(probs=probs, history=history, extras=cost_report(learner))


def cost_report(learner) -> dict:
    """What the search's steps cost, and the latency term's share of it."""
    steps = learner.weight_seconds + learner.arch_seconds
    h = learner.history
    return {"batch": learner.batch, "arch_steps": learner.arch_steps,
            "expected_ms_final": h["expected_ms"][-1] if h["expected_ms"] else None,
            "latency_term_seconds": learner.latency_seconds, "step_seconds": steps,
            "latency_term_share": learner.latency_seconds / steps if steps else None}
