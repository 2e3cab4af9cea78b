"""Patterns hwprof measures as one op: squeeze-and-excite, MBConv blocks, and fixed layers
that a table holds as one ``sequence`` (imported phone LUTs measure conv+BN+act as one).

Each recogniser replaces a run of lowered primitives by the composite spec only when
the composite's own decomposition (``OpSpec.children``) is exactly those primitives,
so a recognised block costs what its parts describe, nothing invented.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

from hwprof.errors import SpecError
from hwprof.latency.modelfile.graph import ModelGraph
from hwprof.latency.modelfile.lower import LOp
from hwprof.latency.specs import COMPOSITE_KINDS, OpSpec, parse_spec

ACT_KINDS = ("relu", "relu6", "hswish")
MAX_FUSED = 6


class _Index:
    """Who produces and who consumes each tensor of a list of lowered ops."""

    def __init__(self, ops: Sequence[LOp], outputs: set[str]):
        self.prod = {o.output: o for o in ops}
        self.cons: dict[str, list] = defaultdict(list)
        for o in ops:
            for v in o.inputs:
                self.cons[v].append(o)
        for v in outputs:
            self.cons[v].append(None)  # the network's output is a use too

    def sole_producer(self, var: str, kinds: tuple[str, ...] = ()) -> LOp | None:
        """The op producing ``var`` when ``var`` has no other use (and its kind is one of)."""
        p = self.prod.get(var)
        if p is None or len(self.cons.get(var, [])) != 1:
            return None
        return p if not kinds or p.kind in kinds else None

    def next(self, op: LOp, kinds: tuple[str, ...] = ()) -> LOp | None:
        """The single op consuming ``op``'s output (of one of ``kinds``)."""
        users = self.cons.get(op.output, [])
        if len(users) != 1 or users[0] is None:
            return None
        return users[0] if not kinds or users[0].kind in kinds else None


def _is_1x1(op: LOp | None, bias: bool) -> bool:
    s = op.spec if op is not None else None
    if s is None:
        return False
    if s.kind == "fc":
        return bool(s["bias"]) == bias
    return (s.kind == "conv2d" and s["kernel"] == 1 and s["stride"] == 1 and s["groups"] == 1
            and s["padding"] == 0 and bool(s["bias"]) == bias)


def _out_channels(op: LOp) -> int:
    return op.spec.output_shape[1]


def _replace(ops: list[LOp], group: list[LOp], spec: OpSpec, inputs: list[str]) -> list[LOp]:
    ids = {id(o) for o in group}
    first = min(i for i, o in enumerate(ops) if id(o) in ids)
    order = [o for o in ops if id(o) in ids]
    new = LOp(spec, [n for o in order for n in o.names], [t for o in order for t in o.types],
              inputs, order[-1].output)
    out = [o for o in ops if id(o) not in ids]
    out.insert(first, new)
    return out


# --------------------------------------------------------------------------- #
# squeeze-and-excite: x * gate(fc2(relu(fc1(gap(x)))))


def _se_at(mul: LOp, idx: _Index) -> tuple[list[LOp], OpSpec, str] | None:
    if mul.spec is not None or mul.types != ["Mul2"] or len(mul.inputs) != 2:
        return None
    for x, s in (mul.inputs, mul.inputs[::-1]):
        gate = idx.sole_producer(s)
        if gate is None or gate.gate is None:
            continue
        fc2 = idx.sole_producer(gate.inputs[0]) if gate.inputs else None
        act = idx.sole_producer(fc2.inputs[0], ("relu",)) if _is_1x1(fc2, True) else None
        fc1 = idx.sole_producer(act.inputs[0]) if act is not None else None
        gap = idx.sole_producer(fc1.inputs[0], ("global_avgpool",)) if _is_1x1(
            fc1, True) else None
        if gap is None or gap.inputs != [x]:
            continue
        c, r = gap.spec.input[1], _out_channels(fc1)
        if _out_channels(fc2) != c or r < 1 or c // max(1, c // r) != r:
            continue
        try:
            spec = parse_spec({"kind": "se", "input": gap.spec.input, "reduction": c // r,
                               "gate": gate.gate})
        except SpecError:
            continue
        return [gap, fc1, act, fc2, gate, mul], spec, x
    return None


def squeeze_excite(ops: list[LOp], g: ModelGraph, outputs: set[str]) -> list[LOp]:
    idx = _Index(ops, outputs)
    for mul in [o for o in ops if o.types == ["Mul2"]]:
        hit = _se_at(mul, idx)
        if hit:
            group, spec, x = hit
            ops = _replace(ops, group, spec, [x])
    return ops


# --------------------------------------------------------------------------- #
# MBConv: [1x1 conv, bn, act], dw conv, bn, act, [se], 1x1 conv, bn, [+ x]


def _expansion(dw: LOp, idx: _Index) -> list[LOp]:
    act = idx.sole_producer(dw.inputs[0], ACT_KINDS)
    bn = idx.sole_producer(act.inputs[0], ("bn",)) if act is not None else None
    conv = idx.sole_producer(bn.inputs[0]) if bn is not None else None
    return [conv, bn, act] if _is_1x1(conv, False) and conv.spec.kind == "conv2d" else []


def _tail(dw: LOp, idx: _Index) -> list[LOp] | None:
    bn = idx.next(dw, ("bn",))
    act = idx.next(bn, ACT_KINDS) if bn is not None else None
    if act is None:
        return None
    nxt = idx.next(act)
    se = [nxt] if nxt is not None and nxt.kind == "se" else []
    proj = idx.next(se[0]) if se else nxt
    if not (_is_1x1(proj, False) and proj.spec.kind == "conv2d"):
        return None
    bn2 = idx.next(proj, ("bn",))
    return [bn, act, *se, proj, bn2] if bn2 is not None else None


def _mbconv_at(dw: LOp, idx: _Index) -> tuple[list[LOp], OpSpec, str] | None:
    s = dw.spec
    if s is None or s.kind != "dwconv2d" or s["multiplier"] != 1 or s["bias"] or s["dilation"] != 1:
        return None
    tail = _tail(dw, idx)
    if tail is None:
        return None
    head = _expansion(dw, idx)
    if head and head[2].kind != tail[1].kind:
        head = []
    x = head[0].inputs[0] if head else dw.inputs[0]
    cin = (head[0] if head else dw).spec.input[1]
    mid = s.input[1]
    expand: float = mid / cin
    expand = int(expand) if float(expand).is_integer() else expand
    users = idx.cons.get(tail[-1].output, [])
    add = users[0] if len(users) == 1 and users[0] is not None else None
    residual = bool(add is not None and add.kind == "add" and sorted(add.inputs) == sorted(
        [tail[-1].output, x]) and x != tail[-1].output)
    se = [o for o in tail if o.kind == "se"]
    try:
        spec = parse_spec({"kind": "mbconv", "input": (head[0] if head else dw).spec.input,
                           "out_channels": _out_channels(tail[-1]), "expand": expand,
                           "kernel": s["kernel"], "stride": s["stride"], "padding": s["padding"],
                           "se": bool(se), "activation": tail[1].kind, "residual": residual})
    except SpecError:
        return None
    group = [*head, dw, *tail] + ([add] if residual else [])
    parts = [c.signature for c in spec.children()]
    if parts != [o.spec.signature for o in group]:
        return None  # e.g. an SE gate other than the one the block's activation implies
    return group, spec, x


def mbconv(ops: list[LOp], g: ModelGraph, outputs: set[str]) -> list[LOp]:
    for dw in [o for o in ops if o.kind == "dwconv2d"]:
        idx = _Index(ops, outputs)
        hit = _mbconv_at(dw, idx)
        if hit:
            group, spec, x = hit
            ops = _replace(ops, group, spec, [x])
    return ops


# --------------------------------------------------------------------------- #
# runs of primitives a table holds as one sequence


def fuse_known(ops: list[LOp], outputs: set[str], known: Callable[[OpSpec], bool]
               ) -> list[LOp]:
    """Replace each chain of 2..6 primitives whose ``sequence`` spec ``known`` accepts
    (longest first) by that sequence."""
    starts = getattr(known, "starts", None)
    i = 0
    while i < len(ops):
        if starts is not None and (ops[i].spec is None or ops[i].spec.signature not in starts):
            i += 1
            continue
        idx = _Index(ops, outputs)
        for n in range(min(MAX_FUSED, len(ops) - i), 1, -1):
            run = ops[i:i + n]
            if not _chain(run, idx):
                continue
            seq = parse_spec({"kind": "sequence", "input": run[0].spec.input,
                              "ops": [o.spec.to_dict() for o in run]})
            if known(seq):
                ops = _replace(ops, run, seq, list(run[0].inputs))
                break
        i += 1
    return ops


def _chain(run: Sequence[LOp], idx: _Index) -> bool:
    if any(o.spec is None or o.spec.kind in COMPOSITE_KINDS for o in run):
        return False
    for a, b in zip(run, run[1:]):
        if b.inputs != [a.output] or idx.next(a) is not b or b.spec.input != a.spec.output_shape:
            return False
    return True
