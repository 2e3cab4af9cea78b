"""Layer configurations of published CNNs: a held-out set for latency predictors.

A predictor fitted on hwprof's sampled configurations is judged here on the
layers people actually deploy (issue 17). Every layer below was written from
the architecture tables of the paper cited beside its network (batch 1,
float32, NCHW, the papers' input resolution unless said otherwise):

- ResNet-18 / ResNet-50: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual
  Learning for Image Recognition", CVPR 2016, Table 1. ResNet-50 is listed
  with the stride on the bottleneck's first 1x1 convolution, as in the paper,
  and on its 3x3 convolution (the "v1.5" most frameworks ship).
- MobileNetV1: A. Howard et al., "MobileNets: Efficient Convolutional Neural
  Networks for Mobile Vision Applications", arXiv:1704.04861, Table 1.
- MobileNetV2: M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear
  Bottlenecks", CVPR 2018, Table 2; at 224x224 and at 160x160 (one of the
  input resolutions, 96 to 224, the paper trades accuracy for latency with).
- MnasNet-A1: M. Tan et al., "MnasNet: Platform-Aware Neural Architecture
  Search for Mobile", CVPR 2019, Figure 7 (ReLU blocks).
- EfficientNet-B0: M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling
  for Convolutional Neural Networks", ICML 2019, Table 1.
- MobileNetV3-Large / -Small: A. Howard et al., "Searching for MobileNetV3",
  ICCV 2019, Tables 1 and 2.
- ShuffleNetV2 1.0x: N. Ma, X. Zhang, H.-T. Zheng, J. Sun, "ShuffleNet V2:
  Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018,
  Table 5 and Figure 3 (c, d).

Where hwprof's op kinds differ from a paper's, the nearest kind is used and
said so: EfficientNet's swish is measured as h-swish; an SE gate reduces the
block's expanded width by 4 (EfficientNet reduces its input width by 4,
MobileNetV3 rounds to a multiple of 8); a channel shuffle and the channel
split of ShuffleNetV2 are left out (they move memory only); MnasNet's first
"SepConv" block is an MBConv block with expansion 1. An MBConv block
(inverted residual) is listed whole *and* by its convolutions (the 1x1
expansion, the depthwise and the 1x1 projection), so the conv2d and dwconv2d
predictors are judged on those layers too.
"""

from __future__ import annotations

from typing import Iterable

from hwprof.latency.specs import OpSpec, mbconv_mid_channels, parse_spec

KINDS = ("conv2d", "dwconv2d", "mbconv")


def _conv(cin, cout, side, k=1, s=1):
    return {"kind": "conv2d", "input": [1, cin, side, side], "out_channels": cout,
            "kernel": k, "stride": s}


def _dw(c, side, k=3, s=1):
    return {"kind": "dwconv2d", "input": [1, c, side, side], "kernel": k, "stride": s}


def _mb(cin, cout, side, expand, k=3, s=1, se=False, act="relu6"):
    return {"kind": "mbconv", "input": [1, cin, side, side], "out_channels": cout,
            "expand": expand, "kernel": k, "stride": s, "se": se, "activation": act}


def _stages(cin, side, rows, act="relu6"):
    """MBConv blocks from (expand, out, repeats, first stride, kernel, se[, act]) rows."""
    out = []
    for row in rows:
        t, c, n, s, k, se = row[:6]
        a = row[6] if len(row) > 6 else act
        for i in range(n):
            stride = s if i == 0 else 1
            out.append(_mb(cin, c, side, t, k, stride, se, a))
            side = -(-side // stride)
            cin = c
    return out


def _resnet18():
    L = [_conv(3, 64, 224, 7, 2)]
    c, side = 64, 56
    for width in (64, 128, 256, 512):
        s = 1 if width == 64 else 2
        L += [_conv(c, width, side, 3, s)]
        if s == 2:
            L += [_conv(c, width, side, 1, 2)]  # the shortcut's projection
        side //= s
        L += [_conv(width, width, side, 3, 1)]
        c = width
    return L


def _resnet50():
    L = [_conv(3, 64, 224, 7, 2)]
    c, side = 64, 56
    for width, n in ((64, 3), (128, 4), (256, 6), (512, 3)):
        s = 1 if width == 64 else 2
        out = 4 * width
        L += [_conv(c, out, side, 1, s)]  # shortcut projection
        L += [_conv(c, width, side, 1, s), _conv(width, width, side // s, 3, 1)]  # paper: s on 1x1
        L += [_conv(c, width, side, 1, 1), _conv(width, width, side, 3, s)]  # v1.5: s on 3x3
        side //= s
        L += [_conv(width, out, side, 1, 1)]
        for _ in range(n - 1):
            L += [_conv(out, width, side, 1, 1), _conv(width, width, side, 3, 1),
                  _conv(width, out, side, 1, 1)]
        c = out
    return L


def _mobilenet_v1():
    L = [_conv(3, 32, 224, 3, 2)]
    side, c = 112, 32
    for cout, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
                    (1024, 2), (1024, 1)):
        L += [_dw(c, side, 3, s)]
        side = -(-side // s)
        L += [_conv(c, cout, side, 1, 1)]
        c = cout
    return L


def _mobilenet_v2(res=224):
    side = res // 2
    rows = [(1, 16, 1, 1, 3, False), (6, 24, 2, 2, 3, False), (6, 32, 3, 2, 3, False),
            (6, 64, 4, 2, 3, False), (6, 96, 3, 1, 3, False), (6, 160, 3, 2, 3, False),
            (6, 320, 1, 1, 3, False)]
    return [_conv(3, 32, res, 3, 2), *_stages(32, side, rows), _conv(320, 1280, res // 32, 1)]


def _mnasnet_a1():
    rows = [(1, 16, 1, 1, 3, False), (6, 24, 2, 2, 3, False), (3, 40, 3, 2, 5, True),
            (6, 80, 4, 2, 3, False), (6, 112, 2, 1, 3, True), (6, 160, 3, 2, 5, True),
            (6, 320, 1, 1, 3, False)]
    return [_conv(3, 32, 224, 3, 2), *_stages(32, 112, rows, "relu"), _conv(320, 1280, 7, 1)]


def _efficientnet_b0():
    rows = [(1, 16, 1, 1, 3, True), (6, 24, 2, 2, 3, True), (6, 40, 2, 2, 5, True),
            (6, 80, 3, 2, 3, True), (6, 112, 3, 1, 5, True), (6, 192, 4, 2, 5, True),
            (6, 320, 1, 1, 3, True)]
    return [_conv(3, 32, 224, 3, 2), *_stages(32, 112, rows, "hswish"), _conv(320, 1280, 7, 1)]


def _v3(cin, side, table):
    """MobileNetV3 bnecks from (kernel, expanded width, out, se, activation, stride) rows."""
    out = []
    for k, exp, c, se, act, s in table:
        out.append(_mb(cin, c, side, exp / cin, k, s, se, act))
        side = -(-side // s)
        cin = c
    return out


def _mobilenet_v3_large():
    re, hs = "relu", "hswish"
    table = [(3, 16, 16, False, re, 1), (3, 64, 24, False, re, 2), (3, 72, 24, False, re, 1),
             (5, 72, 40, True, re, 2), (5, 120, 40, True, re, 1), (5, 120, 40, True, re, 1),
             (3, 240, 80, False, hs, 2), (3, 200, 80, False, hs, 1),
             (3, 184, 80, False, hs, 1), (3, 184, 80, False, hs, 1),
             (3, 480, 112, True, hs, 1), (3, 672, 112, True, hs, 1),
             (5, 672, 160, True, hs, 2), (5, 960, 160, True, hs, 1), (5, 960, 160, True, hs, 1)]
    return [_conv(3, 16, 224, 3, 2), *_v3(16, 112, table), _conv(160, 960, 7, 1)]


def _mobilenet_v3_small():
    re, hs = "relu", "hswish"
    table = [(3, 16, 16, True, re, 2), (3, 72, 24, False, re, 2), (3, 88, 24, False, re, 1),
             (5, 96, 40, True, hs, 2), (5, 240, 40, True, hs, 1), (5, 240, 40, True, hs, 1),
             (5, 120, 48, True, hs, 1), (5, 144, 48, True, hs, 1),
             (5, 288, 96, True, hs, 2), (5, 576, 96, True, hs, 1), (5, 576, 96, True, hs, 1)]
    return [_conv(3, 16, 224, 3, 2), *_v3(16, 112, table), _conv(96, 576, 7, 1)]


def _shufflenet_v2():
    L = [_conv(3, 24, 224, 3, 2)]
    cin, side = 24, 56  # after the 3x3 max pooling
    for cout, n in ((116, 4), (232, 8), (464, 4)):
        half = cout // 2
        # the downsampling unit: both branches see the whole input
        L += [_dw(cin, side, 3, 2), _conv(cin, half, side // 2, 1, 1),
              _conv(cin, half, side, 1, 1), _dw(half, side, 3, 2),
              _conv(half, half, side // 2, 1, 1)]
        side //= 2
        # the basic unit works on half the channels (the other half is split off)
        L += [_conv(half, half, side, 1, 1), _dw(half, side, 3, 1)] * (n - 1)
        cin = cout
    return L + [_conv(464, 1024, 7, 1)]


NETWORKS = {
    "resnet18": _resnet18, "resnet50": _resnet50, "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2, "mobilenet_v2_160": lambda: _mobilenet_v2(160),
    "mnasnet_a1": _mnasnet_a1, "efficientnet_b0": _efficientnet_b0,
    "mobilenet_v3_large": _mobilenet_v3_large, "mobilenet_v3_small": _mobilenet_v3_small,
    "shufflenet_v2": _shufflenet_v2,
}


def _with_parts(spec: OpSpec) -> list[OpSpec]:
    """An MBConv block and its convolutions (expansion, depthwise, projection)."""
    if spec.kind != "mbconv":
        return [spec]
    return [spec] + [OpSpec(c, _trusted=True) if isinstance(c, dict) else c
                     for c in (parse_spec(p) for p in spec.children())
                     if c.kind in ("conv2d", "dwconv2d")]


def real_layers(networks: Iterable[str] | None = None,
                kinds: Iterable[str] = KINDS) -> list[tuple[str, OpSpec]]:
    """``(network, spec)`` for every distinct layer of ``kinds`` (first network that has it)."""
    from hwprof.errors import UserError

    names = list(networks) if networks is not None else list(NETWORKS)
    bad = [n for n in names if n not in NETWORKS]
    if bad:
        raise UserError(f"unknown network(s) {', '.join(map(repr, bad))}; known: "
                        f"{', '.join(NETWORKS)}")
    kinds = set(kinds)
    seen: set[str] = set()
    out: list[tuple[str, OpSpec]] = []
    for name in names:
        for raw in NETWORKS[name]():
            for spec in _with_parts(parse_spec(raw)):
                if spec.kind in kinds and spec.signature not in seen:
                    seen.add(spec.signature)
                    out.append((name, spec))
    return out


def networks_of(signatures: Iterable[str]) -> dict[str, list[str]]:
    """signature -> the networks (of :data:`NETWORKS`) that have that layer."""
    wanted = set(signatures)
    out: dict[str, list[str]] = {}
    for name, build in NETWORKS.items():
        for raw in build():
            for spec in _with_parts(parse_spec(raw)):
                if spec.signature in wanted and name not in out.setdefault(spec.signature, []):
                    out[spec.signature].append(name)
    return out


def check_expand(cin: int, expand: float, mid: int) -> bool:
    """True when ``expand`` gives the paper's expanded width ``mid`` (used by the tests)."""
    return mbconv_mid_channels(cin, expand) == mid
