"""Search spaces as data, and the op specs each one's lookup table needs.

A space is a space file (YAML or JSON, :mod:`hwprof.latency.spacefile`,
documented in ``docs/SPACES.md``): input shape, a fixed stem, stages of
searchable layers (width, stride, a depth range, squeeze-excite and activation),
the candidate blocks every searchable layer chooses among, and a fixed head.
The built-in spaces are such files shipped in ``hwprof/latency/space_files``;
:func:`get_space` takes a built-in name or a path, optionally with parameter
overrides (``ofa-mbv3:width_mult=1.0,resolution=192``).

Candidates are named for what they are: ``mbconv_e{expand}_k{kernel}``, then
``_se`` with squeeze-excite and ``_{act}`` for an activation other than relu6;
``conv_k{kernel}`` for a plain conv; ``skip`` (identity, 0 ms) on the layers a
stage may drop: a stage of depth ``[min, max]`` always keeps its first ``min``
layers, and its layers ``min+1 .. max`` each have a ``skip`` candidate (they
keep the shape, so which of them is skipped does not change any op: derivation
writes the skips last, as the stage's trailing layers).

With ``fused_fixed: true`` each fixed layer (stem conv + BN + act, head conv +
BN + act, pool + classifier) is one op (a ``sequence`` spec when it holds
several): the unit published lookup tables measure (``hwprof import
proxylessnas``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Sequence

from hwprof.errors import UserError
from hwprof.latency import spacefile
from hwprof.latency.specs import OpSpec, parse_spec, unique

SKIP = "skip"
SPACE_DIR = Path(__file__).with_name("space_files")
SPACE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Layer:
    """One searchable position: its input, output width, stride and candidates."""

    name: str
    input: tuple[int, ...]
    out_channels: int
    stride: int
    candidates: tuple[str, ...]
    stage: int = 0                 # index of its stage
    position: int = 0              # 0-based position inside the stage
    optional: bool = False         # may be skipped (beyond the stage's min depth)


@dataclass
class FixedLayer:
    """One fixed layer of the stem or head: its file entry, input and ops."""

    kind: str
    cfg: dict
    input: list[int]
    ops: list[OpSpec] = field(default_factory=list)


class Space:
    """A search space built from its (space-file) data."""

    def __init__(self, name: str, data: dict[str, Any], batch: int | None = None):
        self.name = name
        self.ref = name            # what an arch file records (a file's absolute path)
        src = Path(name).name if "/" in name or os.sep in name else name   # for messages
        self.data = spacefile.validate(copy.deepcopy(data), src)
        self._src = src
        d = self.data
        self.params = dict(d["params"])
        self.description = d["description"]
        self.input = list(d["input"])
        if self.params["resolution"]:
            self.input[2] = self.input[3] = self.params["resolution"]
        if batch is not None:
            self.input[0] = batch
        self.fused = d["fused_fixed"]
        shape = list(self.input)
        self.stem_layers, shape = self._fixed(d["stem"], shape, "stem")
        self.layers: list[Layer] = []
        self._cands: list[dict[str, dict]] = []
        self._spec_cache: dict[tuple[int, str], OpSpec] = {}
        for si, st in enumerate(d["stages"]):
            shape = self._stage(si, st, shape)
        self.head_layers, shape = self._fixed(d["head"], shape, "head")
        self.prefix = [op for fl in self.stem_layers for op in self._units(fl)]
        self.suffix = [op for fl in self.head_layers for op in self._units(fl)]
        self.classes = d["head"][-1]["classifier"]["classes"]

    # -- building ---------------------------------------------------------- #
    def width(self, channels: int, scale: bool = True) -> int:
        """Output channels after the width multiplier (make-divisible rounding)."""
        w = self.params["width_mult"]
        if not scale or w == 1:
            return channels
        return spacefile.make_divisible(channels * w, self.params["divisor"])

    def _fixed(self, entries: list[dict], shape: list[int], part: str):
        out = []
        for i, entry in enumerate(entries):
            kind, cfg = next(iter(entry.items()))
            try:
                ops = _fixed_ops(kind, cfg, shape, self)
            except UserError as e:
                raise UserError(f"{self._src}: {part}[{i}].{kind}: {e}") from None
            out.append(FixedLayer(kind, cfg, list(shape), ops))
            shape = ops[-1].output_shape
        return out, shape

    def _units(self, fl: FixedLayer) -> list[OpSpec]:
        """A fixed layer's table ops: its primitives, or one op when ``fused_fixed``."""
        if not self.fused or len(fl.ops) == 1:
            return list(fl.ops)
        return [parse_spec({"kind": "sequence", "input": fl.ops[0].input,
                            "ops": [o.to_dict() for o in fl.ops]})]

    def _stage(self, si: int, st: dict, shape: list[int]) -> list[int]:
        out_c = self.width(st["out"], st["scale"])
        lo, hi = st["depth"]
        if lo == 0 and not (st["stride"] == 1 and shape[1] == out_c):
            raise UserError(f"{self._src}: stages[{si}].depth: min 0 needs a stage that keeps "
                            f"the shape (stride 1 and {shape[1]} channels in and out), got "
                            f"stride {st['stride']}, {shape[1]} -> {out_c} channels")
        groups = st.get("candidates", self.data.get("candidates"))
        for li in range(hi):
            stride = st["stride"] if li == 0 else 1
            cands = _expand_candidates(groups, st)
            optional = li >= lo
            names = list(cands) + ([SKIP] if optional else [])
            name = f"{st.get('name', f'stage{si + 1}')}.{li + 1}"
            self.layers.append(Layer(name, tuple(shape), out_c, stride, tuple(names),
                                     stage=si, position=li, optional=optional))
            self._cands.append(cands)
            try:
                shape = self.candidate_spec(len(self.layers) - 1, names[0]).output_shape
            except UserError as e:
                raise UserError(f"{self._src}: stages[{si}] layer {li + 1}: {e}") from None
        return shape

    # -- what the rest of hwprof asks -------------------------------------- #
    @property
    def fixed_specs(self) -> list[OpSpec]:
        return self.prefix + self.suffix

    def candidate_config(self, layer: int, name: str) -> dict:
        """The block a candidate stands for: ``{"kind": "mbconv"|"conv", ...}``."""
        return dict(self._cands[layer][name])

    def candidate_spec(self, layer: int | Layer, name: str) -> OpSpec | None:
        """The op spec of candidate ``name`` at a layer; ``None`` for skip."""
        li = self.layers.index(layer) if isinstance(layer, Layer) else layer
        lay = self.layers[li]
        if name not in lay.candidates:
            raise UserError(f"layer {lay.name} of space {self.name!r} has no candidate {name!r}; "
                            f"expected one of: {', '.join(lay.candidates)}")
        if name == SKIP:
            return None
        # specs are immutable, and building one validates it (a derivation asks for 400
        # architectures' specs per rung: built anew, they were 99 % of its time)
        key = (li, name)
        if key not in self._spec_cache:
            self._spec_cache[key] = _candidate_op(self._cands[li][name], list(lay.input),
                                                  lay.out_channels, lay.stride)
        return self._spec_cache[key]

    def table_specs(self) -> list[OpSpec]:
        """Exactly the unique specs a lookup table of this space needs."""
        specs = list(self.prefix)
        for li, lay in enumerate(self.layers):
            specs += [s for s in (self.candidate_spec(li, n) for n in lay.candidates) if s]
        return unique(specs + self.suffix)

    def check_choices(self, choices: Sequence[str]) -> list[str]:
        if not isinstance(choices, (list, tuple)) or len(choices) != len(self.layers):
            raise UserError(f"space {self.name!r} has {len(self.layers)} searchable layers; "
                            f"'choices' must list one candidate per layer, got {choices!r}")
        for li, name in enumerate(choices):
            self.candidate_spec(li, name)  # raises with the valid names
        return list(choices)

    def arch_specs(self, choices: Sequence[str]) -> list[OpSpec]:
        """The ops of one architecture in execution order (skips omitted)."""
        self.check_choices(choices)
        mid = [self.candidate_spec(li, n) for li, n in enumerate(choices)]
        return self.prefix + [s for s in mid if s is not None] + self.suffix

    def arch_network(self, choices: Sequence[str]) -> OpSpec:
        """One ``sequence`` spec for the whole architecture, to measure end to end."""
        ops = [s.to_dict() for s in self.arch_specs(choices)]
        return parse_spec({"kind": "sequence", "input": self.input, "ops": ops})

    def depths(self, choices: Sequence[str]) -> list[int]:
        """How many layers of each stage an architecture keeps."""
        out = [0] * len(self.data["stages"])
        for lay, c in zip(self.layers, choices):
            out[lay.stage] += c != SKIP
        return out

    def canonical(self, choices: Sequence[str]) -> list[str]:
        """``choices`` with each stage's skips moved behind its kept optional layers.

        A stage's optional layers share their input shape and candidates, so this
        changes no op: it writes a variable depth as trailing layers skipped.
        """
        out = list(choices)
        for si in range(len(self.data["stages"])):
            idx = [i for i, lay in enumerate(self.layers) if lay.stage == si and lay.optional]
            kept = [out[i] for i in idx if out[i] != SKIP]
            for i, v in zip(idx, kept + [SKIP] * (len(idx) - len(kept))):
                out[i] = v
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input": list(self.input), "params": dict(self.params),
                "stages": [{"name": st.get("name", f"stage{i + 1}"),
                            "out_channels": self.width(st["out"], st["scale"]),
                            "stride": st["stride"], "depth": list(st["depth"]),
                            "se": st["se"], "act": st["act"]}
                           for i, st in enumerate(self.data["stages"])],
                "layers": [{"name": lay.name, "input": list(lay.input),
                            "out_channels": lay.out_channels, "stride": lay.stride,
                            "candidates": list(lay.candidates)} for lay in self.layers],
                "n_table_ops": len(self.table_specs()),
                "n_architectures": _count(self.layers)}


# --------------------------------------------------------------------------- #
# blocks to op specs


def _act_ops(act: str, shape) -> list[OpSpec]:
    return [] if act == "none" else [parse_spec({"kind": act, "input": shape})]


def _conv_ops(shape, out: int, kernel: int, stride: int, bn: bool, act: str) -> list[OpSpec]:
    conv = parse_spec({"kind": "conv2d", "input": list(shape), "out_channels": out,
                       "kernel": kernel, "stride": stride})
    o = conv.output_shape
    return [conv] + ([parse_spec({"kind": "bn", "input": o})] if bn else []) + _act_ops(act, o)


def _fixed_ops(kind: str, cfg: dict, shape: list[int], space: Space) -> list[OpSpec]:
    if kind == "conv":
        return _conv_ops(shape, space.width(cfg["out"], cfg["scale"]), cfg["kernel"],
                         cfg["stride"], cfg["bn"], cfg["act"])
    if kind == "mbconv":
        return [parse_spec({"kind": "mbconv", "input": list(shape),
                            "out_channels": space.width(cfg["out"], cfg["scale"]),
                            "expand": cfg["expand"], "kernel": cfg["kernel"],
                            "stride": cfg["stride"], "se": cfg["se"],
                            "activation": cfg["act"]})]
    if len(shape) != 4:
        raise UserError(f"needs a 4-D input, got {shape}")
    if kind == "pool":
        return [parse_spec({"kind": "global_avgpool", "input": list(shape)})]
    ops = []
    if shape[2] * shape[3] > 1:   # as published LUTs' Logits: no pool on a 1x1 input
        ops.append(parse_spec({"kind": "global_avgpool", "input": list(shape)}))
    fc_in = ops[-1].output_shape if ops else list(shape)
    ops.append(parse_spec({"kind": "fc", "input": fc_in, "out_features": cfg["classes"],
                           "bias": cfg["bias"]}))
    return ops


def _expand_candidates(groups: list[dict], stage: dict) -> dict[str, dict]:
    """Candidate name -> block config, in file order (first-listed field varies slowest)."""
    out: dict[str, dict] = {}
    for g in groups:
        kind, cfg = next(iter(g.items()))
        ses = cfg.get("se", [stage["se"]]) if kind == "mbconv" else [False]
        acts = cfg.get("act", [stage["act"]])
        expands = cfg["expand"] if kind == "mbconv" else [None]
        for e, k, se, act in product(expands, cfg["kernel"], ses, acts):
            name = (f"mbconv_e{e}_k{k}" if kind == "mbconv" else f"conv_k{k}")
            name += ("_se" if se else "") + ("" if act == "relu6" else f"_{act}")
            block = {"kind": kind, "kernel": k, "se": se, "act": act}
            if kind == "mbconv":
                block["expand"] = e
            else:
                block["bn"] = cfg["bn"]
            out[name] = block
    return out


def _candidate_op(block: dict, shape: list[int], out: int, stride: int) -> OpSpec:
    if block["kind"] == "mbconv":
        return parse_spec({"kind": "mbconv", "input": shape, "out_channels": out,
                           "expand": block["expand"], "kernel": block["kernel"],
                           "stride": stride, "se": block["se"], "activation": block["act"]})
    ops = _conv_ops(shape, out, block["kernel"], stride, block["bn"], block["act"])
    return parse_spec({"kind": "sequence", "input": shape, "ops": [o.to_dict() for o in ops]})


def _count(layers: Sequence[Layer]) -> int:
    n = 1
    for lay in layers:
        n *= len(lay.candidates)
    return n


# --------------------------------------------------------------------------- #
# the registry: built-in files, registered spaces, paths

_REGISTERED: dict[str, dict[str, Any]] = {}


def _builtin_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SPACE_DIR.iterdir()) if p.suffix in SPACE_SUFFIXES}


def space_names() -> list[str]:
    return list(_builtin_files()) + [n for n in _REGISTERED if n not in _builtin_files()]


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(SPACE_SUFFIXES) or os.sep in ref or "/" in ref


def resolve(ref: str) -> tuple[str, dict[str, Any]]:
    """(name to show, validated data with parameter overrides) of a space reference."""
    base, params = spacefile.parse_ref(ref)
    if base in _REGISTERED:
        data = _REGISTERED[base]
    elif base in _builtin_files():
        data = spacefile.load_file(_builtin_files()[base])
    elif _looks_like_path(base) or Path(base).is_file():
        data = spacefile.load_file(base)
    else:
        raise UserError(f"unknown space {base!r}; available: {', '.join(space_names())} "
                        f"(see `hwprof spaces`), or the path of a space file (.yaml/.json)")
    return ref, spacefile.with_params(data, params, ref)


def get_space(name: str, batch: int | None = None) -> Space:
    """A built-in space by name, or a space file by path (``[:key=value,...]`` overrides)."""
    ref, data = resolve(name)
    space = Space(ref, data, batch=batch)
    base, params = spacefile.parse_ref(ref)
    if base not in _REGISTERED and base not in _builtin_files():   # a file: portable reference
        tail = ref[len(base):]
        space.ref = str(Path(base).resolve()) + tail
    return space


def register_space(name: str, data: dict[str, Any]) -> None:
    """Add a space under ``name`` (validated by building it once)."""
    Space(name, data)
    _REGISTERED[name] = spacefile.validate(copy.deepcopy(data), name)
