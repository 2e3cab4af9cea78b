"""Per-kind feature vectors from an op spec's analytic features.

Every kind gets the same base block: log MACs, parameters, bytes read and
written, output elements, arithmetic intensity (MACs per byte), the input and
output shape (log channels and sides), kernel, stride, groups and how much of
the input is padding. Kinds add what
their cost depends on: an MBConv block the MACs of its expansion, depthwise
and projection convolutions, its expanded width and its flags (SE, hswish,
residual), its SE gate's weights and traffic and the bytes each kind of part
moves; a convolution the GEMM it runs as, how its channels align to the blocks of
vectorised kernels and whether they are a large power of two (cache-set aliasing); a
depthwise conv its channel multiplier; and so on.

Counts enter as ``log1p`` so a linear model on these features is a power law
in the raw quantities; trees do not care about the monotone transform.
Every spec of one kind yields the same feature names in the same order.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hwprof.latency.specs import OpSpec, mbconv_mid_channels


def _l(x: float) -> float:
    return math.log1p(max(float(x), 0.0))


def _first(v) -> int:
    if v is None:
        return 0
    return int(v if isinstance(v, int) else v[0])


def _pad_ratio(spec: OpSpec) -> float:
    """Padded input area over the input area: how much of the work reads zeros."""
    pad = spec.get("padding")
    if pad is None or len(spec.input) != 4:
        return 0.0
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    h, w = spec.input[2], spec.input[3]
    return math.log((h + 2 * ph) * (w + 2 * pw) / (h * w))


def _base(spec: OpSpec) -> dict[str, float]:
    f = spec.features()
    inp, out = spec.input, spec.output_shape
    moved = f["bytes_read"] + f["bytes_written"]
    c_in = inp[1] if len(inp) > 1 else 1
    side_in = inp[2] if len(inp) == 4 else 1
    c_out = out[1] if len(out) > 1 else 1
    side_out = out[2] if len(out) == 4 else 1
    return {
        "log_macs": _l(f["macs"]), "log_params": _l(f["params"]),
        "log_bytes_read": _l(f["bytes_read"]), "log_bytes_written": _l(f["bytes_written"]),
        "log_out_elements": _l(f["out_elements"]),
        "log_intensity": _l(f["macs"] / moved if moved else 0.0),
        "log_batch": _l(inp[0]), "log_in_channels": _l(c_in), "log_in_side": _l(side_in),
        "log_out_channels": _l(c_out), "log_out_side": _l(side_out),
        "kernel": float(_first(spec.get("kernel"))), "stride": float(_first(spec.get("stride"))),
        "log_pad_ratio": _pad_ratio(spec),
    }


def _gemm(prefix: str, m: float, k: float, n: float) -> dict[str, float]:
    """A convolution as the matrix product it runs as: (M x K) @ (K x N)."""
    return {f"log_{prefix}_m": _l(m), f"log_{prefix}_k": _l(k), f"log_{prefix}_n": _l(n),
            f"log_{prefix}_min_dim": _l(min(m, k, n))}


def _conv_gemm(prefix: str, spec: OpSpec) -> dict[str, float]:
    c, g = spec.input[1], spec.get("groups", 1)
    out = spec.output_shape
    kh = _first(spec["kernel"])
    kk = kh * (spec["kernel"][1] if isinstance(spec["kernel"], list) else kh)
    feats = _gemm(prefix, out[1] / g, c / g * kk, out[2] * out[3])
    # im2col: a 1x1, stride-1 convolution reads its input as the matrix directly
    direct = kk == 1 and _first(spec["stride"]) == 1
    feats[f"log_{prefix}_im2col"] = 0.0 if direct else _l(c / g * kk * out[2] * out[3])
    return feats


def _twos(channels: float) -> int:
    """How many times 2 divides ``channels`` (0 for 0)."""
    c = int(channels)
    return (c & -c).bit_length() - 1 if c > 0 else 0


def _alignment(channels: float) -> float:
    """How many times 2 divides ``channels`` (capped at 5, i.e. 32): whether a runtime's
    blocked kernels (8 floats on AVX2, 16 on AVX-512) take the layer as it is or fall back
    to a slower path. ONNX Runtime's NCHWc convolutions need whole blocks."""
    return float(min(_twos(channels), 5))


def _stride_aliasing(channels: float) -> float:
    """How many times 2 divides ``channels`` beyond 64 (0 up to a multiple of 64, 3 for
    512): a leading dimension of 256 floats or more in whole powers of two maps a GEMM's
    rows onto the same few cache sets. Measured on nnabla's CPU 1x1 convolutions
    (2026-12-05, the EPYC VM, 120/128/136 -> 480..544 channels): 512 output channels ran
    at 9.2-9.5 GMAC/s at 56x56 and 10.6-10.9 at 28x28 against 12.0-12.4 for 480, 496, 528
    and 544, whatever the input width."""
    return float(max(_twos(channels) - 6, 0))


def _conv2d(spec: OpSpec) -> dict[str, float]:
    g = spec["groups"]
    return {"log_groups": _l(g), "dilation": float(_first(spec["dilation"])),
            "pointwise": float(_first(spec["kernel"]) == 1), **_conv_gemm("gemm", spec),
            "in_align": _alignment(spec.input[1] // g),
            "out_align": _alignment(spec.output_shape[1] // g),
            "in_aliasing": _stride_aliasing(spec.input[1] // g),
            "out_aliasing": _stride_aliasing(spec.output_shape[1] // g)}


def _dwconv2d(spec: OpSpec) -> dict[str, float]:
    out = spec.output_shape
    kh = _first(spec["kernel"])
    return {"multiplier": float(spec["multiplier"]), "dilation": float(_first(spec["dilation"])),
            "log_out_plane": _l(out[2] * out[3]), "log_taps": _l(kh * kh),
            "aliasing": _stride_aliasing(out[1])}


MBCONV_PART_KINDS = ("conv2d", "dwconv2d", "bn", "relu", "relu6", "hswish", "se", "add")


def _mbconv(spec: OpSpec) -> dict[str, float]:
    c = spec.input[1]
    mid = mbconv_mid_channels(c, spec["expand"])
    parts = {"expand_macs": 0, "dw_macs": 0, "project_macs": 0, "elementwise_bytes": 0,
             "se_macs": 0, "se_params": 0, "se_bytes": 0}
    # the traffic of each kind of part: the block's memory-bound steps by kind
    moved = dict.fromkeys(MBCONV_PART_KINDS, 0.0)
    seen_dw = False
    gemms: dict[str, float] = {}
    children = spec.children()
    for child in children:
        f = child.features()
        if child.kind in moved:
            moved[child.kind] += f["bytes_read"] + f["bytes_written"]
        if child.kind == "conv2d":
            name = "project" if seen_dw else "expand"
            parts[f"{name}_macs"] += f["macs"]
            gemms.update(_conv_gemm(name, child))
        elif child.kind == "dwconv2d":
            parts["dw_macs"] += f["macs"]
            seen_dw = True
        elif child.kind == "se":
            # its two FC layers read mid x mid/4 weights each: tens of MB in wide late
            # blocks, more than the caches hold, so the gate is memory-bound there
            parts["se_macs"] += f["macs"]
            parts["se_params"] += f["params"]
            parts["se_bytes"] += f["bytes_read"] + f["bytes_written"]
        else:
            parts["elementwise_bytes"] += f["bytes_read"] + f["bytes_written"]
    if "log_expand_m" not in gemms:  # expand 1: no expansion convolution
        gemms.update({k.replace("project", "expand"): 0.0 for k in
                      _gemm("project", 1, 1, 1)} | {"log_expand_im2col": 0.0})
    out = {f"log_{k}": _l(v) for k, v in parts.items()}
    out.update({f"log_{k}_part_bytes": _l(v) for k, v in moved.items()})
    out.update(sorted(gemms.items()))
    out.update({"in_aliasing": _stride_aliasing(c), "mid_aliasing": _stride_aliasing(mid),
                "out_aliasing": _stride_aliasing(spec.output_shape[1])})
    out.update({"expand": float(spec["expand"]), "log_mid_channels": _l(mid),
                "se": float(spec["se"]), "hswish": float(spec["activation"] == "hswish"),
                "residual": float(spec["residual"]), "n_parts": float(len(children))})
    return out


def _sepconv(spec: OpSpec) -> dict[str, float]:
    return {"repeats": float(spec["repeats"]), "dilation": float(_first(spec["dilation"]))}


def _se(spec: OpSpec) -> dict[str, float]:
    return {"log_reduction": _l(spec["reduction"]), "hsigmoid": float(spec["gate"] == "hsigmoid")}


def _nary(spec: OpSpec) -> dict[str, float]:
    return {"n_inputs": float(spec["n_inputs"])}


def _fc(spec: OpSpec) -> dict[str, float]:
    return {"bias": float(spec["bias"])}


def _sequence(spec: OpSpec) -> dict[str, float]:
    return {"log_n_ops": _l(len(spec["ops"]))}


_EXTRA = {"conv2d": _conv2d, "dwconv2d": _dwconv2d, "mbconv": _mbconv, "sepconv": _sepconv,
          "se": _se, "add": _nary, "concat": _nary, "fc": _fc, "sequence": _sequence}


def spec_features(spec: OpSpec) -> dict[str, float]:
    """The named features of one spec (names depend only on its kind)."""
    feats = _base(spec)
    extra = _EXTRA.get(spec.kind)
    if extra is not None:
        feats.update(extra(spec))
    return feats


def feature_names(kind_example: OpSpec) -> list[str]:
    return list(spec_features(kind_example))


def feature_matrix(specs: Sequence[OpSpec], names: Sequence[str] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """(rows x features) for specs of one kind, in the order of ``names``."""
    if not specs:
        raise ValueError("no specs to featurise")
    kinds = {s.kind for s in specs}
    if len(kinds) != 1:
        raise ValueError(f"feature_matrix takes specs of one kind, got {sorted(kinds)}")
    dicts = [spec_features(s) for s in specs]
    names = list(names) if names is not None else list(dicts[0])
    x = np.array([[d[n] for n in names] for d in dicts], dtype=float)
    return x, names
