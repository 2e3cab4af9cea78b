"""Model files: a network in a file, lowered to hwprof op specs.

    lowered = lower_file("net.nnp")          # or "net.onnx" (nnabla's converter)
    lowered.specs                            # op specs in execution order
    lowered.unsupported                      # [{"name", "op", "reason"}, ...]

A ``.nnp`` is read with nnabla's own loader (:mod:`.nnp`); an ONNX file is first
converted to nnabla's network format by nnabla's converter (:mod:`.onnx`, the
``onnx`` extra). The graph (:mod:`.graph`) is then canonicalised
(:mod:`.canon`: constant scalars, ReLU6 written as ReLU + Minimum, h-swish
written as x * relu6(x + 3) / 6, an affine written as a batched matmul plus a
bias, a grouped convolution that is depthwise, reshapes that only view a
tensor), each function is lowered to one primitive op spec (:mod:`.lower`),
and the patterns hwprof measures as one op are recognised (:mod:`.patterns`:
squeeze-and-excite, MBConv blocks, and fixed layers a table holds as one
``sequence``). Functions no op kind describes are listed with the reason,
never dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwprof.errors import UserError
from hwprof.latency.modelfile.graph import ModelGraph
from hwprof.latency.modelfile.lower import Lowered, lower_graph

SUFFIXES = {".nnp": "nnp", ".nntxt": "nnp", ".onnx": "onnx"}


def read_graph(path: str | os.PathLike, *, network: str | None = None,
               batch: int = 1) -> ModelGraph:
    """The graph of a model file, by its suffix (``.nnp`` or ``.onnx``)."""
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown model file type {path.suffix!r}; expected one of: "
                        f"{', '.join(SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"no model file at {path}")
    if fmt == "onnx":
        from hwprof.latency.modelfile.onnx import read_onnx
        return read_onnx(path, network=network, batch=batch)
    from hwprof.latency.modelfile.nnp import read_nnp
    return read_nnp(path, network=network, batch=batch)


def lower_file(path: str | os.PathLike, *, network: str | None = None, batch: int = 1,
               known=None) -> Lowered:
    """Read and lower a model file; ``known(spec) -> bool`` lets fixed layers that a table
    holds as one ``sequence`` be used as such (see :func:`.patterns.fuse_known`)."""
    return lower_graph(read_graph(path, network=network, batch=batch), known=known)


__all__ = ["ModelGraph", "Lowered", "read_graph", "lower_file", "lower_graph"]
