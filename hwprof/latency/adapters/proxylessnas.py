"""ProxylessNAS / Once-for-All latency lookup tables (yaml) to and from hwprof rows.

A LUT is a yaml mapping from a layer key to ``{count, mean, var}`` (ProxylessNAS)
or ``{count, mean, std}`` (Once-for-All), in milliseconds. Keys are ``-``-joined
fields after a layer type::

    expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0
    expanded_conv-input:56x56x24-output:56x56x24-expand:72-kernel:3-stride:1-idskip:1-se:0-hs:1
    Conv-input:224x224x3-output:112x112x32          first conv (3x3) + BN + act
    Conv_1-input:7x7x320-output:7x7x1280            1x1 conv + BN + act (feature mix / final expand)
    AvgPool2D-input:7x7x960-output:1x1x960          OFA MobileNetV3 global average pool
    Conv_2-input:1x1x960-output:1x1x1280            OFA MobileNetV3 feature mix: 1x1 conv + act
    Logits-input:7x7x1280-output:1000               global average pool + classifier

Shapes are H x W x C. Keys with ``se``/``hs`` fields are the Once-for-All form,
whose ``expand`` is the middle channel count (hwprof's ``expand`` is the ratio
``mid / C``). Each key becomes exactly one op spec: ``mbconv`` for
``expanded_conv``, and for a fixed layer the ``sequence`` of its ops (conv2d,
bn, relu6...), measured as one unit as the source measured it. Spaces with
``fused_fixed`` (``proxyless-mobile``) use the same sequences for their fixed
layers, so signatures match. See ``tables/IMPORT.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from hwprof.errors import SpecError, UserError
from hwprof.latency.adapters.common import (
    Entry,
    ImportFileError,
    ImportResult,
    imported_table,
    positive_ms,
    sample_count,
    unit_scale,
)
from hwprof.latency.specs import OpSpec, mbconv_mid_channels, parse_spec
from hwprof.latency.table import LatencyTable

FLAVORS = ("proxylessnas", "ofa")
MBCONV_FIELDS = ("input", "output", "expand", "kernel", "stride", "idskip")
OFA_FIELDS = ("se", "hs")
FIXED_TYPES = ("Conv", "Conv_1", "Conv_2", "AvgPool2D", "Logits")


class KeyError_(ValueError):
    """A key that cannot be mapped; the message says why."""


# --------------------------------------------------------------------------- #
# keys to specs


def _shape(text: str, ranks: tuple[int, ...], key_field: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(x) for x in text.split("x"))
    except ValueError:
        raise KeyError_(f"{key_field} {text!r} is not HxWxC") from None
    if len(dims) not in ranks or min(dims) < 1:
        raise KeyError_(f"{key_field} {text!r} should be " + " or ".join(
            {3: "HxWxC", 1: "N"}[r] for r in ranks))
    return dims


def _int(fields: dict[str, str], name: str) -> int:
    try:
        return int(fields[name])
    except ValueError:
        raise KeyError_(f"{name} {fields[name]!r} is not an integer") from None


def split_key(key: str) -> tuple[str, dict[str, str]]:
    if not isinstance(key, str) or not key:
        raise KeyError_("the key is not a string")
    ltype, *parts = key.split("-")
    fields: dict[str, str] = {}
    for p in parts:
        name, sep, value = p.partition(":")
        if not sep or not name or not value:
            raise KeyError_(f"field {p!r} is not name:value")
        if name in fields:
            raise KeyError_(f"field {name!r} appears twice")
        fields[name] = value
    return ltype, fields


def key_flavor(key: str) -> str | None:
    """``ofa`` for keys with se/hs fields, ``proxylessnas`` for other MBConv keys."""
    try:
        ltype, fields = split_key(key)
    except KeyError_:
        return None
    if ltype != "expanded_conv":
        return None
    return "ofa" if any(f in fields for f in OFA_FIELDS) else "proxylessnas"


def _mk(kind: str, shape, **kw) -> OpSpec:
    return parse_spec({"kind": kind, "input": list(shape), **kw})


def fused(ops: list[OpSpec]) -> OpSpec:
    """One op, or the ``sequence`` of several (as ``fused_fixed`` spaces build it)."""
    if len(ops) == 1:
        return ops[0]
    return parse_spec({"kind": "sequence", "input": ops[0].input, "ops": [o.to_dict() for o in ops]})


def key_to_spec(key: str, flavor: str) -> OpSpec:
    """The op spec of one key, or :class:`KeyError_` saying why there is none."""
    ltype, f = split_key(key)
    if "input" not in f or "output" not in f:
        raise KeyError_("a key needs input: and output: fields")
    try:
        if ltype == "expanded_conv":
            return _mbconv(f)
        if ltype in FIXED_TYPES:
            return fused(_fixed_ops(ltype, f, flavor))
    except SpecError as e:
        raise KeyError_(f"not a valid op: {e}") from None
    raise KeyError_(f"unknown layer type {ltype!r}; expected expanded_conv, "
                    f"{', '.join(FIXED_TYPES)}")


def _mbconv(f: dict[str, str]) -> OpSpec:
    missing = [n for n in MBCONV_FIELDS if n not in f]
    if missing:
        raise KeyError_(f"expanded_conv lacks field(s) {missing}")
    ofa = any(n in f for n in OFA_FIELDS)
    if ofa and not all(n in f for n in OFA_FIELDS):
        raise KeyError_("an Once-for-All key needs both se: and hs:")
    extra = set(f) - set(MBCONV_FIELDS) - set(OFA_FIELDS)
    if extra:
        raise KeyError_(f"unknown field(s) {sorted(extra)}")
    h, w, c = _shape(f["input"], (3,), "input")
    ho, wo, co = _shape(f["output"], (3,), "output")
    e, k, s, idskip = (_int(f, n) for n in ("expand", "kernel", "stride", "idskip"))
    se = _int(f, "se") if ofa else 0
    hs = _int(f, "hs") if ofa else 0
    if idskip not in (0, 1) or se not in (0, 1) or hs not in (0, 1):
        raise KeyError_("idskip, se and hs must be 0 or 1")
    if ofa:  # expand is the middle channel count
        ratio: float = e / c
        if ratio.is_integer():
            ratio = int(ratio)
        if ratio < 1 or mbconv_mid_channels(c, ratio) != e:
            raise KeyError_(f"expand (middle channels) {e} is not a whole expansion of {c} "
                            f"input channels")
    else:
        ratio = e
    spec = _mk("mbconv", (1, c, h, w), out_channels=co, expand=ratio, kernel=k, stride=s,
               se=bool(se), activation=block_activation(ofa, bool(hs)), residual=bool(idskip))
    if spec.output_shape != [1, co, ho, wo]:
        o = spec.output_shape
        raise KeyError_(f"output {ho}x{wo}x{co} does not follow from input {h}x{w}x{c}, kernel {k}, "
                        f"stride {s} (that gives {o[2]}x{o[3]}x{o[1]})")
    return spec


def block_activation(ofa: bool, hs: bool) -> str:
    """The activation of an ``expanded_conv`` key, by the family that wrote it.

    Once-for-All's MobileNetV3 keys (with ``se:``/``hs:``) come from blocks whose
    activation is h-swish (``hs:1``) or plain ReLU (``hs:0``, OFA's ``act_func='relu'``);
    keys without those fields are the ProxylessNAS family, whose blocks use ReLU6.
    """
    if ofa:
        return "hswish" if hs else "relu"
    return "relu6"


def _fixed_ops(ltype: str, f: dict[str, str], flavor: str) -> list[OpSpec]:
    extra = set(f) - {"input", "output"}
    if extra:
        raise KeyError_(f"{ltype} takes only input: and output:, got {sorted(extra)}")
    h, w, c = _shape(f["input"], (3,), "input")
    act = "hswish" if flavor == "ofa" else "relu6"
    if ltype == "Logits":
        (n,) = _shape(f["output"], (1,), "output")
        ops = [_mk("global_avgpool", (1, c, h, w))] if h * w > 1 else []
        return ops + [_mk("fc", (1, c, 1, 1), out_features=n)]
    ho, wo, co = _shape(f["output"], (3,), "output")
    if ltype == "AvgPool2D":
        if (ho, wo, co) != (1, 1, c):
            raise KeyError_(f"AvgPool2D is a global pool: output should be 1x1x{c}")
        return [_mk("global_avgpool", (1, c, h, w))]
    if ltype == "Conv":
        conv = _mk("conv2d", (1, c, h, w), out_channels=co, kernel=3, stride=max(h // ho, 1))
    else:
        conv = _mk("conv2d", (1, c, h, w), out_channels=co, kernel=1)
    if conv.output_shape != [1, co, ho, wo]:
        raise KeyError_(f"output {ho}x{wo}x{co} does not follow from a "
                        f"{conv['kernel']}x{conv['kernel']} conv of {h}x{w}x{c}")
    out = conv.output_shape
    return [conv] + ([] if ltype == "Conv_2" else [_mk("bn", out)]) + [_mk(act, out)]


# --------------------------------------------------------------------------- #
# specs to keys


def spec_key(spec: OpSpec, flavor: str) -> str:
    """The LUT key of a spec; :class:`KeyError_` when no key describes it.

    A key is only returned when mapping it back gives this very spec.
    """
    if spec.input[0] != 1:
        raise KeyError_("LUT keys describe batch 1 only")
    if spec.kind == "mbconv":
        key = _mbconv_key(spec, flavor)
    else:
        ops = [OpSpec(o, _trusted=True) for o in spec["ops"]] if spec.kind == "sequence" else [spec]
        key = _fixed_key(ops)
    if key is None:
        raise KeyError_(f"no {flavor} LUT key describes a {spec.kind} like this")
    try:
        back = key_to_spec(key, flavor)
    except KeyError_ as e:
        raise KeyError_(f"key {key} does not map back: {e}") from None
    if back != spec:
        raise KeyError_(f"key {key} would map back to a different op (check activation, "
                        f"bias, padding or flavor)")
    return key


def _mbconv_key(spec: OpSpec, flavor: str) -> str:
    _, c, h, w = spec.input
    _, co, ho, wo = spec.output_shape
    k, s = spec["kernel"], spec["stride"]
    if not isinstance(k, int) or not isinstance(s, int):
        raise KeyError_("LUT keys need square kernels and strides")
    if flavor == "ofa":
        if spec["activation"] not in ("relu", "hswish"):
            raise KeyError_(f"Once-for-All MobileNetV3 keys describe relu (hs:0) or hswish (hs:1) "
                            f"blocks, not {spec['activation']}; relu6 blocks are the "
                            f"ProxylessNAS family (--format proxylessnas)")
        expand = mbconv_mid_channels(c, spec["expand"])
        tail = f"-se:{int(spec['se'])}-hs:{int(spec['activation'] == 'hswish')}"
    else:
        if spec["se"] or spec["activation"] != "relu6":
            raise KeyError_("ProxylessNAS keys describe relu6 blocks without SE; use the ofa flavor")
        if not float(spec["expand"]).is_integer():
            raise KeyError_(f"expand {spec['expand']} is not a whole ratio")
        expand, tail = int(spec["expand"]), ""
    return (f"expanded_conv-input:{h}x{w}x{c}-output:{ho}x{wo}x{co}-expand:{expand}-kernel:{k}"
            f"-stride:{s}-idskip:{int(spec['residual'])}{tail}")


def _fixed_key(ops: list[OpSpec]) -> str | None:
    kinds = [o.kind for o in ops]
    first = ops[0]
    _, c, h, w = first.input if len(first.input) == 4 else (0, 0, 0, 0)
    if kinds in (["global_avgpool", "fc"], ["fc"]) and c:
        return f"Logits-input:{h}x{w}x{c}-output:{ops[-1].output_shape[1]}"
    if kinds == ["global_avgpool"]:
        return f"AvgPool2D-input:{h}x{w}x{c}-output:1x1x{c}"
    if not kinds or kinds[0] != "conv2d":
        return None
    _, co, ho, wo = first.output_shape
    shapes = f"-input:{h}x{w}x{c}-output:{ho}x{wo}x{co}"
    if len(kinds) == 3 and kinds[1] == "bn":
        return ("Conv" if first["kernel"] == 3 else "Conv_1") + shapes
    if len(kinds) == 2 and first["kernel"] == 1:
        return "Conv_2" + shapes
    return None


# --------------------------------------------------------------------------- #
# import


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ImportFileError(f"no file at {path}") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as e:
        raise ImportFileError(f"cannot read {path}: {e}") from None
    from hwprof.latency.adapters.lutread import read_flat_lut
    data = read_flat_lut(text)  # the plain layout LUTs are written in: fast
    if data is not None:
        return data
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ImportFileError(f"{path} is not valid yaml ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise ImportFileError(f"{path} is not a ProxylessNAS/OFA lookup table: expected a mapping "
                           f"from layer keys to {{count, mean, var|std}}")
    return data


def detect_flavor(lut: dict[str, Any]) -> str:
    flavors = {key_flavor(k) for k in lut} - {None}
    if "ofa" in flavors:
        return "ofa"
    if any(isinstance(v, dict) and "std" in v and "var" not in v for v in lut.values()):
        return "ofa"
    return "proxylessnas"


def _stats(value: Any, scale: float) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KeyError_(f"value is {type(value).__name__}, expected {{count, mean, var|std}}")
    if "mean" not in value:
        raise KeyError_("value has no mean")
    mean = positive_ms(value["mean"], scale, "mean")
    std = None
    for name in ("std", "var"):
        if value.get(name) is not None:
            try:
                raw = float(value[name])
            except (TypeError, ValueError):
                raise KeyError_(f"{name} is {value[name]!r}, not a number") from None
            if not math.isfinite(raw) or raw < 0:
                raise KeyError_(f"{name} is {value[name]!r}; expected a number >= 0")
            std = raw * scale if name == "std" else math.sqrt(raw * scale * scale)
            break
    count = value.get("count")
    if count is not None and not isinstance(count, int):
        raise KeyError_(f"count is {count!r}; expected a positive integer")
    try:
        count = sample_count(count)
    except ValueError as e:
        raise KeyError_(str(e)) from None
    return {"median_ms": mean, "mean_ms": mean, "std_ms": std, "n_samples": count}


def _entry(flavor: str, scale: float, key: Any, value: Any) -> Entry | dict[str, str]:
    """One key's row, or ``{key, reason}`` when it cannot be mapped."""
    try:
        return Entry(key_to_spec(key, flavor), key, **_stats(value, scale))
    except (KeyError_, ValueError) as e:
        return {"key": str(key), "reason": str(e)}


def import_lut(lut: dict[str, Any], *, device_name: str, flavor: str = "auto", unit: str = "ms",
               source_file: str | None = None, runtime: str | None = None,
               quiet: bool = True) -> ImportResult:
    """Map every key of a LUT to one hwprof row; unmappable keys are reported with a reason.

    Large LUTs are mapped in worker processes; ``quiet=False`` shows a progress bar on
    stderr (when it is a terminal).
    """
    from functools import partial

    from hwprof.latency.adapters.lutread import map_in_parallel
    if flavor == "auto":
        flavor = detect_flavor(lut)
    if flavor not in FLAVORS:
        raise UserError(f"unknown LUT flavor {flavor!r}; expected auto, {', '.join(FLAVORS)}")
    scale = unit_scale(unit)
    done = map_in_parallel(list(lut.items()), partial(_entry, flavor, scale), quiet=quiet,
                           desc=f"importing {flavor} keys")
    entries = [e for e in done if isinstance(e, Entry)]
    unmapped = [e for e in done if not isinstance(e, Entry)]
    table, dupes = imported_table(entries, source=f"import:{flavor}", device_name=device_name,
                               unit=unit, source_file=source_file, runtime=runtime,
                               extra_meta={"flavor": flavor})
    return ImportResult(table, unmapped + dupes)


def import_file(path: str | Path, **kw) -> ImportResult:
    return import_lut(load_yaml(path), source_file=str(path), **kw)


# --------------------------------------------------------------------------- #
# export


def _num(x: Any) -> float | None:
    return None if x is None or x != x else float(x)


def _value(rows, flavor: str) -> dict[str, Any]:
    """count/mean/var|std of one layer from the rows that hold its time (summed)."""
    mean = sum(_num(r["mean_ms"]) if _num(r["mean_ms"]) is not None else float(r["median_ms"])
               for r in rows)
    stds = [_num(r["std_ms"]) for r in rows]
    counts = [_num(r["n_samples"]) for r in rows]
    out: dict[str, Any] = {}
    if all(c is not None for c in counts):
        out["count"] = int(min(counts))
    out["mean"] = mean
    if all(s is not None for s in stds):
        var = sum(float(s) ** 2 for s in stds)
        out["std" if flavor == "ofa" else "var"] = math.sqrt(var) if flavor == "ofa" else var
    return out


def table_flavor(table: LatencyTable) -> str:
    sources = {s for s in table.df["source"].dropna()}
    return "ofa" if sources and all(s == "import:ofa" for s in sources) else "proxylessnas"


def export_lut(table: LatencyTable, *, flavor: str = "auto", space=None
               ) -> tuple[dict[str, dict], list[dict[str, str]]]:
    """The LUT of a one-device table, and the rows that no key can express.

    Every row whose op a key describes exactly gets that key (an imported row its
    own key). With ``space``, fixed layers the space keeps as separate primitives
    (stem conv + bn + relu6, head conv + bn + relu6, pool + fc) are composed from
    their rows: mean = sum of means, var = sum of variances, count = the smallest.
    """
    if flavor == "auto":
        flavor = table_flavor(table)
    if flavor not in FLAVORS:
        raise UserError(f"unknown LUT flavor {flavor!r}; expected auto, {', '.join(FLAVORS)}")
    df = table.df[table.df["status"] == "ok"]
    if df["device_fingerprint"].nunique() > 1 or df["env_key"].nunique() > 1:
        raise UserError("a LUT holds one device; the table has several devices or environments: "
                        "pick one with `hwprof table filter --device ...`")
    rows = {r["signature"]: r for r in df.to_dict("records")}
    lut: dict[str, dict] = {}
    skipped: list[dict[str, str]] = []
    used: set[str] = set()
    if space is not None:
        for specs in _space_fixed_layers(space):
            key = _fixed_key(specs)
            missing = [s for s in specs if s.signature not in rows]
            if key is None or key in lut:
                continue
            if missing:
                skipped.append({"key": key, "reason": f"no row for {missing[0].kind} "
                                                      f"{missing[0].canonical_json()}"})
                continue
            lut[key] = _value([rows[s.signature] for s in specs], flavor)
            used.update(s.signature for s in specs)
    for sig, r in rows.items():
        if sig in used:
            continue
        spec = OpSpec(json.loads(r["spec"]), _trusted=True)
        try:
            key = spec_key(spec, flavor)
        except KeyError_ as e:
            skipped.append({"key": f"{spec.kind} {sig}", "reason": str(e)})
            continue
        if key in lut:
            skipped.append({"key": key, "reason": "another row already holds this key"})
            continue
        lut[key] = _value([r], flavor)
    return lut, skipped


def _space_fixed_layers(space) -> Iterable[list[OpSpec]]:
    """Fixed layers a space keeps as primitives, as lists of their ops."""
    pre = [s for s in space.prefix if s.kind != "mbconv"]
    if [s.kind for s in pre] == ["conv2d", "bn", "relu6"]:
        yield pre
    suf = space.suffix
    if [s.kind for s in suf] == ["conv2d", "bn", "relu6", "global_avgpool", "fc"]:
        yield suf[:3]
        yield suf[3:]


def write_lut(path: str | Path, lut: dict[str, dict]) -> None:
    import yaml

    from hwprof.latency.atomic import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(lut, sort_keys=False, default_flow_style=False))
