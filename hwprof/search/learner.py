"""What the one-shot learners share: architecture parameters, schedule, history, epoch loop.

A learner alternates a weight step on a train batch and an architecture step
on a validation batch. Subclasses implement ``weight_step`` and ``arch_step``
(which returns the cross-entropy and d ce / d alpha per layer); the base adds
the latency loss, updates the alphas with Adam and records the history the
plots and the report use. Architecture steps start after ``warmup`` epochs of
weight-only training. The softmax temperature is annealed geometrically from
``tau0`` to ``tau_end`` over the epochs.
"""

from __future__ import annotations

import time
from typing import Callable

import nnabla as nn
import nnabla.solvers as S
import numpy as np

from hwprof.search.latency_loss import LatencyLoss, softmax
from hwprof.search.supernet import SuperNet
from hwprof.search.train import NumpyAdam, batches


class WeightSolvers:
    """One Adam per candidate's weights, one for the shared stem and head.

    A path that is not in this step's graph must not move: a single solver
    over every weight would keep pushing inactive candidates with their stale
    momentum (zero gradient, non-zero Adam moments), which in a sampled
    supernet corrupts every candidate that sits out a step.
    """

    def __init__(self, net, lr: float):
        groups: dict = {}
        layers = {lay.name for lay in net.space.layers}
        for key, var in net.weights().items():
            parts = key.split("/")
            g = (parts[0], parts[1]) if parts[0] in layers else "shared"
            groups.setdefault(g, {})[key] = var
        self.solvers = {}
        for g, params in groups.items():
            sol = S.Adam(alpha=lr)
            sol.set_parameters(params)
            self.solvers[g] = sol
        self.layer_names = [lay.name for lay in net.space.layers]

    def zero_grad(self) -> None:
        for sol in self.solvers.values():
            sol.zero_grad()

    def update(self, choices=None) -> None:
        """Update the shared weights and those of ``choices`` (every candidate when None)."""
        if choices is None:
            for sol in self.solvers.values():
                sol.update()
            return
        self.solvers["shared"].update()
        for lay, name in zip(self.layer_names, choices):
            sol = self.solvers.get((lay, name))
            if sol is not None:   # skip has no weights
                sol.update()


class Learner:
    algo = ""

    def __init__(self, space, lut, loss: LatencyLoss, data, rng: np.random.RandomState,
                 batch: int = 64, w_lr: float = 2e-3, a_lr: float = 0.05, tau0: float = 1.0,
                 tau_end: float = 0.2, warmup: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.space, self.lut, self.loss, self.data, self.rng = space, lut, loss, data, rng
        self.batch = min(batch, len(data.y_train), len(data.y_val))
        self.tau0, self.tau_end, self.warmup = tau0, tau_end, warmup
        self.log = log or (lambda s: None)
        self.alphas = [np.zeros(len(n)) for n in lut.names]
        self.arch_opt = NumpyAdam(self.alphas, lr=a_lr)
        self.net = SuperNet(space, rng)
        self.build()
        self.w_solvers = WeightSolvers(self.net, w_lr)
        self.history: dict[str, list] = {"epoch": [], "tau": [], "probs": [], "expected_ms": [],
                                         "train_loss": [], "train_acc": [], "val_loss": [],
                                         "val_acc": []}
        self.latency_seconds = 0.0   # time spent in the latency term (E and its gradient)
        self.arch_seconds = 0.0      # whole architecture steps
        self.weight_seconds = 0.0    # whole weight steps
        self.arch_steps = 0

    # subclasses ----------------------------------------------------------- #
    def build(self) -> None:
        raise NotImplementedError

    def weight_step(self, xb, yb, tau: float) -> tuple[float, float]:
        raise NotImplementedError

    def arch_step(self, xb, yb, tau: float) -> tuple[float, float, list[np.ndarray]]:
        raise NotImplementedError

    def after_arch_update(self) -> None:
        pass

    def latency_logits(self) -> list[np.ndarray]:
        """The logits whose ``softmax(. / tau)`` weighs the latency term of this arch step
        (the alphas; FBNet adds the step's Gumbel noise). Its gradient is the alphas'."""
        return self.alphas

    # shared --------------------------------------------------------------- #
    def probs(self, tau: float = 1.0) -> list[np.ndarray]:
        return [softmax(a, tau) for a in self.alphas]

    def tau_at(self, epoch: int, epochs: int) -> float:
        if epochs <= 1:
            return self.tau0
        return self.tau0 * (self.tau_end / self.tau0) ** (epoch / (epochs - 1))

    def fit(self, epochs: int) -> dict[str, list]:
        d = self.data
        warmup = self.warmup if self.warmup is not None else epochs // 4
        budget = self.loss.budget_ms
        for ep in range(epochs):
            tau = self.tau_at(ep, epochs)
            tl, ta, vl, va = [], [], [], []
            val_iter = iter(())
            for b in batches(len(d.y_train), self.batch, self.rng):
                t0 = time.perf_counter()
                loss, acc = self.weight_step(d.x_train[b], d.y_train[b], tau)
                self.weight_seconds += time.perf_counter() - t0
                tl.append(loss)
                ta.append(acc)
                if ep < warmup:
                    continue
                vb = next(val_iter, None)
                if vb is None:
                    val_iter = batches(len(d.y_val), self.batch, self.rng)
                    vb = next(val_iter)
                t0 = time.perf_counter()
                ce, acc, ce_grads = self.arch_step(d.x_val[vb], d.y_val[vb], tau)
                t1 = time.perf_counter()
                total, _, grads = self.loss(self.latency_logits(), ce, ce_grads, tau)
                self.latency_seconds += time.perf_counter() - t1
                self.arch_opt.step(grads)
                self.after_arch_update()
                self.arch_seconds += time.perf_counter() - t0
                self.arch_steps += 1
                vl.append(total)
                va.append(acc)
            probs = self.probs(tau)
            e_ms = self.lut.fixed_ms + sum(float(p @ t) for p, t in zip(probs, self.lut.ms))
            h = self.history
            h["epoch"].append(ep + 1)
            h["tau"].append(tau)
            h["probs"].append([p.tolist() for p in probs])
            h["expected_ms"].append(e_ms)
            h["train_loss"].append(float(np.mean(tl)))
            h["train_acc"].append(float(np.mean(ta)))
            h["val_loss"].append(float(np.mean(vl)) if vl else None)
            h["val_acc"].append(float(np.mean(va)) if va else None)
            arch = "warm-up (weights only)" if not vl else \
                f"arch loss {np.mean(vl):.3f}  val acc {np.mean(va):.3f}"
            self.log(f"[{self.algo}] epoch {ep + 1}/{epochs}  tau {tau:.2f}  train loss "
                     f"{np.mean(tl):.3f}  train acc {np.mean(ta):.3f}  {arch}  "
                     f"E[latency] {e_ms:.3f} ms / budget {budget:.3f} ms")
        return self.history

    @staticmethod
    def _io(shape):
        x = nn.Variable(shape)
        t = nn.Variable((shape[0], 1))
        return x, t
