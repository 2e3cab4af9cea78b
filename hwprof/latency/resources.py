"""Hardware resources of a network other than time: parameters and peak activation memory.

Both are computed from op specs alone (no device):

- **parameters**: the sum of the ops' weights (``OpSpec.features()["params"]``:
  convolution and FC weights and biases, BN's four per-channel vectors, SE's two
  FC layers);
- **peak activation memory** of one forward pass, in bytes (batch included):
  the largest set of tensors alive at one time, assuming no buffer is reused
  inside an op. At a primitive op its inputs and its output are alive (an
  ``add`` of n tensors holds all n); inside an MBConv block with a residual the
  block's input stays alive until the final add; a network's peak is the
  largest of its ops' peaks. Weights are not activations and are not counted.

These are the figures ``hwprof search --param-budget / --memory-budget``
constrain; a layer's candidates each have their own, so the peak of an
architecture is the largest over its layers and the fixed stem and head.
"""

from __future__ import annotations

from typing import Sequence

from hwprof.latency.specs import DTYPE_BYTES, OpSpec, parse_spec


def _elements(shape: Sequence[int]) -> int:
    n = 1
    for x in shape:
        n *= int(x)
    return n


def params_of(spec: OpSpec | dict) -> int:
    """Number of weights of one op spec (a composite's parts summed)."""
    return int(parse_spec(spec).features()["params"])


def _primitive_peak(spec: OpSpec) -> int:
    n_in = _elements(spec.input) * (spec["n_inputs"] if spec.kind in ("add", "concat") else 1)
    return n_in + _elements(spec.output_shape)


def peak_activation_elements(spec: OpSpec | dict) -> int:
    """Largest number of activation elements alive at once while ``spec`` runs."""
    spec = parse_spec(spec)
    if spec.kind == "sequence":
        return max(peak_activation_elements(op) for op in spec.children())
    parts = spec.children()
    if not parts:
        return _primitive_peak(spec)
    keep = _elements(spec.input) if spec.get("residual") else 0
    peak = 0
    for i, part in enumerate(parts):
        # the residual add's own inputs are the branch and the kept block input
        held = keep if i and part.kind != "add" else 0
        peak = max(peak, _primitive_peak(part) + held)
    return peak


def peak_activation_bytes(spec: OpSpec | dict) -> int:
    """Peak activation memory of one op spec (or a whole ``sequence``), in bytes."""
    spec = parse_spec(spec)
    return peak_activation_elements(spec) * DTYPE_BYTES[spec["dtype"]]


def arch_resources(space, choices: Sequence[str]) -> dict[str, int]:
    """{"params", "peak_memory_bytes"} of one architecture of ``space``."""
    specs = space.arch_specs(choices)
    return {"params": sum(params_of(s) for s in specs),
            "peak_memory_bytes": max(peak_activation_bytes(s) for s in specs)}
