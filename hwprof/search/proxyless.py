"""ProxylessNAS: binary gates, two-path sampling, only sampled paths in the graph.

Weight step: one candidate per layer is sampled from ``p = softmax(alpha/tau)``
and only that child network is built and trained. Architecture step: two
distinct candidates per layer are sampled from ``p``; a binary gate picks one
of them (drawn from the pair's renormalised probabilities ``q``) and the layer
output is ``g_a o_a + g_b o_b``. Both paths are computed so that the gradient
of the loss with respect to each gate exists; the paper's estimator turns the
gate gradients into architecture gradients,

    d L / d alpha_i = sum_j (d L / d g_j) q_j (delta_ij - q_i) / tau,   i, j in the pair,

and the other candidates of the layer get no cross-entropy gradient. After
the update the pair's parameters are shifted so that the total probability
of the unsampled candidates is unchanged (the paper's rescaling). The
latency term, a function of every alpha, is added by the shared loss.
"""

from __future__ import annotations

import nnabla as nn
import numpy as np

from hwprof.search.latency_loss import softmax
from hwprof.search.learner import Learner
from hwprof.search.oneshot import OneShotStrategy
from hwprof.search.train import accuracy, cross_entropy


class ProxylessNAS(Learner):
    algo = "proxyless"

    def build(self) -> None:
        shape = (self.batch,) + tuple(self.data.x_train.shape[1:])
        self.x, self.t = self._io(shape)
        # create every candidate's parameters once (graph only, nothing is computed)
        probs = [nn.Variable((len(a),)) for a in self.alphas]
        self.net.mixed(nn.Variable(shape), probs, train=True)
        self._pairs: list[tuple[int, ...]] = []

    def _run(self, logits, xb, yb):
        logits.persistent = True
        ce = cross_entropy(logits, self.t)
        self.x.d, self.t.d = xb, yb[:, None]
        ce.forward(clear_no_need_grad=True)
        return ce, float(ce.d), accuracy(logits.d, yb)

    def weight_step(self, xb, yb, tau):
        names = self.lut.names
        choices = [names[li][self.rng.choice(len(a), p=softmax(a, tau))]
                   for li, a in enumerate(self.alphas)]
        ce, loss, acc = self._run(self.net.child(self.x, choices, train=True), xb, yb)
        self.w_solvers.zero_grad()
        ce.backward(clear_buffer=True)
        self.w_solvers.update(choices)
        return loss, acc

    def arch_step(self, xb, yb, tau):
        pairs, gates, qs, active = [], [], [], []
        for a in self.alphas:
            if len(a) == 1:
                pairs.append((0,))
                gates.append(None)
                qs.append(None)
                active.append(0)
                continue
            pair = tuple(int(i) for i in self.rng.choice(len(a), 2, replace=False, p=softmax(a, tau)))
            q = softmax(a[list(pair)], tau)
            on = int(self.rng.choice(2, p=q))
            g = nn.Variable((2,), need_grad=True)
            g.d = np.eye(2)[on]
            g.grad.zero()
            pairs.append(pair)
            gates.append(g)
            qs.append(q)
            active.append(on)
        ce, loss, acc = self._run(self.net.gated(self.x, pairs, gates, train=True), xb, yb)
        ce.backward(clear_buffer=True)
        grads = []
        for a, pair, g, q in zip(self.alphas, pairs, gates, qs):
            grad = np.zeros_like(a)
            if g is not None:
                dg = np.array(g.g, dtype=np.float64)
                for m in range(2):
                    grad[pair[m]] = sum(dg[j] * q[j] * ((m == j) - q[m]) for j in range(2)) / tau
            grads.append(grad)
        self._pairs, self._active = pairs, active
        self._gate_grads = [None if g is None else np.array(g.g, dtype=np.float64) for g in gates]
        self._before = [a[list(p)].copy() for a, p in zip(self.alphas, pairs)]
        return loss, acc, grads

    def after_arch_update(self) -> None:
        for a, pair, old in zip(self.alphas, self._pairs, self._before):
            if len(pair) == 2:
                new = a[list(pair)]
                a[list(pair)] += np.logaddexp(*old) - np.logaddexp(*new)


class ProxylessStrategy(OneShotStrategy):
    name = "proxyless"
    description = ("ProxylessNAS: binary gates; two sampled paths per layer and step, only they "
                   "are computed")
    learner_class = ProxylessNAS
    default_epochs = 12
