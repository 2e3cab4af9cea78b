"""Op specs: the identity of one measurable operation.

An op spec is a small JSON object (``kind``, ``input`` in NCHW, hyper-parameters).
:func:`parse_spec` validates it, fills in the documented defaults and returns an
:class:`OpSpec` whose canonical JSON (sorted keys, no whitespace, defaults made
explicit, ``"same"`` padding resolved to numbers) is hashed into the stable
``signature`` that keys latency tables. Two specs that describe the same
operation hash the same, whatever their key order or whether a default was
written out.

Every kind knows its output shape and its analytic features (MACs, parameters,
bytes read and written). Composite kinds (``mbconv``, ``sepconv``, ``sequence``)
are defined by the primitive specs they decompose into, so their features are
the sums of their parts.

Sizes are checked before anything is allocated: every feature must fit the
table's int64 columns, and the tensors one op reads and writes (input, output,
parameters: ``bytes_read + bytes_written``) must fit the per-op memory limit,
:data:`MAX_OP_BYTES` (2 GiB) unless the environment variable
``HWPROF_MAX_OP_BYTES`` sets another (bytes, or with a K/M/G suffix, binary).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from hwprof.errors import SpecError

DTYPE_BYTES = {"float32": 4, "float16": 2}
ACTIVATIONS = ("relu", "relu6", "hswish")
SE_GATES = ("sigmoid", "hsigmoid")
FEATURE_NAMES = ("macs", "params", "bytes_read", "bytes_written", "out_elements")

# Field defaults shared by every kind; documented in tables/SCHEMA.md.
COMMON_DEFAULTS = {"dtype": "float32", "layout": "NCHW"}
INT64_MAX = 2**63 - 1
MAX_OP_BYTES = 2 * 1024**3  # per op: input + output + parameters; see max_op_bytes()
MAX_OP_BYTES_ENV = "HWPROF_MAX_OP_BYTES"


# --------------------------------------------------------------------------- #
# small validators


def _fail(kind: str, msg: str) -> SpecError:
    return SpecError(f"{kind}: {msg}")


def _pos_int(kind: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(kind, f"'{name}' must be an integer >= {minimum}, got {value!r}")
    return value


def _pair(kind: str, name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_pos_int(kind, name, value[0], minimum), _pos_int(kind, name, value[1], minimum))
    if isinstance(value, int) and not isinstance(value, bool):
        v = _pos_int(kind, name, value, minimum)
        return (v, v)
    raise _fail(kind, f"'{name}' must be an integer or [h, w], got {value!r}")


def _canon_pair(p: tuple[int, int]) -> int | list[int]:
    return p[0] if p[0] == p[1] else [p[0], p[1]]


def _shape(kind: str, value: Any, ranks: tuple[int, ...] = (4,)) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) not in ranks:
        want = " or ".join(f"{r} integers" for r in ranks)
        raise _fail(kind, f"'input' must be a list of {want} (NCHW), got {value!r}")
    return [_pos_int(kind, "input", v) for v in value]


def _choice(kind: str, name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise _fail(kind, f"'{name}' must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _bool(kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(kind, f"'{name}' must be true or false, got {value!r}")
    return value


def _number(kind: str, name: str, value: Any, minimum: float) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise _fail(kind, f"'{name}' must be a number >= {minimum}, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# --------------------------------------------------------------------------- #
# per-kind canonicalisation: each returns the canonical dict (without common
# fields) and raises SpecError with what was expected.


def _spatial(kind: str, raw: dict, out: dict, *, kernel_default=None, stride_default=1,
             padding_default="same", dilation: bool = True) -> None:
    k = _pair(kind, "kernel", raw.get("kernel", kernel_default)) if (
        "kernel" in raw or kernel_default is not None) else None
    if k is None:
        raise _fail(kind, "'kernel' is required (an integer or [h, w])")
    s = _pair(kind, "stride", raw.get("stride", stride_default if stride_default else k))
    d = _pair(kind, "dilation", raw.get("dilation", 1)) if dilation else (1, 1)
    pad = raw.get("padding", padding_default)
    if pad == "same":
        p = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
    elif pad == "valid":
        p = (0, 0)
    else:
        p = _pair(kind, "padding", pad, minimum=0)
    n, c, h, w = out["input"]
    ho, wo = conv_out(h, k[0], s[0], p[0], d[0]), conv_out(w, k[1], s[1], p[1], d[1])
    if ho < 1 or wo < 1:
        raise _fail(kind, f"kernel {list(k)} with padding {list(p)} does not fit input {h}x{w}")
    out["kernel"], out["stride"], out["padding"] = _canon_pair(k), _canon_pair(s), _canon_pair(p)
    if dilation:
        out["dilation"] = _canon_pair(d)


def _canon_conv2d(raw: dict, out: dict) -> None:
    c = out["input"][1]
    out["out_channels"] = _pos_int("conv2d", "out_channels", raw.get("out_channels"))
    out["groups"] = g = _pos_int("conv2d", "groups", raw.get("groups", 1))
    if c % g or out["out_channels"] % g:
        raise _fail("conv2d", f"'groups' ({g}) must divide in channels ({c}) and out_channels "
                              f"({out['out_channels']})")
    out["bias"] = _bool("conv2d", "bias", raw.get("bias", False))
    _spatial("conv2d", raw, out)


def _canon_dwconv2d(raw: dict, out: dict) -> None:
    out["multiplier"] = _pos_int("dwconv2d", "multiplier", raw.get("multiplier", 1))
    out["bias"] = _bool("dwconv2d", "bias", raw.get("bias", False))
    _spatial("dwconv2d", raw, out)


def _canon_pool(kind: str) -> Callable[[dict, dict], None]:
    def canon(raw: dict, out: dict) -> None:
        _spatial(kind, raw, out, stride_default=None, padding_default=0, dilation=False)
    return canon


def _canon_fc(raw: dict, out: dict) -> None:
    out["out_features"] = _pos_int("fc", "out_features", raw.get("out_features"))
    out["bias"] = _bool("fc", "bias", raw.get("bias", True))


def _canon_nary(kind: str) -> Callable[[dict, dict], None]:
    def canon(raw: dict, out: dict) -> None:
        out["n_inputs"] = _pos_int(kind, "n_inputs", raw.get("n_inputs", 2), minimum=2)
    return canon


def _canon_se(raw: dict, out: dict) -> None:
    out["reduction"] = _pos_int("se", "reduction", raw.get("reduction", 4))
    out["gate"] = _choice("se", "gate", raw.get("gate", "sigmoid"), SE_GATES)
    if out["input"][1] // out["reduction"] < 1:
        raise _fail("se", f"'reduction' {out['reduction']} leaves no channels of {out['input'][1]}")


def _canon_mbconv(raw: dict, out: dict) -> None:
    n, c, h, w = out["input"]
    out["out_channels"] = _pos_int("mbconv", "out_channels", raw.get("out_channels"))
    out["expand"] = _number("mbconv", "expand", raw.get("expand", 6), 1)
    out["se"] = _bool("mbconv", "se", raw.get("se", False))
    out["activation"] = _choice("mbconv", "activation", raw.get("activation", "relu6"), ACTIVATIONS)
    _spatial("mbconv", raw, out, kernel_default=3, dilation=False)
    can_res = out["stride"] == 1 and out["out_channels"] == c
    res = raw.get("residual", "auto")
    if res == "auto":
        res = can_res
    elif _bool("mbconv", "residual", res) and not can_res:
        raise _fail("mbconv", "'residual' needs stride 1 and out_channels == in channels")
    out["residual"] = res


def _canon_sepconv(raw: dict, out: dict) -> None:
    out["out_channels"] = _pos_int("sepconv", "out_channels", raw.get("out_channels"))
    out["repeats"] = _pos_int("sepconv", "repeats", raw.get("repeats", 2))
    if out["repeats"] > 2:
        raise _fail("sepconv", f"'repeats' must be 1 (dilated conv) or 2 (DARTS sep conv), "
                               f"got {out['repeats']}")
    _spatial("sepconv", raw, out, kernel_default=3)


def _canon_sequence(raw: dict, out: dict) -> None:
    ops = raw.get("ops")
    if not isinstance(ops, list) or not ops:
        raise _fail("sequence", "'ops' must be a non-empty list of op specs")
    parsed = []
    shape = out["input"]
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise _fail("sequence", f"ops[{i}] must be an object, got {op!r}")
        op = dict(op)
        op.setdefault("input", shape)
        spec = parse_spec(op)
        if spec.input != shape:
            raise _fail("sequence", f"ops[{i}] ({spec.kind}) takes input {spec.input} but the "
                                    f"previous op gives {shape}")
        shape = spec.output_shape
        parsed.append(spec.to_dict())
    out["ops"] = parsed


def _simple(raw: dict, out: dict) -> None:
    pass


# --------------------------------------------------------------------------- #
# output shapes and features


def _out_spatial(d: dict) -> tuple[int, int]:
    _, _, h, w = d["input"]
    k, s, dil = (_pair("", "", d.get(f, 1)) for f in ("kernel", "stride", "dilation"))
    p = _pair("", "", d["padding"], minimum=0)
    return conv_out(h, k[0], s[0], p[0], dil[0]), conv_out(w, k[1], s[1], p[1], dil[1])


def _prod(xs: Iterable[int]) -> int:
    r = 1
    for x in xs:
        r *= x
    return r


def _shape_of(d: dict) -> list[int]:
    kind, inp = d["kind"], d["input"]
    n, c = inp[0], inp[1]
    if kind in ("conv2d", "mbconv", "sepconv"):
        return [n, d["out_channels"], *_out_spatial(d)]
    if kind == "dwconv2d":
        return [n, c * d["multiplier"], *_out_spatial(d)]
    if kind in ("avgpool", "maxpool"):
        return [n, c, *_out_spatial(d)]
    if kind == "global_avgpool":
        return [n, c, 1, 1]
    if kind == "fc":
        return [n, d["out_features"]]
    if kind == "concat":
        return [n, c * d["n_inputs"], *inp[2:]]
    if kind == "sequence":
        return list(OpSpec(d["ops"][-1], _trusted=True).output_shape)
    return list(inp)  # bn, activations, add, se keep the shape


def _primitive_features(d: dict, out_shape: list[int]) -> dict[str, int]:
    kind, inp = d["kind"], d["input"]
    b = DTYPE_BYTES[d["dtype"]]
    n_in, n_out = _prod(inp), _prod(out_shape)
    macs = params = 0
    extra_in = 0
    if kind in ("conv2d", "dwconv2d"):
        k = _pair("", "", d["kernel"])
        c = inp[1]
        groups = d.get("groups", c if kind == "dwconv2d" else 1)
        cout = out_shape[1]
        per_out = (c // groups) * k[0] * k[1]
        macs = n_out * per_out
        params = cout * per_out + (cout if d["bias"] else 0)
    elif kind == "bn":
        macs, params = n_in, 4 * inp[1]
    elif kind in ("avgpool", "maxpool"):
        k = _pair("", "", d["kernel"])
        macs = n_out * k[0] * k[1]
    elif kind == "global_avgpool":
        macs = n_in
    elif kind == "fc":
        fin = _prod(inp[1:])
        macs = inp[0] * fin * d["out_features"]
        params = fin * d["out_features"] + (d["out_features"] if d["bias"] else 0)
    elif kind in ("add", "concat"):
        extra_in = n_in * (d["n_inputs"] - 1)
        macs = n_in * (d["n_inputs"] - 1) if kind == "add" else 0
    elif kind == "se":
        n, c = inp[0], inp[1]
        r = c // d["reduction"]
        params = c * r + r + r * c + c
        macs = n_in + n * (c * r + r * c) + n_in  # pool, two fc, rescale
    elif kind == "hswish":
        macs = n_in
    return {"macs": macs, "params": params, "bytes_read": b * (n_in + extra_in + params),
            "bytes_written": b * n_out, "out_elements": n_out}


def _children(d: dict) -> list[dict]:
    """Primitive decomposition of a composite spec (canonical dicts)."""
    kind, inp = d["kind"], d["input"]
    common = {"dtype": d["dtype"], "layout": d["layout"]}

    def mk(k, shape, **kw):
        return parse_spec({"kind": k, "input": shape, **common, **kw})

    parts: list[OpSpec] = []
    if kind == "sequence":
        return [dict(op) for op in d["ops"]]
    if kind == "mbconv":
        n, c, h, w = inp
        mid = mbconv_mid_channels(c, d["expand"])
        act = d["activation"]
        x = inp
        if d["expand"] != 1:
            parts += [mk("conv2d", x, out_channels=mid, kernel=1)]
            x = parts[-1].output_shape
            parts += [mk("bn", x), mk(act, x)]
        parts += [mk("dwconv2d", x, kernel=d["kernel"], stride=d["stride"], padding=d["padding"])]
        x = parts[-1].output_shape
        parts += [mk("bn", x), mk(act, x)]
        if d["se"]:
            parts += [mk("se", x, gate="hsigmoid" if act == "hswish" else "sigmoid")]
        parts += [mk("conv2d", x, out_channels=d["out_channels"], kernel=1)]
        x = parts[-1].output_shape
        parts += [mk("bn", x)]
        if d["residual"]:
            parts += [mk("add", x)]
    elif kind == "sepconv":
        c = inp[1]
        x = inp
        for r in range(d["repeats"]):
            last = r == d["repeats"] - 1
            cout = d["out_channels"] if last else c
            stride = d["stride"] if r == 0 else 1
            parts += [mk("relu", x),
                      mk("dwconv2d", x, kernel=d["kernel"], stride=stride, dilation=d["dilation"],
                         padding=d["padding"])]
            x = parts[-1].output_shape
            parts += [mk("conv2d", x, out_channels=cout, kernel=1)]
            x = parts[-1].output_shape
            parts += [mk("bn", x)]
    return [p.to_dict() for p in parts]


def mbconv_mid_channels(in_channels: int, expand: float) -> int:
    """Channels after the 1x1 expansion of an MBConv block."""
    return max(1, int(round(in_channels * expand)))


# --------------------------------------------------------------------------- #
# the registry of kinds

_KINDS: dict[str, tuple[Callable[[dict, dict], None], tuple[str, ...], tuple[int, ...], str]] = {
    # kind: (canonicaliser, allowed fields, input ranks, one-line help)
    "conv2d": (_canon_conv2d, ("out_channels", "kernel", "stride", "padding", "dilation",
                               "groups", "bias"), (4,), "2-D convolution"),
    "dwconv2d": (_canon_dwconv2d, ("kernel", "stride", "padding", "dilation", "multiplier",
                                   "bias"), (4,), "depthwise 2-D convolution"),
    "bn": (_simple, (), (4,), "batch normalisation (inference)"),
    "relu": (_simple, (), (2, 4), "ReLU"),
    "relu6": (_simple, (), (2, 4), "ReLU6"),
    "hswish": (_simple, (), (2, 4), "hard swish x*relu6(x+3)/6"),
    "avgpool": (_canon_pool("avgpool"), ("kernel", "stride", "padding"), (4,), "average pooling"),
    "maxpool": (_canon_pool("maxpool"), ("kernel", "stride", "padding"), (4,), "max pooling"),
    "global_avgpool": (_simple, (), (4,), "global average pooling to Nx C x1x1"),
    "fc": (_canon_fc, ("out_features", "bias"), (2, 4), "fully connected (affine)"),
    "add": (_canon_nary("add"), ("n_inputs",), (2, 4), "element-wise sum of n_inputs tensors"),
    "concat": (_canon_nary("concat"), ("n_inputs",), (4,), "channel concat of n_inputs tensors"),
    "se": (_canon_se, ("reduction", "gate"), (4,), "squeeze-and-excite"),
    "mbconv": (_canon_mbconv, ("out_channels", "expand", "kernel", "stride", "padding", "se",
                               "activation", "residual"), (4,),
               "MobileNetV2 inverted residual block"),
    "sepconv": (_canon_sepconv, ("out_channels", "kernel", "stride", "padding", "dilation",
                                 "repeats"), (4,), "DARTS separable conv"),
    "sequence": (_canon_sequence, ("ops",), (2, 4), "a chain of ops measured as one network"),
}
COMPOSITE_KINDS = ("mbconv", "sepconv", "sequence")


def kinds() -> dict[str, str]:
    """Names of every op kind with a one-line description."""
    return {k: v[3] for k, v in _KINDS.items()}


def kind_fields(kind: str) -> tuple[str, ...]:
    """The hyper-parameter fields a kind takes (besides input, dtype, layout)."""
    if kind not in _KINDS:
        raise SpecError(f"unknown op kind {kind!r}; expected one of: {', '.join(_KINDS)}")
    return _KINDS[kind][1]


class OpSpec:
    """A validated, canonical op spec. Immutable; compare by signature."""

    __slots__ = ("_d", "_json", "_sig", "_feats")

    def __init__(self, canonical: Mapping[str, Any], _trusted: bool = False):
        if not _trusted:
            canonical = parse_spec(canonical).to_dict()
        self._feats: dict[str, int] | None = None  # features(), computed once
        self._d = dict(canonical)
        self._json = json.dumps(self._d, sort_keys=True, separators=(",", ":"))
        self._sig = hashlib.sha256(self._json.encode()).hexdigest()[:16]

    kind = property(lambda self: self._d["kind"])
    input = property(lambda self: list(self._d["input"]))
    signature = property(lambda self: self._sig)

    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._d.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self._json)

    def canonical_json(self) -> str:
        return self._json

    @property
    def output_shape(self) -> list[int]:
        return _shape_of(self._d)

    def children(self) -> list[OpSpec]:
        """Primitive parts of a composite kind; empty for primitives."""
        if self.kind not in COMPOSITE_KINDS:
            return []
        return [OpSpec(c, _trusted=True) for c in _children(self._d)]

    def plan(self) -> dict[str, Any]:
        """What the agent builds: a primitive spec, or a ``chain`` of plans.

        Composites become chains of their primitive parts; an MBConv's
        residual ``add`` becomes the chain's ``residual`` flag (add the chain's
        input), so runtimes only ever build primitives.
        """
        if self.kind not in COMPOSITE_KINDS:
            return self.to_dict()
        if self.kind == "sequence":
            ops = [OpSpec(op, _trusted=True).plan() for op in self._d["ops"]]
        else:
            ops = [c.plan() for c in self.children() if c.kind != "add"]
        return {"kind": "chain", "input": self.input, "ops": ops,
                "residual": bool(self._d.get("residual", False))}

    def features(self) -> dict[str, int]:
        """Analytic features: MACs, params, bytes read/written, output elements.

        Bytes assume every tensor is read from and written to memory once
        (no fusion), so a composite's bytes are the sum of its parts'.
        """
        if self._feats is None:
            self._feats = self._features()
        return dict(self._feats)

    def _features(self) -> dict[str, int]:
        parts = self.children()
        if not parts:
            return _primitive_features(self._d, self.output_shape)
        total = dict.fromkeys(FEATURE_NAMES, 0)
        for p in parts:
            for k, v in p.features().items():
                total[k] += v
        total["out_elements"] = _prod(self.output_shape)
        return total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpSpec) and other._sig == self._sig

    def __hash__(self) -> int:
        return hash(self._sig)

    def __repr__(self) -> str:
        return f"OpSpec({self._json})"


def stored_specs(column: Iterable[str]) -> list[OpSpec]:
    """The specs of a table's ``spec`` column: canonical JSON that hwprof wrote, so trusted
    without validating each again."""
    return [OpSpec(json.loads(s), _trusted=True) for s in column]


def parse_spec(obj: Any) -> OpSpec:
    """Validate one op spec (a mapping or an :class:`OpSpec`) into canonical form."""
    if isinstance(obj, OpSpec):
        return obj
    if not isinstance(obj, Mapping):
        raise SpecError(f"an op spec must be a JSON object, got {type(obj).__name__}: {obj!r}")
    kind = obj.get("kind")
    if kind not in _KINDS:
        raise SpecError(f"unknown op kind {kind!r}; expected one of: {', '.join(_KINDS)}")
    canon, allowed, ranks, _ = _KINDS[kind]
    unknown = set(obj) - set(allowed) - {"kind", "input", *COMMON_DEFAULTS}
    if unknown:
        raise _fail(kind, f"unknown field(s) {sorted(unknown)}; {kind} takes "
                          f"{sorted(('input', *allowed, *COMMON_DEFAULTS))}")
    if "input" not in obj:
        raise _fail(kind, "'input' is required: the input shape as [N, C, H, W]")
    out: dict[str, Any] = {"kind": kind, "input": _shape(kind, obj["input"], ranks)}
    out["dtype"] = _choice(kind, "dtype", obj.get("dtype", "float32"), DTYPE_BYTES)
    out["layout"] = _choice(kind, "layout", obj.get("layout", "NCHW"), ("NCHW",))
    canon(dict(obj), out)
    spec = OpSpec(out, _trusted=True)
    _check_sizes(spec)
    return spec


def max_op_bytes() -> int:
    """The per-op memory limit: ``HWPROF_MAX_OP_BYTES`` when set, else :data:`MAX_OP_BYTES`."""
    text = os.environ.get(MAX_OP_BYTES_ENV, "").strip()
    if not text:
        return MAX_OP_BYTES
    scale = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}.get(text[-1].lower(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = 0
    if value < 1:
        raise SpecError(f"{MAX_OP_BYTES_ENV}={text!r} is not a size; write bytes, e.g. 4294967296 "
                        f"or 4G")
    return value


def workspace_bytes(spec: OpSpec) -> int:
    """The unfolded input (im2col) a CPU runtime keeps for each convolution of ``spec``: the
    whole input's channels x kernel taps x output pixels, grouped or not.

    nnabla holds it for as long as the op exists, so ops built together hold theirs all at
    once (2026-12-05, RSS of one op built alone): a k7 depthwise conv of 1x384x112x112 took
    938 MB where its tensors take 37 MB; a 3x3 conv 512 -> 512 at 56x56 86 MB with 1 group
    and 71 MB with 8 (its tensors 21 / 13 MB): the unfolded input is the same 58 MB. An
    adaptive dwconv2d build whose groups were cut by tensor bytes alone drove its agent to
    24 GB and the kernel's OOM killer.
    """
    parts = spec.children()
    if parts:
        return sum(workspace_bytes(p) for p in parts)
    if spec.kind not in ("conv2d", "dwconv2d"):
        return 0
    kh, kw = _pair("", "", spec["kernel"])
    n, c = spec.input[0], spec.input[1]
    out = spec.output_shape
    return n * c * kh * kw * out[2] * out[3] * DTYPE_BYTES[spec["dtype"]]


def _check_sizes(spec: OpSpec) -> None:
    """Refuse a spec whose features overflow int64 or whose tensors exceed the memory limit."""
    try:
        feats = spec.features()
    except SpecError as e:  # a composite's part is too large
        raise _fail(spec.kind, f"part {e}") from None
    big = [f"{k}={v}" for k, v in feats.items() if v > INT64_MAX]
    if big:
        raise _fail(spec.kind, f"too large: {', '.join(big)} overflow 64-bit integers "
                               f"(expected at most {INT64_MAX}); check the shape {spec.input}")
    used, limit = feats["bytes_read"] + feats["bytes_written"], max_op_bytes()
    if used > limit:
        raise _fail(spec.kind, f"too large: its input, output and parameters take "
                               f"{_size(used)} and one op may take at most {_size(limit)} "
                               f"(set {MAX_OP_BYTES_ENV} to allow more); input {spec.input}")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def load_specs(text: str, source: str = "ops file") -> list[OpSpec]:
    """Parse an ops file: a JSON array of specs, or JSON lines (one spec a line)."""
    stripped = text.strip()
    if not stripped:
        raise SpecError(f"{source} is empty; expected JSON lines or a JSON array of op specs")
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise SpecError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
        located = [(f"item {i + 1}", it) for i, it in enumerate(items)]
    else:
        located = []
        for ln, line in enumerate(stripped.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                located.append((f"line {ln}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise SpecError(f"{source} line {ln}: not valid JSON ({e.msg})") from None
    if not located:
        raise SpecError(f"{source} holds no op specs; expected JSON lines or a JSON array of "
                        f"at least one op spec")
    specs = []
    for where, item in located:
        try:
            specs.append(parse_spec(item))
        except SpecError as e:
            raise SpecError(f"{source} {where}: {e}") from None
    return specs


def read_ops_file(path: str | os.PathLike) -> list[OpSpec]:
    """The specs of an ops file on disk (UTF-8 JSON lines or a JSON array); a file that
    cannot be read or decoded is a one-line SpecError."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise SpecError(f"cannot read ops file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"ops file {path} is not UTF-8 text (byte {e.object[e.start]:#04x} at "
                        f"offset {e.start}); expected JSON lines or a JSON array of op "
                        f"specs") from None
    return load_specs(text, str(path))


def unique(specs: Iterable[OpSpec]) -> list[OpSpec]:
    """Specs in first-seen order with duplicates (same signature) removed."""
    seen: set[str] = set()
    out = []
    for s in specs:
        if s.signature not in seen:
            seen.add(s.signature)
            out.append(s)
    return out
