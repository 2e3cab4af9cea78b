"""Export the derived network as an nnabla ``.nnp`` file (nnabla's own saver)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import nnabla as nn

from hwprof.errors import UserError


def save_nnp(path: str | os.PathLike, net, choices: Sequence[str]) -> Path:
    """Write the inference graph (batch 1, input ``x``, logits ``y``) with ``net``'s weights."""
    from nnabla.utils.save import save

    path = Path(path)
    x = nn.Variable(tuple([1] + list(net.space.input[1:])))
    y = net.child(x, list(choices), train=False)
    contents = {
        "networks": [{"name": "net", "batch_size": 1, "outputs": {"y": y}, "names": {"x": x}}],
        "executors": [{"name": "runtime", "network": "net", "data": ["x"], "output": ["y"]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with nn.parameter_scope(net.scope):
            save(str(path), contents)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def load_nnp(path: str | os.PathLike):
    """(input variable, output variable) of the ``runtime`` executor of an .nnp file."""
    from nnabla.utils.nnp_graph import NnpLoader

    nnp = NnpLoader(str(path))
    g = nnp.get_network("net", batch_size=1)
    return g.inputs["x"], g.outputs["y"]
