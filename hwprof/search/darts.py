"""DARTS, first order: softmax relaxation over every candidate of every layer.

One static graph holds the whole supernet; the architecture parameters enter
it as (K,) variables through ``softmax(alpha * (1/tau))``. Weight steps
(train batches) update the weights; architecture steps (validation batches)
read d ce / d alpha from the same graph and hand them to the shared loss.
"""

from __future__ import annotations

import nnabla as nn
import nnabla.functions as F
import numpy as np

from hwprof.search.learner import Learner
from hwprof.search.oneshot import OneShotStrategy
from hwprof.search.train import accuracy, cross_entropy


class Darts(Learner):
    algo = "darts"

    def build(self) -> None:
        shape = (self.batch,) + tuple(self.data.x_train.shape[1:])
        self.x, self.t = self._io(shape)
        self.inv_tau = nn.Variable((1,))
        self.alpha_vars = [nn.Variable((len(a),), need_grad=True) for a in self.alphas]
        probs = [F.softmax(a * self.inv_tau, axis=0) for a in self.alpha_vars]
        self.logits = self.net.mixed(self.x, probs, train=True)
        self.logits.persistent = True
        self.ce = cross_entropy(self.logits, self.t)

    def _forward(self, xb, yb, tau):
        for v, a in zip(self.alpha_vars, self.alphas):
            v.d = a
        self.inv_tau.d = 1.0 / tau
        self.x.d, self.t.d = xb, yb[:, None]
        self.ce.forward(clear_no_need_grad=True)
        return float(self.ce.d), accuracy(self.logits.d, yb)

    def weight_step(self, xb, yb, tau):
        loss, acc = self._forward(xb, yb, tau)
        self.w_solvers.zero_grad()
        self.ce.backward(clear_buffer=True)
        self.w_solvers.update()
        return loss, acc

    def arch_step(self, xb, yb, tau):
        ce, acc = self._forward(xb, yb, tau)
        for v in self.alpha_vars:
            v.grad.zero()
        self.ce.backward(clear_buffer=True)
        return ce, acc, [np.array(v.g, dtype=np.float64) for v in self.alpha_vars]


class DartsStrategy(OneShotStrategy):
    name = "darts"
    description = "DARTS (first order): a softmax-weighted mix of every candidate in each layer"
    learner_class = Darts
    default_epochs = 5   # each epoch trains every candidate
