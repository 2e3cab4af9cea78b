"""Search spaces as data, and the op specs each one's lookup table needs.

A space is a plain dictionary: input shape, a fixed stem (and optional fixed
first block), stages of searchable layers (width, depth, stride), the candidate
blocks every searchable layer chooses among, and a fixed head. The same code
turns any space into its layers, its candidates' op specs and the specs of one
chosen architecture; adding a space means adding data, not code.

Candidates are MBConv blocks named ``mbconv_e{expand}_k{kernel}`` plus ``skip``
(identity) where the layer keeps shape (stride 1, same width).

With ``"fused_fixed": True`` each fixed layer (stem conv + BN + ReLU6, head conv +
BN + ReLU6, pool + classifier) is one ``sequence`` spec instead of its primitives:
the unit that published lookup tables measure (``hwprof import proxylessnas``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

from hwprof.errors import UserError
from hwprof.latency.specs import OpSpec, parse_spec, unique

SKIP = "skip"


def _mbconv_candidates(expands: Sequence[int], kernels: Sequence[int]) -> list[dict]:
    return [{"name": f"mbconv_e{e}_k{k}", "expand": e, "kernel": k}
            for e in expands for k in kernels]


_SPACES: dict[str, dict[str, Any]] = {
    "mbv2-cifar": {
        "description": "MobileNetV2 for 32x32 CIFAR input: 16 searchable layers, "
                       "MBConv e{3,6} x k{3,5,7} + skip",
        "input": [1, 3, 32, 32],
        "stem": {"out_channels": 32, "kernel": 3, "stride": 1},
        "first_block": {"out_channels": 16, "expand": 1, "kernel": 3, "stride": 1},
        "stages": [{"out_channels": 24, "layers": 2, "stride": 1},
                   {"out_channels": 32, "layers": 3, "stride": 2},
                   {"out_channels": 64, "layers": 4, "stride": 2},
                   {"out_channels": 96, "layers": 3, "stride": 1},
                   {"out_channels": 160, "layers": 3, "stride": 2},
                   {"out_channels": 320, "layers": 1, "stride": 1}],
        "candidates": _mbconv_candidates((3, 6), (3, 5, 7)),
        "head": {"out_channels": 1280, "classes": 10},
    },
    "mbv2-mini": {
        "description": "narrow, shallow MobileNetV2 (6 searchable layers) for searches that "
                       "finish in minutes on a laptop CPU",
        "input": [1, 3, 32, 32],
        "stem": {"out_channels": 16, "kernel": 3, "stride": 2},
        "first_block": {"out_channels": 16, "expand": 1, "kernel": 3, "stride": 2},
        "stages": [{"out_channels": 24, "layers": 2, "stride": 2},
                   {"out_channels": 40, "layers": 2, "stride": 2},
                   {"out_channels": 80, "layers": 2, "stride": 1}],
        "candidates": _mbconv_candidates((3, 6), (3, 5, 7)),
        "head": {"out_channels": 320, "classes": 10},
    },
    "proxyless-mobile": {
        "description": "ProxylessNAS mobile space on 224x224 ImageNet input (21 searchable layers, "
                       "MBConv e{3,6} x k{3,5,7} + skip); matches the published phone LUT "
                       "(`hwprof import proxylessnas`)",
        "input": [1, 3, 224, 224],
        "stem": {"out_channels": 32, "kernel": 3, "stride": 2},
        "first_block": {"out_channels": 16, "expand": 1, "kernel": 3, "stride": 1},
        "stages": [{"out_channels": 24, "layers": 4, "stride": 2},
                   {"out_channels": 40, "layers": 4, "stride": 2},
                   {"out_channels": 80, "layers": 4, "stride": 2},
                   {"out_channels": 96, "layers": 4, "stride": 1},
                   {"out_channels": 192, "layers": 4, "stride": 2},
                   {"out_channels": 320, "layers": 1, "stride": 1}],
        "candidates": _mbconv_candidates((3, 6), (3, 5, 7)),
        "head": {"out_channels": 1280, "classes": 1000},
        "fused_fixed": True,
    },
    "tiny": {
        "description": "two searchable layers on 16x16 input; for tests",
        "input": [1, 3, 16, 16],
        "stem": {"out_channels": 8, "kernel": 3, "stride": 1},
        "first_block": None,
        "stages": [{"out_channels": 16, "layers": 2, "stride": 2}],
        "candidates": _mbconv_candidates((3, 6), (3,)),
        "head": {"out_channels": 32, "classes": 10},
    },
}


@dataclass(frozen=True)
class Layer:
    """One searchable position: its input, output width, stride and candidates."""

    name: str
    input: tuple[int, ...]
    out_channels: int
    stride: int
    candidates: tuple[str, ...]


class Space:
    """A search space built from its data dictionary."""

    def __init__(self, name: str, data: dict[str, Any], batch: int | None = None):
        self.name = name
        self.data = copy.deepcopy(data)
        self.input = list(data["input"])
        if batch is not None:
            self.input[0] = batch
        self._cands = {c["name"]: c for c in data["candidates"]}
        self.prefix: list[OpSpec] = []
        shape = self.input
        stem = data["stem"]
        fused = bool(data.get("fused_fixed", False))
        shape = self._conv_bn_act(self.prefix, shape, stem["out_channels"], stem["kernel"],
                                  stem["stride"], fused)
        fb = data.get("first_block")
        if fb:
            self.prefix.append(parse_spec({"kind": "mbconv", "input": shape, **fb}))
            shape = self.prefix[-1].output_shape
        self.layers: list[Layer] = []
        for si, st in enumerate(data["stages"]):
            for li in range(st["layers"]):
                stride = st["stride"] if li == 0 else 1
                names = list(self._cands)
                if stride == 1 and shape[1] == st["out_channels"]:
                    names.append(SKIP)
                self.layers.append(Layer(f"stage{si + 1}.{li + 1}", tuple(shape),
                                         st["out_channels"], stride, tuple(names)))
                ho = -(-shape[2] // stride)
                wo = -(-shape[3] // stride)
                shape = [shape[0], st["out_channels"], ho, wo]
        self.suffix: list[OpSpec] = []
        head = data["head"]
        shape = self._conv_bn_act(self.suffix, shape, head["out_channels"], 1, 1, fused)
        tail = [parse_spec({"kind": "global_avgpool", "input": shape})]
        tail.append(parse_spec({"kind": "fc", "input": tail[0].output_shape,
                                "out_features": head["classes"]}))
        self.suffix += _fuse(tail, fused)
        self.classes = head["classes"]

    @staticmethod
    def _conv_bn_act(out: list[OpSpec], shape, channels: int, kernel: int, stride: int,
                     fused: bool = False):
        conv = parse_spec({"kind": "conv2d", "input": shape, "out_channels": channels,
                           "kernel": kernel, "stride": stride})
        shape = conv.output_shape
        out += _fuse([conv, parse_spec({"kind": "bn", "input": shape}),
                      parse_spec({"kind": "relu6", "input": shape})], fused)
        return shape

    @property
    def fixed_specs(self) -> list[OpSpec]:
        return self.prefix + self.suffix

    def candidate_spec(self, layer: int | Layer, name: str) -> OpSpec | None:
        """The op spec of candidate ``name`` at a layer; ``None`` for skip."""
        lay = self.layers[layer] if isinstance(layer, int) else layer
        if name not in lay.candidates:
            raise UserError(f"layer {lay.name} of space {self.name!r} has no candidate {name!r}; "
                            f"expected one of: {', '.join(lay.candidates)}")
        if name == SKIP:
            return None
        c = self._cands[name]
        extra = {k: v for k, v in c.items() if k != "name"}
        return parse_spec({"kind": "mbconv", "input": list(lay.input),
                           "out_channels": lay.out_channels, "stride": lay.stride, **extra})

    def table_specs(self) -> list[OpSpec]:
        """Exactly the unique specs a lookup table of this space needs."""
        specs = list(self.prefix)
        for lay in self.layers:
            specs += [s for s in (self.candidate_spec(lay, n) for n in lay.candidates) if s]
        return unique(specs + self.suffix)

    def check_choices(self, choices: Sequence[str]) -> list[str]:
        if not isinstance(choices, (list, tuple)) or len(choices) != len(self.layers):
            raise UserError(f"space {self.name!r} has {len(self.layers)} searchable layers; "
                            f"'choices' must list one candidate per layer, got {choices!r}")
        for lay, name in zip(self.layers, choices):
            self.candidate_spec(lay, name)  # raises with the valid names
        return list(choices)

    def arch_specs(self, choices: Sequence[str]) -> list[OpSpec]:
        """The ops of one architecture in execution order (skips omitted)."""
        self.check_choices(choices)
        mid = [self.candidate_spec(lay, n) for lay, n in zip(self.layers, choices)]
        return self.prefix + [s for s in mid if s is not None] + self.suffix

    def arch_network(self, choices: Sequence[str]) -> OpSpec:
        """One ``sequence`` spec for the whole architecture, to measure end to end."""
        ops = [s.to_dict() for s in self.arch_specs(choices)]
        return parse_spec({"kind": "sequence", "input": self.input, "ops": ops})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.data.get("description", ""),
                "input": list(self.input),
                "layers": [{"name": lay.name, "input": list(lay.input),
                            "out_channels": lay.out_channels, "stride": lay.stride,
                            "candidates": list(lay.candidates)} for lay in self.layers],
                "n_table_ops": len(self.table_specs()),
                "n_architectures": _count(self.layers)}


def _fuse(ops: list[OpSpec], fused: bool) -> list[OpSpec]:
    """``ops`` as they are, or as one ``sequence`` spec when ``fused``."""
    if not fused:
        return ops
    return [parse_spec({"kind": "sequence", "input": ops[0].input,
                        "ops": [o.to_dict() for o in ops]})]


def _count(layers: Sequence[Layer]) -> int:
    n = 1
    for lay in layers:
        n *= len(lay.candidates)
    return n


def space_names() -> list[str]:
    return list(_SPACES)


def get_space(name: str, batch: int | None = None) -> Space:
    if name not in _SPACES:
        raise UserError(f"unknown space {name!r}; available: {', '.join(_SPACES)} "
                        f"(see `hwprof spaces`)")
    return Space(name, _SPACES[name], batch=batch)


def register_space(name: str, data: dict[str, Any]) -> None:
    """Add a space (validated by building it once)."""
    Space(name, data)
    _SPACES[name] = copy.deepcopy(data)
