"""FBNet: Gumbel-softmax sampling of each layer's candidate, annealed temperature.

Every step draws Gumbel noise ``g_lk = -log(-log u_lk)`` per layer and
candidate; the layer's output is the mix ``sum_k m_lk o_k`` with the relaxed
one-hot ``m_l = softmax((alpha_l + g_l) / tau)``, so the network trained is a
soft sample of one architecture, sharpening towards a hard one as ``tau``
anneals (from ``tau0`` = 5 by default, as in the FBNet paper). Weight steps
(train batches) update the weights; architecture steps (validation batches)
take d ce / d alpha through the same relaxed sample, and the latency term is
the latency expected under the same Gumbel weights,
``fixed + sum_l sum_k m_lk T_lk``, with its exact gradient (the shared loss
evaluated at ``alpha + g``: ``g`` is a constant of the step).
"""

from __future__ import annotations

import nnabla as nn
import nnabla.functions as F
import numpy as np

from hwprof.search.darts import Darts
from hwprof.search.oneshot import OneShotStrategy
from hwprof.search.train import cross_entropy


class FBNet(Darts):
    algo = "fbnet"

    def build(self) -> None:
        shape = (self.batch,) + tuple(self.data.x_train.shape[1:])
        self.x, self.t = self._io(shape)
        self.inv_tau = nn.Variable((1,))
        self.alpha_vars = [nn.Variable((len(a),), need_grad=True) for a in self.alphas]
        self.noise_vars = [nn.Variable((len(a),)) for a in self.alphas]
        self.mix = [F.softmax((a + g) * self.inv_tau, axis=0)
                    for a, g in zip(self.alpha_vars, self.noise_vars)]
        for m in self.mix:
            m.persistent = True   # the step's relaxed one-hot stays readable
        self.logits = self.net.mixed(self.x, self.mix, train=True)
        self.logits.persistent = True
        self.ce = cross_entropy(self.logits, self.t)
        self.noise = [np.zeros(len(a)) for a in self.alphas]

    def sample_noise(self) -> None:
        """Draw this step's Gumbel noise, one value per layer and candidate."""
        tiny = np.finfo(np.float64).tiny
        self.noise = [-np.log(-np.log(np.clip(self.rng.uniform(size=len(a)), tiny, 1.0)))
                      for a in self.alphas]

    def _forward(self, xb, yb, tau):
        self.sample_noise()
        for v, g in zip(self.noise_vars, self.noise):
            v.d = g
        return super()._forward(xb, yb, tau)

    def latency_logits(self) -> list[np.ndarray]:
        return [a + g for a, g in zip(self.alphas, self.noise)]


class FBNetStrategy(OneShotStrategy):
    name = "fbnet"
    description = ("FBNet: Gumbel-softmax relaxed sample of each layer's candidate, annealed "
                   "temperature; latency expected under the sampled weights")
    learner_class = FBNet
    learner_defaults = {"tau0": 5.0, "tau_end": 0.5}
    default_epochs = 5   # each step computes every candidate, as DARTS
