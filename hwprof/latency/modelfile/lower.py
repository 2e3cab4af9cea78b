"""Each canonical function to one primitive hwprof op spec, then the composite patterns.

:func:`lower_graph` returns a :class:`Lowered`: the lowered ops in execution
order (each with the names of the file's functions it stands for), the views
that compute nothing, and every function no op kind describes, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hwprof.errors import SpecError
from hwprof.latency.modelfile.canon import HSIGMOID, HSWISH, Canon
from hwprof.latency.modelfile.graph import ModelGraph, Node
from hwprof.latency.specs import OpSpec, parse_spec

ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6", HSWISH: "hswish"}
GATES = {"Sigmoid": "sigmoid", HSIGMOID: "hsigmoid"}


class Unsupported(ValueError):
    """A function no hwprof op kind describes; the message says why."""


@dataclass
class LOp:
    """One lowered op: its spec (None when unsupported), the functions it stands for,
    its input tensors (roots) and output tensor."""

    spec: OpSpec | None
    names: list[str]
    types: list[str]
    inputs: list[str]
    output: str
    reason: str | None = None
    gate: str | None = None  # Sigmoid / HardSigmoidV3 nodes: the gate they would be in an SE

    @property
    def kind(self) -> str | None:
        return self.spec.kind if self.spec is not None else None


@dataclass
class Lowered:
    """A model file lowered to op specs."""

    source: str
    network: str
    ops: list[LOp]
    views: list[str] = field(default_factory=list)

    @property
    def specs(self) -> list[OpSpec]:
        return [o.spec for o in self.ops if o.spec is not None]

    @property
    def supported(self) -> list[LOp]:
        return [o for o in self.ops if o.spec is not None]

    @property
    def unsupported(self) -> list[dict[str, Any]]:
        return [{"name": o.names[0], "op": o.types[0], "reason": o.reason}
                for o in self.ops if o.spec is None]

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for s in self.specs:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        return {"model": self.source, "network": self.network, "functions":
                sum(len(o.names) for o in self.ops) + len(self.views), "ops": len(self.specs),
                "kinds": kinds, "views": len(self.views), "unsupported": self.unsupported}


# --------------------------------------------------------------------------- #
# one function -> one primitive spec


def _pair(v, default=1):
    v = list(v) if v is not None else [default, default]
    return v[0] if len(v) == 2 and v[0] == v[1] else v


def _conv(n: Node, shp, weight, depthwise: bool) -> OpSpec:
    a = n.args
    if a.get("channel_last"):
        raise Unsupported("channel-last convolutions are not an hwprof layout (NCHW only)")
    if a.get("base_axis", 1) != 1 or len(shp) != 4:
        raise Unsupported(f"only 2-D convolutions of NCHW input are op kinds; input {list(shp)}")
    k = list(weight[-2:])
    common = {"input": list(shp), "kernel": _pair(k), "stride": _pair(a.get("stride")),
              "padding": _pair(a.get("pad"), 0), "dilation": _pair(a.get("dilation")),
              "bias": len(n.inputs) > 2}
    c = shp[1]
    group = int(a.get("group", 1))
    if depthwise:
        return parse_spec({"kind": "dwconv2d", "multiplier": int(a.get("multiplier", 1)),
                           **common})
    if group > 1 and group == c and weight[0] % c == 0:  # a depthwise conv spelt as grouped
        return parse_spec({"kind": "dwconv2d", "multiplier": weight[0] // c, **common})
    return parse_spec({"kind": "conv2d", "out_channels": int(weight[0]), "groups": group,
                       **common})


def _pool(kind: str, n: Node, shp) -> OpSpec:
    a = n.args
    if a.get("channel_last"):
        raise Unsupported("channel-last pooling is not an hwprof layout (NCHW only)")
    if not a.get("ignore_border", True):
        raise Unsupported("pooling with ignore_border=False has no op kind")
    if kind == "avgpool" and not a.get("including_pad", True) and any(a.get("pad") or [0]):
        raise Unsupported("average pooling that excludes padding has no op kind")
    return parse_spec({"kind": kind, "input": list(shp), "kernel": _pair(a.get("kernel")),
                       "stride": _pair(a.get("stride") or a.get("kernel")),
                       "padding": _pair(a.get("pad"), 0)})


def _affine(n: Node, shp, weight) -> OpSpec:
    if n.args.get("base_axis", 1) != 1:
        raise Unsupported(f"affine with base_axis {n.args.get('base_axis')} has no op kind")
    fin = 1
    for d in shp[1:]:
        fin *= d
    if "out_features" in n.args:  # rewritten from a batched matmul: W is (..., fin, fout)
        fin_w, fout = weight[-2], int(n.args["out_features"])
    else:  # nnabla's Affine: W is (fin, fout...)
        fin_w, fout = weight[0], 1
        for d in weight[1:]:
            fout *= d
    if fin_w != fin:
        raise Unsupported(f"affine weight {list(weight)} does not fit input {list(shp)}")
    return parse_spec({"kind": "fc", "input": list(shp), "out_features": int(fout),
                       "bias": len(n.inputs) > 2})


def _same_shapes(n: Node, shapes) -> list[int]:
    first = shapes[0]
    if any(s != first for s in shapes):
        raise Unsupported(f"{n.type} of tensors of different shapes "
                          f"{[list(s) for s in shapes]}: hwprof's op takes equal shapes")
    return list(first)


def lower_node(n: Node, c: Canon) -> OpSpec:
    """The spec of one canonical function; :class:`Unsupported` says why there is none."""
    g = c.g
    bufs = [v for v in n.inputs if not c.const(v)]
    if not bufs:
        raise Unsupported("computes only on constants")
    shp = g.shapes[bufs[0]]
    t = n.type
    if t in ("Convolution", "DepthwiseConvolution"):
        return _conv(n, shp, g.shapes[n.inputs[1]], t == "DepthwiseConvolution")
    if t == "BatchNormalization":  # a graph saved in training mode is priced at inference
        if list(n.args.get("axes", [1])) != [1] or len(shp) != 4:
            raise Unsupported("batch normalisation over other axes than channels of NCHW")
        return parse_spec({"kind": "bn", "input": list(shp)})
    if t in ACTIVATIONS:
        return parse_spec({"kind": ACTIVATIONS[t], "input": list(shp)})
    if t == "AveragePooling":
        return _pool("avgpool", n, shp)
    if t == "MaxPooling":
        return _pool("maxpool", n, shp)
    if t == "GlobalAveragePooling":
        return parse_spec({"kind": "global_avgpool", "input": list(shp)})
    if t == "Affine":
        return _affine(n, shp, g.shapes[n.inputs[1]])
    if t in ("Add2", "AddN") and len(bufs) == len(n.inputs):
        return parse_spec({"kind": "add", "input": _same_shapes(n, [g.shapes[v] for v in bufs]),
                           "n_inputs": len(bufs)})
    if t == "Concatenate" and len(bufs) == len(n.inputs):
        if n.args.get("axis", len(shp) - 1) not in (1, 1 - len(shp)):
            raise Unsupported("concatenation along another axis than channels")
        return parse_spec({"kind": "concat",
                           "input": _same_shapes(n, [g.shapes[v] for v in bufs]),
                           "n_inputs": len(bufs)})
    if t in GATES:
        raise Unsupported(f"a standalone {t} has no op kind (only as the gate of a "
                          f"squeeze-and-excite block)")
    raise Unsupported(f"no hwprof op kind for nnabla function {t}")


def _lower_one(n: Node, c: Canon) -> LOp:
    out = n.outputs[0] if n.outputs else ""
    try:
        spec, reason = lower_node(n, c), None
    except Unsupported as e:
        spec, reason = None, str(e)
    except (SpecError, KeyError, IndexError, TypeError, ValueError) as e:
        spec, reason = None, f"cannot be described as an op spec ({e})"
    bufs = [v for v in n.inputs if not c.const(v)]
    return LOp(spec, [n.name], [n.type], bufs, out, reason,
               gate=GATES.get(n.type))


def lower_graph(g: ModelGraph, *, known: Callable[[OpSpec], bool] | None = None) -> Lowered:
    """Lower every function, then recognise SE, MBConv and (with ``known``) fixed layers
    a table holds as one ``sequence``."""
    from hwprof.latency.modelfile import patterns

    c = Canon(g)
    ops = [_lower_one(n, c) for n in c.nodes]
    outs = {c.root(v) for v in g.outputs}
    ops = patterns.squeeze_excite(ops, g, outs)
    ops = patterns.mbconv(ops, g, outs)
    if known is not None:
        ops = patterns.fuse_known(ops, outs, known)
    return Lowered(g.source, g.name, ops, [v.name for v in c.views])
