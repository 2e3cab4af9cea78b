"""The nnabla supernet over a space's candidates, and the child network of one architecture.

Every candidate of every layer has its own weights, named
``<scope>/<layer>/<candidate>/...``; the stem and head are shared. Three ways
to route a layer:

- ``mixed``: the DARTS relaxation, ``sum_k p_k * o_k`` over every candidate;
- ``one``: a single candidate (ProxylessNAS weight steps, the child network);
- ``gated``: ProxylessNAS's two sampled paths times a binary gate variable
  whose gradient drives the architecture update; only those two paths exist
  in the graph.

All weight initialisers draw from the one ``numpy.random.RandomState`` given
to the supernet, so layers do not repeat each other's draws.
"""

from __future__ import annotations

from typing import Callable, Sequence

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np

from hwprof.latency.spaces import SKIP, Space
from hwprof.latency.specs import mbconv_mid_channels


def _conv_bn(x, cout: int, k: int, stride: int, train: bool, rng, act: bool = True,
             depthwise: bool = False):
    pad = (k // 2, k // 2)
    if depthwise:
        h = PF.depthwise_convolution(x, (k, k), pad=pad, stride=(stride, stride), with_bias=False,
                                     rng=rng)
    else:
        h = PF.convolution(x, cout, (k, k), pad=pad, stride=(stride, stride), with_bias=False,
                           rng=rng)
    h = PF.batch_normalization(h, batch_stat=train)
    return F.relu6(h) if act else h


def mbconv(x, cout: int, expand: float, kernel: int, stride: int, train: bool, rng):
    """MobileNetV2 inverted residual, the same layers as the ``mbconv`` op spec."""
    cin = x.shape[1]
    h = x
    if expand != 1:
        with nn.parameter_scope("expand"):
            h = _conv_bn(h, mbconv_mid_channels(cin, expand), 1, 1, train, rng)
    with nn.parameter_scope("dw"):
        h = _conv_bn(h, h.shape[1], kernel, stride, train, rng, depthwise=True)
    with nn.parameter_scope("project"):
        h = _conv_bn(h, cout, 1, 1, train, rng, act=False)
    if stride == 1 and cin == cout:
        h = h + x
    return h


class SuperNet:
    def __init__(self, space: Space, rng: np.random.RandomState, scope: str = "supernet"):
        self.space, self.rng, self.scope = space, rng, scope
        self._cands = {c["name"]: c for c in space.data["candidates"]}

    # -- fixed parts ------------------------------------------------------- #
    def stem(self, x, train: bool):
        d = self.space.data
        st = d["stem"]
        with nn.parameter_scope("stem"):
            h = _conv_bn(x, st["out_channels"], st["kernel"], st["stride"], train, self.rng)
        fb = d.get("first_block")
        if fb:
            with nn.parameter_scope("first_block"):
                h = mbconv(h, fb["out_channels"], fb.get("expand", 6), fb.get("kernel", 3),
                           fb.get("stride", 1), train, self.rng)
        return h

    def head(self, h, train: bool):
        hd = self.space.data["head"]
        with nn.parameter_scope("head"):
            h = _conv_bn(h, hd["out_channels"], 1, 1, train, self.rng)
            h = F.global_average_pooling(h)
            return PF.affine(h, hd["classes"], rng=self.rng)

    def candidate(self, x, li: int, name: str, train: bool):
        if name == SKIP:
            return x
        lay = self.space.layers[li]
        c = self._cands[name]
        with nn.parameter_scope(lay.name), nn.parameter_scope(name):
            return mbconv(x, lay.out_channels, c.get("expand", 6), c.get("kernel", 3), lay.stride,
                          train, self.rng)

    # -- whole networks ---------------------------------------------------- #
    def network(self, x, route: Callable, train: bool):
        """``route(li, h)`` returns the output of searchable layer ``li`` for input ``h``."""
        with nn.parameter_scope(self.scope):
            h = self.stem(x, train)
            for li in range(len(self.space.layers)):
                h = route(li, h)
            return self.head(h, train)

    def child(self, x, choices: Sequence[str], train: bool):
        return self.network(x, lambda li, h: self.candidate(h, li, choices[li], train), train)

    def mixed(self, x, probs: Sequence, train: bool):
        """DARTS: ``probs[li]`` is a (K,) nnabla variable of softmax weights."""
        def route(li, h):
            names = self.space.layers[li].candidates
            ws = F.split(probs[li], axis=0) if len(names) > 1 else [probs[li]]
            outs = [self.candidate(h, li, n, train) * F.reshape(w, (1, 1, 1, 1))
                    for n, w in zip(names, ws)]
            return F.add_n(*outs) if len(outs) > 1 else outs[0]
        return self.network(x, route, train)

    def gated(self, x, pairs: Sequence[tuple[int, ...]], gates: Sequence, train: bool):
        """ProxylessNAS: ``pairs[li]`` candidate indices, ``gates[li]`` a (len,) variable."""
        def route(li, h):
            names = self.space.layers[li].candidates
            idx = pairs[li]
            if len(idx) == 1:
                return self.candidate(h, li, names[idx[0]], train)
            ws = F.split(gates[li], axis=0)
            outs = [self.candidate(h, li, names[i], train) * F.reshape(w, (1, 1, 1, 1))
                    for i, w in zip(idx, ws)]
            return F.add_n(*outs)
        return self.network(x, route, train)

    def weights(self) -> dict:
        with nn.parameter_scope(self.scope):
            return nn.get_parameters(grad_only=False)
