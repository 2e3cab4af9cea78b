"""ONNX model files, converted to nnabla's network format by nnabla's own converter.

The converter is the optional extra ``onnx`` (``pip install 'hwprof[onnx]'``:
``nnabla-converter`` and ``onnx``); without it reading an ONNX file is a one-line
error that says so. The converted network is written to a temporary ``.nnp``
and read like any other (:mod:`.nnp`), with its parameters (ONNX graphs carry
constants, e.g. the 6 of a ReLU6 written as ``Min``).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from hwprof.errors import UserError
from hwprof.latency.modelfile.graph import ModelGraph
from hwprof.latency.modelfile.nnp import _quiet, graph_of, load_protograph, pick_network

INSTALL_HINT = "pip install 'hwprof[onnx]'"


def converter_available() -> bool:
    """Whether nnabla's ONNX converter and the onnx package are installed."""
    try:
        return (importlib.util.find_spec("onnx") is not None
                and importlib.util.find_spec("nnabla.utils.converter.onnx") is not None)
    except (ImportError, ValueError):
        return False


def _require_converter() -> None:
    if not converter_available():
        raise UserError(f"reading ONNX files needs nnabla's converter (nnabla-converter and "
                        f"onnx), which is not installed: {INSTALL_HINT}")


def onnx_to_nnp(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert an ONNX file to an ``.nnp`` with nnabla's converter."""
    _require_converter()
    from nnabla.utils.converter.nnabla import NnpExporter
    from nnabla.utils.converter.onnx import OnnxImporter

    try:
        with _quiet():
            nnp = OnnxImporter(str(src)).execute()
            NnpExporter(nnp, -1, "protobuf").execute(str(dst))
    except Exception as e:  # the converter raises bare ValueErrors, KeyErrors, onnx errors...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{src}: nnabla's ONNX converter cannot convert it ({msg})") from None
    return Path(dst)


def read_onnx(path: str | os.PathLike, *, network: str | None = None,
              batch: int = 1) -> ModelGraph:
    _require_converter()
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="hwprof-onnx-") as tmp:
        nnp = onnx_to_nnp(path, Path(tmp) / (path.stem + ".nnp"))
        g, params = load_protograph(nnp, parameters=True)
        return graph_of(pick_network(g, path, network), params, str(path), batch)
