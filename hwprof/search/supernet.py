"""The nnabla supernet over a space's candidates, and the child network of one architecture.

Every candidate of every layer has its own weights, named
``<scope>/<layer>/<candidate>/...``; the stem and head are shared. Three ways
to route a layer:

- ``mixed``: the DARTS relaxation, ``sum_k p_k * o_k`` over every candidate;
- ``one``: a single candidate (ProxylessNAS weight steps, the child network);
- ``gated``: ProxylessNAS's two sampled paths times a binary gate variable
  whose gradient drives the architecture update; only those two paths exist
  in the graph.

Every part is built from the space's op specs (:func:`build_ops`), so the
supernet holds exactly the blocks the latency table prices: MBConv with its
squeeze-excite and activation, plain convs, the stem and head as the space
file writes them. A ``skip`` candidate is the identity, and only the layers a
stage may drop (beyond its minimum depth) have one, so no path of the supernet
is shallower than the space allows.

All weight initialisers draw from the one ``numpy.random.RandomState`` given
to the supernet, so layers do not repeat each other's draws.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np

from hwprof.latency.spaces import SKIP, Space
from hwprof.latency.specs import OpSpec, mbconv_mid_channels

_ACTS = ("relu", "relu6", "hswish")


def _act(h, act: str):
    if act == "relu":
        return F.relu(h)
    if act == "relu6":
        return F.relu6(h)
    if act == "hswish":
        return F.mul2(h, F.mul_scalar(F.relu6(F.add_scalar(h, 3.0)), 1.0 / 6.0))
    return h


def _conv_bn(x, cout: int, k: int, stride: int, train: bool, rng, act="relu6",
             depthwise: bool = False, bn: bool = True):
    """Convolution (+ BN) (+ activation); ``act`` False/None/"none" for none."""
    pad = (k // 2, k // 2)
    if depthwise:
        h = PF.depthwise_convolution(x, (k, k), pad=pad, stride=(stride, stride), with_bias=False,
                                     rng=rng)
    else:
        h = PF.convolution(x, cout, (k, k), pad=pad, stride=(stride, stride), with_bias=False,
                           rng=rng)
    if bn:
        h = PF.batch_normalization(h, batch_stat=train)
    if act is True:
        act = "relu6"
    return _act(h, act) if act else h


def _se(h, reduction: int, gate: str, rng):
    """Squeeze-excite as the ``se`` op spec: pool, fc, ReLU, fc, gate, rescale."""
    n, c = h.shape[0], h.shape[1]
    s = F.global_average_pooling(h)
    with nn.parameter_scope("se1"):
        s = F.relu(PF.affine(s, max(1, c // reduction), rng=rng))
    with nn.parameter_scope("se2"):
        s = PF.affine(s, c, rng=rng)
    s = F.mul_scalar(F.relu6(F.add_scalar(s, 3.0)), 1.0 / 6.0) if gate == "hsigmoid" \
        else F.sigmoid(s)
    return F.mul2(h, F.reshape(s, (n, c, 1, 1)))


def mbconv(x, cout: int, expand: float, kernel: int, stride: int, train: bool, rng,
           se: bool = False, act: str = "relu6"):
    """MobileNetV2/V3 inverted residual, the same layers as the ``mbconv`` op spec."""
    cin = x.shape[1]
    h = x
    if expand != 1:
        with nn.parameter_scope("expand"):
            h = _conv_bn(h, mbconv_mid_channels(cin, expand), 1, 1, train, rng, act)
    with nn.parameter_scope("dw"):
        h = _conv_bn(h, h.shape[1], kernel, stride, train, rng, act, depthwise=True)
    if se:
        with nn.parameter_scope("se"):
            h = _se(h, 4, "hsigmoid" if act == "hswish" else "sigmoid", rng)
    with nn.parameter_scope("project"):
        h = _conv_bn(h, cout, 1, 1, train, rng, act=False)
    if stride == 1 and cin == cout:
        h = h + x
    return h


def build_ops(x, ops: list[OpSpec], train: bool, rng):
    """The nnabla graph of a list of op specs (a fixed layer, a candidate), trainable.

    Each op gets a parameter scope ``{index}_{kind}`` when there are several; a
    conv2d takes the BN and activation that follow it.
    """
    h = x
    i = 0
    while i < len(ops):
        op = ops[i]
        kind = op.kind
        with nn.parameter_scope(f"{i}_{kind}") if len(ops) > 1 else _no_scope():
            if kind == "mbconv":
                h = mbconv(h, op["out_channels"], op["expand"], op["kernel"], op["stride"],
                           train, rng, se=op["se"], act=op["activation"])
            elif kind == "sequence":
                h = build_ops(h, [OpSpec(o, _trusted=True) for o in op["ops"]], train, rng)
            elif kind == "conv2d":   # with the BN and activation that follow it
                j = i + 1
                bn = j < len(ops) and ops[j].kind == "bn"
                j += bn
                act = ops[j].kind if j < len(ops) and ops[j].kind in _ACTS else None
                h = _conv_bn(h, op["out_channels"], _k(op["kernel"]), _k(op["stride"]), train,
                             rng, act=act, bn=bn)
                i = j + (act is not None)
                continue
            elif kind == "bn":
                h = PF.batch_normalization(h, batch_stat=train)
            elif kind in ("relu", "relu6", "hswish"):
                h = _act(h, kind)
            elif kind == "global_avgpool":
                h = F.global_average_pooling(h)
            elif kind == "fc":
                h = PF.affine(h, op["out_features"], with_bias=op["bias"], rng=rng)
            elif kind == "se":
                h = _se(h, op["reduction"], op["gate"], rng)
            else:
                raise ValueError(f"the supernet cannot build a {kind} op")
        i += 1
    return h


@contextmanager
def _no_scope():
    yield


def _k(v) -> int:
    return v if isinstance(v, int) else v[0]


class SuperNet:
    def __init__(self, space: Space, rng: np.random.RandomState, scope: str = "supernet"):
        self.space, self.rng, self.scope = space, rng, scope

    # -- fixed parts ------------------------------------------------------- #
    def _fixed(self, h, layers, part: str, train: bool):
        with nn.parameter_scope(part):
            for i, fl in enumerate(layers):
                with nn.parameter_scope(f"{i}_{fl.kind}"):
                    h = build_ops(h, fl.ops, train, self.rng)
        return h

    def stem(self, x, train: bool):
        return self._fixed(x, self.space.stem_layers, "stem", train)

    def head(self, h, train: bool):
        return self._fixed(h, self.space.head_layers, "head", train)

    def candidate(self, x, li: int, name: str, train: bool):
        if name == SKIP:
            return x
        spec = self.space.candidate_spec(li, name)
        with nn.parameter_scope(self.space.layers[li].name), nn.parameter_scope(name):
            return build_ops(x, [spec], train, self.rng)

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
