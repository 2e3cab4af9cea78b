"""Random op configurations that look like the layers of real mobile CNNs.

``build-table --sample N --kinds K1,K2 --seed S`` measures N configurations
*per kind*, drawn here. The prior follows how mobile networks are built: a
feature map's side is 1..224 (mostly the usual stage sizes 224, 112, 56, 28,
14, 7 and their CIFAR cousins 32, 16, 8, 4), and the narrower the map the
wider it is (8 channels at 224x224 up to 2,048 at 7x7, with jitter); kernels
1/3/5/7, strides 1/2, MBConv expansion 1..6 (non-integer ones too, as
MobileNetV3's 184/80). Configurations costing more than a few hundred million
MACs (which no mobile layer does) are drawn again, so a sampled table is quick
to measure.

What real networks use and a plain draw would miss (issue 17):

- *stems*: a convolution on the 3-channel image (3x3 or 7x7, stride 2; 6 %);
- *expanded widths*: a 1x1 conv or depthwise conv inside an MBConv block sees
  the expanded width (up to 6 x 1,024 = 6,144 channels), so the standalone
  kinds draw such widths too (depthwise half the time, 1x1 convs a quarter),
  and the stacked MBConv model never extrapolates its parts;
- *channel counts* that are not multiples of 8 (ShuffleNetV2's 58/116/232,
  multiples of 4 or 2; 25 % of the rest), and widths that are exactly a power of two
  (ResNets, VGG, MobileNetV1: 64 ... 2,048; 15 %, ``POW2_SHARE``): nnabla's 1x1 convolutions
  run 10-30 % slower per MAC with 512 output channels than with 496 or 528, which a
  continuous draw rounded to multiples of 8 almost never hits (since 2026-12-05);
- MBConv blocks with expand 1 (22 %), squeeze-excite (35 %) and ReLU or
  h-swish (MobileNetV3; 20 % each), the groups that were drawn rarely;
- *bottleneck widths*: an MBConv block's input is the narrow side of the
  block, so its channels are drawn around 0.4 of a plain convolution's
  (``MBCONV_WIDTH``; hwprof's ImageNet-size spaces use 0.3-0.75, median 0.45,
  its CIFAR spaces 0.14-0.21, and the 1.0 of the first prior left real
  MobileNetV3 / EfficientNet blocks at the edge of what was drawn).

Every kind draws from its own generator seeded by ``(seed, kind)``: the same
seed always gives the same configurations, whatever other kinds are asked
for, and a configuration is never drawn twice.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Sequence

from hwprof.errors import SpecError, UserError
from hwprof.latency.specs import OpSpec, mbconv_mid_channels, parse_spec

DEFAULT_KINDS = ("conv2d", "dwconv2d", "mbconv")
MAX_MACS = 400_000_000
STAGE_SIDES = (224, 112, 56, 28, 14, 7, 32, 16, 8, 4)
MIN_C, MAX_C = 8, 2048
MAX_MID_C = 6 * 1024  # widest expanded width (an MBConv block's, or a part of one)
MBCONV_WIDTH = 0.4  # an MBConv block's input width over a plain conv's (module doc)
POW2_SHARE = 0.15  # widths snapped to a power of two (module doc)


# --------------------------------------------------------------------------- #
# shared draws


def _side(rng: random.Random) -> int:
    """Feature-map side: a usual stage size (80 %) or anything in 1..224."""
    if rng.random() < 0.8:
        return rng.choice(STAGE_SIDES)
    return int(round(math.exp(rng.uniform(0.0, math.log(224)))))


def _round_channels(c: float, rng: random.Random, cap: int = MAX_C) -> int:
    if rng.random() < POW2_SHARE:
        c = 2.0 ** round(math.log2(max(c, 1.0)))
        return int(min(_pow2_below(cap), max(MIN_C, c)))
    step = rng.choices((8, 4, 2), weights=(0.75, 0.15, 0.10))[0]
    return int(min(cap, max(MIN_C, step * round(c / step))))


def _pow2_below(cap: int) -> int:
    return 1 << (int(cap).bit_length() - 1)


def _expanded(c: int, rng: random.Random) -> int:
    """The width an MBConv block's inner layers see: c times an expansion ratio."""
    return _round_channels(c * rng.choice((2, 3, 4, 6, 6)), rng, MAX_MID_C)


def _channels(rng: random.Random, side: int, scale: float = 1.0) -> int:
    """Channels typical of a map of this side: ~scale*16*224/side (at most 2,048), x/÷ 2.8
    jitter."""
    base = min(scale * 16.0 * 224.0 / max(side, 1), 1024.0)
    c = math.exp(math.log(base) + rng.uniform(-1.0, 1.0) * 1.05)
    return _round_channels(c, rng)


def _width_change(rng: random.Random, c: int) -> int:
    """An output width near the input's (same, x2, x1.5, /2...)."""
    f = rng.choice((1.0, 1.0, 1.0, 2.0, 1.5, 1.25, 0.75, 0.5, 4.0, 6.0))
    return _round_channels(c * f * math.exp(rng.uniform(-0.15, 0.15)), rng)


def _kernel(rng: random.Random, weights=(0.0, 0.6, 0.25, 0.15)) -> int:
    return rng.choices((1, 3, 5, 7), weights=weights)[0]


def _stride(rng: random.Random, side: int) -> int:
    return 2 if side > 1 and rng.random() < 0.3 else 1


def _shape(rng: random.Random, scale: float = 1.0) -> list[int]:
    side = _side(rng)
    return [1, _channels(rng, side, scale), side, side]


# --------------------------------------------------------------------------- #
# per kind: rng -> raw spec dict


def _stem(rng):
    side = rng.choice((224, 224, 192, 160, 128, 32))
    return {"kind": "conv2d", "input": [1, 3, side, side],
            "out_channels": _round_channels(math.exp(rng.uniform(math.log(8), math.log(64))), rng),
            "kernel": rng.choice((3, 3, 7)), "stride": 2 if side > 32 else rng.choice((1, 2))}


def _conv2d(rng):
    if rng.random() < 0.06:
        return _stem(rng)
    n, c, h, w = _shape(rng)
    k = _kernel(rng, (0.55, 0.35, 0.05, 0.05))
    cout = _width_change(rng, c)
    if k == 1 and rng.random() < 0.25:  # an MBConv block's expansion or projection
        mid = _expanded(c, rng)
        c, cout = (c, mid) if rng.random() < 0.5 else (mid, c)
    return {"kind": "conv2d", "input": [n, c, h, w], "out_channels": cout,
            "kernel": k, "stride": _stride(rng, h) if k > 1 or rng.random() < 0.2 else 1}


def _dwconv2d(rng):
    n, c, h, w = _shape(rng)
    if rng.random() < 0.5:  # inside an MBConv the depthwise conv sees the expanded width
        c = _expanded(c, rng)
    return {"kind": "dwconv2d", "input": [n, c, h, w], "kernel": _kernel(rng),
            "stride": _stride(rng, h)}


def _mbconv(rng):
    n, c, h, w = _shape(rng, MBCONV_WIDTH)
    stride = _stride(rng, h)
    cout = c if stride == 1 and rng.random() < 0.5 else _width_change(rng, c)
    return {"kind": "mbconv", "input": [n, c, h, w], "out_channels": cout,
            "expand": rng.choices((1, 2, 2.5, 3, 4, 4.5, 5, 6),
                                  weights=(3.5, 1, 0.7, 3, 2, 0.6, 1, 4))[0],
            "kernel": _kernel(rng), "stride": stride, "se": rng.random() < 0.35,
            "activation": rng.choices(("relu6", "relu", "hswish"), weights=(0.6, 0.2, 0.2))[0]}


def _sepconv(rng):
    n, c, h, w = _shape(rng)
    return {"kind": "sepconv", "input": [n, c, h, w], "out_channels": _width_change(rng, c),
            "kernel": rng.choice((3, 5)), "stride": _stride(rng, h), "repeats": rng.choice((1, 2)),
            "dilation": 2 if rng.random() < 0.3 else 1}


def _elementwise(kind):
    def draw(rng):
        shape = _shape(rng)
        if kind in ("relu", "relu6", "hswish") and rng.random() < 0.5:
            shape = _round_channels(shape[1] * rng.choice((3, 4, 6)), rng)
            shape = [1, shape, *_shape(rng)[2:]]
        spec = {"kind": kind, "input": shape}
        if kind == "add":
            spec["n_inputs"] = 2
        return spec
    return draw


def _pool(kind):
    def draw(rng):
        n, c, h, w = _shape(rng)
        h = w = max(h, 2)
        k = rng.choice((2, 3))
        return {"kind": kind, "input": [n, c, h, w], "kernel": k, "stride": 2,
                "padding": k // 2 if k == 3 else 0}
    return draw


def _global_avgpool(rng):
    return {"kind": "global_avgpool", "input": _shape(rng)}


def _fc(rng):
    fin = _round_channels(math.exp(rng.uniform(math.log(64), math.log(2048))), rng)
    return {"kind": "fc", "input": [1, fin],
            "out_features": rng.choice((10, 100, 1000, _round_channels(fin / 4, rng)))}


def _se(rng):
    n, c, h, w = _shape(rng)
    return {"kind": "se", "input": [n, max(c, 8), h, w], "reduction": 4,
            "gate": rng.choice(("sigmoid", "hsigmoid"))}


SAMPLERS: dict[str, Callable[[random.Random], dict]] = {
    "conv2d": _conv2d, "dwconv2d": _dwconv2d, "mbconv": _mbconv, "sepconv": _sepconv,
    "bn": _elementwise("bn"), "relu": _elementwise("relu"), "relu6": _elementwise("relu6"),
    "hswish": _elementwise("hswish"), "add": _elementwise("add"),
    "avgpool": _pool("avgpool"), "maxpool": _pool("maxpool"),
    "global_avgpool": _global_avgpool, "fc": _fc, "se": _se,
}


def parse_kinds(text: str | None) -> list[str]:
    """``"conv2d,mbconv"`` -> kinds, checked; ``None`` -> the default kinds."""
    if text is None:
        return list(DEFAULT_KINDS)
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds:
        raise UserError(f"--kinds is empty; give comma-separated op kinds such as "
                        f"{','.join(DEFAULT_KINDS)}")
    bad = [k for k in kinds if k not in SAMPLERS]
    if bad:
        raise UserError(f"cannot sample op kind(s) {', '.join(map(repr, bad))}; samplable kinds: "
                        f"{', '.join(SAMPLERS)}")
    out: list[str] = []
    for k in kinds:
        if k not in out:
            out.append(k)
    return out


def _acceptable(spec: OpSpec) -> bool:
    if spec.kind == "mbconv" and mbconv_mid_channels(spec.input[1], spec["expand"]) > MAX_MID_C:
        return False
    return spec.features()["macs"] <= MAX_MACS


def _draw_valid(draw: Callable[[random.Random], dict], rng: random.Random) -> OpSpec:
    for _ in range(1000):
        try:
            spec = parse_spec(draw(rng))
        except SpecError:
            continue
        if _acceptable(spec):
            return spec
    raise RuntimeError("the sampler could not draw a valid configuration")  # a bug


def sample_specs(n: int, kinds: Sequence[str] | None = None, seed: int = 0) -> list[OpSpec]:
    """``n`` distinct random configurations of every kind in ``kinds``, reproducibly."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"the number of sampled configurations must be a positive integer, "
                        f"got {n!r}")
    kinds = parse_kinds(",".join(kinds)) if kinds is not None else list(DEFAULT_KINDS)
    out: list[OpSpec] = []
    for kind in kinds:
        rng = random.Random(f"hwprof-sample:{seed}:{kind}")
        seen: set[str] = set()
        misses = 0
        while len(seen) < n:
            spec = _draw_valid(SAMPLERS[kind], rng)
            if spec.signature in seen:
                misses += 1
                if misses > 20 * n + 1000:
                    raise UserError(f"the {kind} prior has fewer than {n} distinct "
                                    f"configurations; ask for fewer")
                continue
            seen.add(spec.signature)
            out.append(spec)
    return out


# --------------------------------------------------------------------------- #
# neighbours, for adaptive sampling


def _nudge_channels(c: int, rng: random.Random) -> int:
    return _round_channels(c * math.exp(rng.uniform(-0.35, 0.35)), rng, MAX_MID_C)


def _nudge_side(s: int, rng: random.Random) -> int:
    return max(1, min(224, int(round(s * math.exp(rng.uniform(-0.3, 0.3))))))


def neighbour(spec: OpSpec, rng: random.Random) -> OpSpec | None:
    """A configuration close to ``spec`` (widths, size and one hyper-parameter moved).

    ``None`` when the move gave an invalid or too costly configuration.
    """
    d = spec.to_dict()
    if d["kind"] not in SAMPLERS:
        return None
    inp = list(d["input"])
    if len(inp) == 4:
        side = _nudge_side(inp[2], rng) if rng.random() < 0.5 else inp[2]
        inp = [inp[0], _nudge_channels(inp[1], rng), side, side]
    else:
        inp = [inp[0], _nudge_channels(inp[1], rng)]
    d["input"] = inp
    if "out_channels" in d:
        d["out_channels"] = _nudge_channels(d["out_channels"], rng)
    if "padding" in d and d["kind"] not in ("avgpool", "maxpool"):
        d.pop("padding")  # back to "same" for the new kernel
    r = rng.random()
    if "kernel" in d and d["kind"] not in ("avgpool", "maxpool") and r < 0.3:
        d["kernel"] = rng.choice((1, 3, 5, 7) if d["kind"] == "conv2d" else (3, 5, 7))
    elif "expand" in d and r < 0.5:
        d["expand"] = rng.choice((1, 2, 2.5, 3, 4, 6))
    elif "stride" in d and d["kind"] not in ("avgpool", "maxpool") and r < 0.6:
        d["stride"] = 1 if d["stride"] != 1 else 2
    if d["kind"] == "mbconv":
        d["residual"] = "auto"
        d["expand"] = max(1, d["expand"])
    if d["kind"] == "conv2d":
        d["groups"] = 1
    try:
        new = parse_spec(d)
    except SpecError:
        return None
    return new if _acceptable(new) else None
