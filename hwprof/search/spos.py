"""SPOS, single path one-shot (Guo et al., 2020): a supernet trained one uniform path at a
time, then an evolutionary search over it with weight-sharing accuracy.

1. Supernet training, ``problem.epochs`` epochs: each training batch goes
   through one path drawn uniformly among the architectures within the budget
   (so the weights are trained for the networks the search may return) and
   only that path's weights (and the shared stem and head) are updated.
2. Search: a first population drawn within the budget (fill band first), then
   ``generations`` rounds that make ``population`` new architectures from the
   ``parents`` best found so far, half by mutating one layer, half by
   crossing two parents layer by layer, all kept within budget. Each is scored
   by the ``supernet`` evaluator (validation accuracy of its path with the
   trained weights; nothing is trained), through the executor.

Compute: the training epochs are all spent on the supernet (one path per
batch costs what one child costs, so an epoch here equals a trial epoch of
random search); the search only runs forward passes.
"""

from __future__ import annotations

import time

import numpy as np

from hwprof.search.multitrial import COMMON_OPTIONS, BudgetSampler, Trials, evaluate_all, mutate
from hwprof.search.strategy import SearchProblem, SearchResult, Strategy

SPOS_OPTIONS = {
    "population": "architectures per search round (default: 16)",
    "generations": "search rounds after the first population (default: 6)",
    "parents": "best architectures that breed the next round (default: 8)",
    "images": "validation images each weight-sharing score uses (default: all)",
    "lr": "learning rate of the supernet's weights (default: 0.002)",
}


class SPOS(Strategy):
    name = "spos"
    kind = "multi-trial"
    description = "SPOS: uniform single-path supernet training, then evolution on it"
    option_help = {**SPOS_OPTIONS, **COMMON_OPTIONS}
    default_epochs = 8
    default_evaluator = "supernet"

    def search(self, problem: SearchProblem) -> SearchResult:
        from hwprof.errors import UserError
        if problem.evaluator not in (None, "supernet"):
            raise UserError(f"spos scores architectures with its trained supernet (--evaluator "
                            f"supernet); --evaluator {problem.evaluator} is for random and "
                            f"evolution")
        t0 = time.perf_counter()
        weights, history = train_supernet(problem)
        train_s = time.perf_counter() - t0
        trials, rounds, desc = self._evolve(problem, weights)
        best = trials.best()
        problem.log(f"[spos] best of {len(trials.records)}: weight-sharing accuracy "
                    f"{best['accuracy']:.4f}, {best['estimate_ms']:.3f} ms")
        history.update(trials.history())
        return SearchResult(probs=trials.probs(problem.option("top_k", 5)), history=history,
                            choices=best["choices"],
                            extras=trials.extras(supernet_seconds=train_s, generations=rounds,
                                                 search_seconds=time.perf_counter() - t0 - train_s,
                                                 executor=desc))

    def _evolve(self, problem: SearchProblem, weights: dict):
        from hwprof.search.multitrial import trial_tools
        size = max(2, problem.option("population", 16))
        rounds = max(0, problem.option("generations", 6))
        parents = max(2, problem.option("parents", 8))
        images = problem.option("images", 0) or None
        rng = problem.rng(4)
        sampler = BudgetSampler(problem, problem.rng(5))
        evaluator, executor = trial_tools(problem, "supernet", weights=weights, images=images)
        trials = Trials(problem)
        problem.log(f"[spos] evolution over the supernet: population {size}, {rounds} "
                    f"round(s), {parents} parents, on {executor.describe()}")
        with executor:
            evaluate_all(problem, trials, evaluator, executor, sampler.sample_many(size),
                         what="path", generation=0)
            for g in range(1, rounds + 1):
                top = [r["choices"] for r in trials.ranked()[:parents]]
                kids = breed(problem, top, set(trials.scores), size, rng, sampler)
                if not kids:
                    problem.log("[spos] no new architecture within budget: stopping early")
                    break
                evaluate_all(problem, trials, evaluator, executor, kids, what="path",
                             generation=g)
        return trials, rounds, executor.describe()


def breed(problem, top: list, seen: set, n: int, rng: np.random.RandomState,
          sampler: BudgetSampler) -> list[list[str]]:
    """``n`` new architectures within budget: half mutations of, half crossovers between
    ``top``'s members (random draws when those keep repeating evaluated ones)."""
    seen = set(seen)
    out: list[list[str]] = []
    for i in range(n):
        child = None
        for _ in range(20):
            if i % 2 == 0 or len(top) < 2:
                child = mutate(problem, top[rng.randint(len(top))], rng)
            else:
                a, b = rng.choice(len(top), 2, replace=False)
                mask = rng.rand(len(top[a])) < 0.5
                child = [x if m else y for x, y, m in zip(top[a], top[b], mask)]
                child = child if problem.within_budget(child) else None
            if child is not None and tuple(child) not in seen:
                break
            child = None
        child = child or sampler.sample(seen)
        if child is None:
            break
        seen.add(tuple(child))
        out.append(child)
    return out


def train_supernet(problem: SearchProblem) -> tuple[dict, dict]:
    """Train the single-path supernet; (its weights as numpy arrays, per-epoch history)."""
    import nnabla as nn
    from tqdm import tqdm

    from hwprof.search.learner import WeightSolvers
    from hwprof.search.supernet import SuperNet
    from hwprof.search.train import accuracy, batches, cross_entropy
    nn.clear_parameters()
    nn.seed(problem.seed)
    rng = problem.rng(3)
    data, space = problem.data, problem.space
    net = SuperNet(space, rng, scope="spos")
    bs = min(problem.batch, len(data.y_train))
    x, t = nn.Variable((bs,) + tuple(data.x_train.shape[1:])), nn.Variable((bs, 1))
    # every candidate's weights, created once (a graph only: nothing is computed)
    net.mixed(nn.Variable(x.shape), [nn.Variable((len(lay.candidates),)) for lay in space.layers],
              train=True)
    solvers = WeightSolvers(net, problem.option("lr", 2e-3))
    paths = BudgetSampler(problem, problem.rng(6), fill=0.0)   # uniform within the whole budget
    hist: dict = {"epoch": [], "train_loss": [], "train_acc": []}
    for ep in range(problem.epochs):
        losses, accs = [], []
        steps = batches(len(data.y_train), bs, rng)
        for b in tqdm(steps, total=len(data.y_train) // bs, desc=f"spos epoch {ep + 1}",
                      leave=False, unit="batch"):
            path = paths.sample() or paths.sample_many(1)[0]
            logits = net.child(x, path, train=True)
            logits.persistent = True
            loss = cross_entropy(logits, t)
            x.d, t.d = data.x_train[b], data.y_train[b, None]
            loss.forward(clear_no_need_grad=True)
            solvers.zero_grad()
            loss.backward(clear_buffer=True)
            solvers.update(path)
            losses.append(float(loss.d))
            accs.append(accuracy(logits.d, data.y_train[b]))
        hist["epoch"].append(ep + 1)
        hist["train_loss"].append(float(np.mean(losses)))
        hist["train_acc"].append(float(np.mean(accs)))
        problem.log(f"[spos] supernet epoch {ep + 1}/{problem.epochs}: loss "
                    f"{hist['train_loss'][-1]:.3f}  train acc {hist['train_acc'][-1]:.3f} "
                    f"(one uniform path within budget per batch)")
    weights = {k: v.d.copy() for k, v in net.weights().items()}
    nn.clear_parameters()
    return weights, hist
