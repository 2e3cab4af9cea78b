"""An example hwprof search strategy: the most parameters that fit the latency budget.

No training: start from each layer's fastest candidate, then repeatedly take the
upgrade (one layer, one candidate) that adds the most parameters per added
millisecond, as long as the whole network stays within the budget (and the
other limits). A zero-cost baseline for the trained strategies.
"""

import numpy as np

from hwprof.search.strategy import SearchResult, Strategy, one_hot


class GreedyParams(Strategy):
    name = "greedy-params"
    kind = "one-shot"
    description = "greedy, no training: the most parameters per ms that fit the budget"
    option_help = {}      # reads no --strategy-option
    default_epochs = 1    # trains nothing; the runner still retrains the answer

    def search(self, problem):
        ms, params = problem.lut.ms, problem.limits.params
        idx = [int(np.argmin(t)) for t in ms]
        steps = 0
        while True:
            best = None
            for li, (t, p) in enumerate(zip(ms, params)):
                for k in range(len(t)):
                    gain, cost = p[k] - p[idx[li]], t[k] - t[idx[li]]
                    if gain <= 0:
                        continue
                    trial = idx[:li] + [k] + idx[li + 1:]
                    score = gain / max(cost, 1e-9)
                    if (best is None or score > best[0]) and \
                            problem.within_budget(problem.choices_of(trial)):
                        best = (score, trial)
            if best is None:
                break
            idx, steps = best[1], steps + 1
        choices = problem.choices_of(idx)
        problem.log(f"[greedy-params] {steps} upgrade(s): {' '.join(choices)}")
        return SearchResult(probs=[one_hot(i, len(t)) for i, t in zip(idx, ms)],
                            choices=choices, history={}, extras={"greedy_steps": steps})
