"""Space files: a search space written as YAML or JSON, parsed and validated.

The format is documented in ``docs/SPACES.md``. In short::

    format: hwprof-space/1            # optional
    description: ...
    params: {width_mult: 1.0, resolution: 224, divisor: 8}   # optional, overridable
    input: [1, 3, 224, 224]
    fused_fixed: false                # fixed layers as one op each (published LUT style)
    stem:   [{conv: {out: 32, kernel: 3, stride: 2}}, {mbconv: {out: 16, expand: 1}}]
    stages: [{out: 24, stride: 2, depth: [1, 4], se: false, act: relu6}, ...]
    candidates: [{mbconv: {expand: [3, 6], kernel: [3, 5, 7]}}]
    head:   [{conv: {out: 1280, kernel: 1}}, {classifier: {classes: 1000}}]

:func:`validate` checks a mapping and returns it normalised (every default
written out, lists where choices are allowed); a mistake is a one-line
:class:`~hwprof.errors.UserError` that names the file and the field, e.g.
``my.yaml: stages[2].stride: expected 1 or 2, got 3``. Validation is
idempotent: a normalised mapping validates to itself, so a space travels as its
normalised data (to worker processes, into arch files).

:func:`parse_ref` splits a space reference ``NAME_OR_PATH[:key=value,...]``
into the name or path and parameter overrides (``ofa-mbv3:resolution=192``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from hwprof.errors import UserError
from hwprof.latency.specs import ACTIVATIONS

FORMAT = "hwprof-space/1"
TOP_FIELDS = ("format", "name", "description", "references", "params", "input", "fused_fixed",
              "stem", "stages", "candidates", "head")
PARAMS = {"width_mult": 1.0, "resolution": None, "divisor": 8}
FIXED_KINDS = ("conv", "mbconv", "pool", "classifier")
CANDIDATE_KINDS = ("mbconv", "conv")
CONV_ACTS = (*ACTIVATIONS, "none")


class _Where:
    """The file and field a value came from, for one-line error messages."""

    def __init__(self, source: str, path: str = ""):
        self.source, self.path = source, path

    def __getitem__(self, key) -> "_Where":
        sub = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.path else str(key))
        return _Where(self.source, self.path + sub)

    def fail(self, msg: str) -> UserError:
        where = f"{self.path}: " if self.path else ""
        return UserError(f"{self.source}: {where}{msg}")


# --------------------------------------------------------------------------- #
# scalar checks


def _int(w: _Where, v: Any, minimum: int = 1, allowed: Iterable[int] | None = None) -> int:
    if allowed is not None:
        allowed = tuple(allowed)
        if isinstance(v, bool) or v not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise w.fail(f"expected {want}, got {v!r}")
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise w.fail(f"expected an integer >= {minimum}, got {v!r}")
    return v


def _num(w: _Where, v: Any, minimum: float, strict: bool = False) -> int | float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and (v > minimum if strict
                                                                       else v >= minimum)
    if not ok:
        raise w.fail(f"expected a number {'>' if strict else '>='} {minimum}, got {v!r}")
    return int(v) if float(v).is_integer() else float(v)


def _bool(w: _Where, v: Any) -> bool:
    if not isinstance(v, bool):
        raise w.fail(f"expected true or false, got {v!r}")
    return v


def _choice(w: _Where, v: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if v not in allowed:
        raise w.fail(f"expected one of {', '.join(allowed)}, got {v!r}")
    return v


def _mapping(w: _Where, v: Any, fields: Iterable[str], what: str) -> dict:
    if not isinstance(v, dict):
        raise w.fail(f"expected {what} (a mapping), got {type(v).__name__} {v!r}")
    fields = tuple(fields)
    unknown = sorted(str(k) for k in v if k not in fields)
    if unknown:
        raise w.fail(f"unknown field(s) {', '.join(unknown)}; expected some of "
                     f"{', '.join(fields)}")
    return v


def _list_of(w: _Where, v: Any, check, nonempty: bool = True) -> list:
    """A value or a list of values (choices), each checked; always a list."""
    items = v if isinstance(v, list) else [v]
    if nonempty and not items:
        raise w.fail("expected at least one value, got []")
    out = [check(w[i] if isinstance(v, list) else w, x) for i, x in enumerate(items)]
    if len(set(map(json.dumps, out))) != len(out):
        raise w.fail(f"lists a value twice: {v!r}")
    return out


def _one_key(w: _Where, v: Any, kinds: tuple[str, ...], what: str) -> tuple[str, Any]:
    if isinstance(v, str) and v in kinds:
        return v, {}
    if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in kinds:
        raise w.fail(f"expected {what}: a mapping with one key, one of {', '.join(kinds)}; "
                     f"got {v!r}")
    kind, body = next(iter(v.items()))
    return kind, {} if body is None else body


# --------------------------------------------------------------------------- #
# parts


def _params(w: _Where, v: Any) -> dict:
    v = _mapping(w, {} if v is None else v, PARAMS, "params")
    out = dict(PARAMS)
    if "width_mult" in v:
        out["width_mult"] = _num(w["width_mult"], v["width_mult"], 0, strict=True)
    if v.get("resolution") is not None:
        out["resolution"] = _int(w["resolution"], v["resolution"])
    if "divisor" in v:
        out["divisor"] = _int(w["divisor"], v["divisor"])
    return out


def _fixed_layer(w: _Where, v: Any) -> dict:
    kind, body = _one_key(w, v, FIXED_KINDS, "a fixed layer")
    w = w[kind]
    if kind == "pool":
        if body not in ({}, "global", {"type": "global"}):
            raise w.fail(f"only global average pooling is supported: write 'pool: global', "
                         f"got {body!r}")
        return {"pool": {"type": "global"}}
    if kind == "classifier":
        b = _mapping(w, body, ("classes", "bias"), "a classifier")
        if "classes" not in b:
            raise w.fail("'classes' is required (the number of outputs)")
        return {"classifier": {"classes": _int(w["classes"], b["classes"]),
                               "bias": _bool(w["bias"], b.get("bias", True))}}
    if kind == "conv":
        b = _mapping(w, body, ("out", "kernel", "stride", "bn", "act", "scale"), "a conv layer")
        out = {"kernel": _int(w["kernel"], b.get("kernel", 3)),
               "stride": _int(w["stride"], b.get("stride", 1), allowed=(1, 2)),
               "bn": _bool(w["bn"], b.get("bn", True)),
               "act": _choice(w["act"], b.get("act", "relu6"), CONV_ACTS)}
    else:
        b = _mapping(w, body, ("out", "expand", "kernel", "stride", "se", "act", "scale"),
                     "an mbconv layer")
        out = {"expand": _num(w["expand"], b.get("expand", 6), 1),
               "kernel": _int(w["kernel"], b.get("kernel", 3)),
               "stride": _int(w["stride"], b.get("stride", 1), allowed=(1, 2)),
               "se": _bool(w["se"], b.get("se", False)),
               "act": _choice(w["act"], b.get("act", "relu6"), ACTIVATIONS)}
    if "out" not in b:
        raise w.fail("'out' is required (output channels)")
    out = {"out": _int(w["out"], b["out"]), **out, "scale": _bool(w["scale"], b.get("scale", True))}
    return {kind: out}


def _candidate_group(w: _Where, v: Any) -> dict:
    kind, body = _one_key(w, v, CANDIDATE_KINDS, "a candidate group")
    w = w[kind]
    if kind == "mbconv":
        b = _mapping(w, body, ("expand", "kernel", "se", "act"), "mbconv candidates")
        out = {"expand": _list_of(w["expand"], b.get("expand", [6]), lambda ww, x: _num(ww, x, 1)),
               "kernel": _list_of(w["kernel"], b.get("kernel", [3]), _int)}
    else:
        b = _mapping(w, body, ("kernel", "se", "act", "bn"), "conv candidates")
        out = {"kernel": _list_of(w["kernel"], b.get("kernel", [3]), _int),
               "bn": _bool(w["bn"], b.get("bn", True))}
    # se/act: absent means "the stage's"; a list makes them a choice
    if b.get("se") is not None:
        out["se"] = _list_of(w["se"], b["se"], _bool)
    if b.get("act") is not None:
        out["act"] = _list_of(w["act"], b["act"],
                              lambda ww, x: _choice(ww, x, ACTIVATIONS))
    if kind == "conv" and out.get("se") not in (None, [False]):
        raise w["se"].fail("a plain conv candidate has no squeeze-excite; use mbconv")
    return {kind: out}


def _candidates(w: _Where, v: Any) -> list:
    if not isinstance(v, list) or not v:
        raise w.fail(f"expected a non-empty list of candidate groups (mbconv: or conv:), "
                     f"got {v!r}")
    return [_candidate_group(w[i], g) for i, g in enumerate(v)]


def _depth(w: _Where, v: Any) -> list[int]:
    if isinstance(v, list):
        if len(v) != 2:
            raise w.fail(f"expected a depth n or [min, max], got {v!r}")
        lo, hi = _int(w[0], v[0], minimum=0), _int(w[1], v[1])
        if lo > hi:
            raise w.fail(f"min {lo} is above max {hi}")
        return [lo, hi]
    n = _int(w, v)
    return [n, n]


def _stage(w: _Where, v: Any) -> dict:
    b = _mapping(w, v, ("name", "out", "stride", "depth", "se", "act", "candidates", "scale"),
                 "a stage")
    for req in ("out", "depth"):
        if req not in b:
            raise w.fail(f"'{req}' is required")
    out = {"out": _int(w["out"], b["out"]),
           "stride": _int(w["stride"], b.get("stride", 1), allowed=(1, 2)),
           "depth": _depth(w["depth"], b["depth"]),
           "se": _bool(w["se"], b.get("se", False)),
           "act": _choice(w["act"], b.get("act", "relu6"), ACTIVATIONS),
           "scale": _bool(w["scale"], b.get("scale", True))}
    if b.get("name") is not None:
        if not isinstance(b["name"], str) or not b["name"]:
            raise w["name"].fail(f"expected a non-empty string, got {b['name']!r}")
        out["name"] = b["name"]
    if b.get("candidates") is not None:
        out["candidates"] = _candidates(w["candidates"], b["candidates"])
    return out


def _input(w: _Where, v: Any) -> list[int]:
    if not isinstance(v, list) or len(v) != 4:
        raise w.fail(f"expected [N, C, H, W] (4 integers), got {v!r}")
    return [_int(w[i], x) for i, x in enumerate(v)]


# --------------------------------------------------------------------------- #
# whole files


def validate(data: Any, source: str = "space") -> dict:
    """``data`` checked and normalised; a :class:`UserError` naming the field otherwise."""
    w = _Where(source)
    d = _mapping(w, data, TOP_FIELDS, "a space")
    if d.get("format", FORMAT) != FORMAT:
        raise w["format"].fail(f"expected {FORMAT!r} (the only version this hwprof reads), "
                               f"got {d['format']!r}")
    for req in ("input", "stages", "head"):
        if req not in d:
            raise w.fail(f"'{req}' is required")
    out: dict[str, Any] = {"format": FORMAT}
    if d.get("name") is not None:
        out["name"] = str(d["name"])
    out["description"] = str(d.get("description") or "")
    refs = d.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise w["references"].fail(f"expected a list of strings, got {refs!r}")
    out["references"] = list(refs)
    out["params"] = _params(w["params"], d.get("params"))
    out["input"] = _input(w["input"], d["input"])
    out["fused_fixed"] = _bool(w["fused_fixed"], d.get("fused_fixed", False))
    for part in ("stem", "head"):
        v = d.get(part) or []
        if not isinstance(v, list):
            raise w[part].fail(f"expected a list of fixed layers, got {v!r}")
        out[part] = [_fixed_layer(w[part][i], x) for i, x in enumerate(v)]
    if not isinstance(d["stages"], list) or not d["stages"]:
        raise w["stages"].fail(f"expected a non-empty list of stages, got {d['stages']!r}")
    out["stages"] = [_stage(w["stages"][i], s) for i, s in enumerate(d["stages"])]
    if d.get("candidates") is not None:
        out["candidates"] = _candidates(w["candidates"], d["candidates"])
    else:
        missing = [i for i, s in enumerate(out["stages"]) if "candidates" not in s]
        if missing:
            raise w.fail(f"'candidates' is required: stages[{missing[0]}] lists none of its own")
    _check_head(w, out["head"])
    return out


def _check_head(w: _Where, head: list[dict]) -> None:
    kinds = [next(iter(h)) for h in head]
    if not kinds or kinds[-1] != "classifier":
        raise w["head"].fail("the head must end with a classifier: {classifier: {classes: N}}")
    if "classifier" in kinds[:-1]:
        i = kinds.index("classifier")
        raise w["head"][i].fail("only the last layer of the head may be the classifier")


def load_file(path: str | Path) -> dict:
    """Read a space file (``.yaml``/``.yml``/``.json``) and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no space file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read space file {path}: {getattr(e, 'strerror', None) or e}"
                        ) from None
    return validate(parse_text(text, str(path)), path.name)


def parse_text(text: str, source: str) -> Any:
    """JSON when ``source`` ends in .json, YAML otherwise (YAML also reads JSON)."""
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{source} is not valid JSON ({e.msg} at line {e.lineno})") from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        raise UserError("reading YAML space files needs pyyaml: pip install pyyaml") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        first = str(e).replace("\n", " ")
        raise UserError(f"{source} is not valid YAML ({first})") from None


def parse_ref(ref: str) -> tuple[str, dict[str, Any]]:
    """``NAME_OR_PATH[:key=value,...]`` -> (name or path, parameter overrides)."""
    if not isinstance(ref, str) or not ref:
        raise UserError(f"a space is a built-in name or a path, got {ref!r}")
    base, sep, tail = ref.rpartition(":")
    if not sep or "=" not in tail:
        return ref, {}
    params: dict[str, Any] = {}
    for item in tail.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in PARAMS:
            raise UserError(f"space {ref!r}: {item!r} is not a parameter; expected "
                            f"key=value with key one of {', '.join(PARAMS)}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            raise UserError(f"space {ref!r}: {key}={value!r} is not a number") from None
    return base, params


def with_params(data: dict, params: dict[str, Any], source: str) -> dict:
    """``data`` (normalised) with parameter overrides applied, validated again."""
    if not params:
        return data
    merged = dict(data)
    merged["params"] = {**data.get("params", {}), **params}
    return validate(merged, source)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, never more than 10 % below it
    (the rounding MobileNetV2/V3 and Once-for-All use for width multipliers)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new
