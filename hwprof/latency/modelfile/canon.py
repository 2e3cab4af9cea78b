"""Canonical functions: the same computation written one way, whatever wrote the file.

Converters and hand-written graphs spell some operations differently; each
rewrite here replaces a spelling by the one function :mod:`.lower` lowers:

- views (Reshape, Flatten, Identity, Dropout at inference) compute nothing: their
  output is their input (a constant stays a constant);
- a binary function with a constant scalar operand is the scalar function
  (``Add2(x, 3)`` -> ``AddScalar(3)``; ``Sub2``/``Div2`` by a constant too); a
  constant tensor added to a buffer is a ``BiasAdd``;
- ReLU then ``MinimumScalar(6)`` (or ``MaximumScalar(0)`` then
  ``MinimumScalar(6)``, or ``ClipByValue(0, 6)``) is ``ReLU6``;
- ``relu6(x + 3) / 6`` is ``HardSigmoidV3`` (hwprof's ``hsigmoid`` gate) and
  ``x * hsigmoid(x)`` (either order of the product and the scale) is ``HardSwish``;
- ``BatchMatmul(x, W)`` with a constant W, and an optional ``BiasAdd``, is ``Affine``
  (ONNX ``Gemm`` comes back from the converter this way).
"""

from __future__ import annotations

from collections import defaultdict

from hwprof.latency.modelfile.graph import ModelGraph, Node

VIEWS = {"Reshape", "Flatten", "Identity", "Dropout", "Broadcast"}
SCALAR_OF = {"Add2": "AddScalar", "Mul2": "MulScalar", "Minimum2": "MinimumScalar",
             "Maximum2": "MaximumScalar", "Sub2": "AddScalar", "Div2": "MulScalar"}
HSIGMOID, HSWISH = "HardSigmoidV3", "HardSwish"


def _close(a, b) -> bool:
    return a is not None and abs(a - b) <= 1e-6 * max(1.0, abs(b))


class Canon:
    """Canonical nodes of a graph, plus the views removed and the alias of every tensor."""

    def __init__(self, g: ModelGraph):
        self.g = g
        self.alias: dict[str, str] = {}
        self.views: list[Node] = []
        self.nodes: list[Node] = []
        self._resolve_views()
        for rewrite in (self._scalars, self._relu6, self._hsigmoid, self._hswish, self._affine):
            rewrite()

    # -- helpers ------------------------------------------------------------ #
    def root(self, var: str) -> str:
        while var in self.alias:
            var = self.alias[var]
        return var

    def const(self, var: str) -> bool:
        return self.g.is_param(self.root(var))

    def scalar(self, var: str) -> float | None:
        return self.g.scalar(self.root(var))

    def _consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = defaultdict(list)
        for n in self.nodes:
            for v in n.inputs:
                out[v].append(n)
        for v in self.g.outputs:
            out[self.root(v)].append(Node("<output>", "Output", [v], []))
        return out

    def _producers(self) -> dict[str, Node]:
        return {v: n for n in self.nodes for v in n.outputs}

    def _replace(self, old: list[Node], new: Node) -> None:
        """Put ``new`` where the last of ``old`` was, and drop ``old``."""
        drop = {id(n) for n in old}
        if len(drop & {id(n) for n in self.nodes}) != len(drop):
            return  # a node of this match was already rewritten by another one
        last = max(i for i, n in enumerate(self.nodes) if id(n) in drop)
        self.nodes[last] = new
        self.nodes = [n for n in self.nodes if id(n) not in drop or n is new]

    def _only_use(self, var: str, cons) -> Node | None:
        users = cons.get(var, [])
        return users[0] if len(users) == 1 else None

    # -- rewrites ----------------------------------------------------------- #
    def _resolve_views(self) -> None:
        for n in self.g.nodes:
            if n.type in VIEWS and len(n.outputs) == 1 and n.inputs:
                self.alias[n.outputs[0]] = n.inputs[0]
                if not self.g.is_param(self.root(n.inputs[0])):
                    self.views.append(n)
            else:
                self.nodes.append(Node(n.name, n.type, list(n.inputs), list(n.outputs),
                                       dict(n.args)))
        for n in self.nodes:
            n.inputs = [self.root(v) for v in n.inputs]

    def _scalars(self) -> None:
        out = []
        for n in self.nodes:
            if n.type in SCALAR_OF and len(n.inputs) == 2:
                a, b = n.inputs
                ca, cb = self.const(a), self.const(b)
                sym = n.type in ("Add2", "Mul2", "Minimum2", "Maximum2")
                if ca != cb and (cb or sym):
                    x, c = (a, b) if cb else (b, a)
                    v = self.scalar(c)
                    if v is not None and not (n.type == "Div2" and v == 0):
                        v = -v if n.type == "Sub2" else (1.0 / v if n.type == "Div2" else v)
                        n = Node(n.name, SCALAR_OF[n.type], [x], n.outputs, {"val": v, "const": c})
                    elif n.type == "Add2":
                        n = Node(n.name, "BiasAdd", [x, c], n.outputs, {})
            out.append(n)
        self.nodes = out

    def _relu6(self) -> None:
        cons = self._consumers()
        for n in list(self.nodes):
            if n.type == "ClipByValue" and len(n.inputs) == 3 and _close(
                    self.scalar(n.inputs[1]), 0.0) and _close(self.scalar(n.inputs[2]), 6.0):
                self._replace([n], Node(n.name, "ReLU6", n.inputs[:1], n.outputs))
                continue
            is_zero_clip = n.type == "ReLU" or (n.type == "MaximumScalar"
                                                and _close(n.args.get("val"), 0.0))
            if not is_zero_clip:
                continue
            nxt = self._only_use(n.outputs[0], cons)
            if nxt is not None and nxt.type == "MinimumScalar" and _close(nxt.args.get("val"), 6.0):
                self._replace([n, nxt], Node(nxt.name, "ReLU6", n.inputs, nxt.outputs))

    def _hsigmoid(self) -> None:
        cons = self._consumers()
        for n in list(self.nodes):
            if n.type != "AddScalar" or not _close(n.args.get("val"), 3.0):
                continue
            r6 = self._only_use(n.outputs[0], cons)
            if r6 is None or r6.type != "ReLU6":
                continue
            sc = self._only_use(r6.outputs[0], cons)
            if sc is not None and sc.type == "MulScalar" and _close(sc.args.get("val"), 1 / 6):
                self._replace([n, r6, sc], Node(sc.name, HSIGMOID, n.inputs, sc.outputs))

    def _hswish(self) -> None:
        # x * hsigmoid(x), either operand order
        cons, prod = self._consumers(), self._producers()
        for n in list(self.nodes):
            if n.type != "Mul2" or len(n.inputs) != 2:
                continue
            for x, y in (n.inputs, n.inputs[::-1]):
                p = prod.get(y)
                if p is not None and p.type == HSIGMOID and p.inputs[:1] == [x] and \
                        self._only_use(y, cons) is n:
                    self._replace([p, n], Node(n.name, HSWISH, [x], n.outputs))
                    break
        # (x * relu6(x + 3)) / 6: AddScalar(3) -> ReLU6 -> Mul2(x, .) -> MulScalar(1/6)
        cons, prod = self._consumers(), self._producers()
        for n in list(self.nodes):
            if n.type != "AddScalar" or not _close(n.args.get("val"), 3.0):
                continue
            x = n.inputs[0]
            r6 = self._only_use(n.outputs[0], cons)
            mul = self._only_use(r6.outputs[0], cons) if r6 is not None and r6.type == "ReLU6" \
                else None
            if mul is None or mul.type != "Mul2" or x not in mul.inputs:
                continue
            sc = self._only_use(mul.outputs[0], cons)
            if sc is not None and sc.type == "MulScalar" and _close(sc.args.get("val"), 1 / 6):
                self._replace([n, r6, mul, sc], Node(sc.name, HSWISH, [x], sc.outputs))

    def _affine(self) -> None:
        cons = self._consumers()
        for n in list(self.nodes):
            if n.type != "BatchMatmul" or len(n.inputs) != 2 or not self.const(n.inputs[1]):
                continue
            if n.args.get("transpose_a") or n.args.get("transpose_b"):
                continue
            w = self.g.shapes.get(self.root(n.inputs[1]))
            wshape = self.g.shapes.get(n.inputs[1], w)
            if not wshape or len(wshape) not in (2, 3) or (len(wshape) == 3 and wshape[0] != 1):
                continue
            group, out, inputs = [n], n.outputs, [n.inputs[0], n.inputs[1]]
            nxt = self._only_use(n.outputs[0], cons)
            if nxt is not None and (nxt.type == "BiasAdd" or (
                    nxt.type == "AddScalar" and "const" in nxt.args)):  # a bias of equal values
                bias = nxt.inputs[1] if nxt.type == "BiasAdd" else nxt.args["const"]
                group, out, inputs = [n, nxt], nxt.outputs, inputs + [bias]
            self._replace(group, Node(group[-1].name, "Affine", inputs, out,
                                      {"base_axis": 1, "out_features": int(wshape[-1])}))
