"""Read an nnabla ``.nnp`` file (a zip of the network definition and its parameters)
with nnabla's own loader (:mod:`nnabla.core.graph_def`, what ``NnpLoader`` uses)."""

from __future__ import annotations

import contextlib
import io
import os
from collections import OrderedDict
from pathlib import Path

from hwprof.errors import UserError
from hwprof.latency.modelfile.graph import ModelGraph, Node


@contextlib.contextmanager
def _quiet():
    """nnabla's loaders and converter print to stdout and warn about numpy APIs they use;
    keep both off the CLI's output."""
    import warnings
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def load_protograph(path: str | os.PathLike, *, parameters: bool = False):
    """(ProtoGraph, parameters by name) of an .nnp / .nntxt file; a damaged file is a UserError.

    Without ``parameters`` only the network definition is read (the weights'
    shapes are in it): a search's export holds every candidate's weights, and
    reading them would take seconds.
    """
    import nnabla as nn
    import numpy as np

    params: OrderedDict = OrderedDict()
    try:
        with _quiet():
            g = nn.graph_def.load(str(path), parameter_scope=params, exclude_parameter=not parameters,
                                  rng=np.random.RandomState(0))
    except Exception as e:  # nnabla raises many types for a damaged or foreign file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: nnabla cannot read it as a network file ({msg})") from None
    return g, params


def pick_network(g, path, network: str | None = None):
    """The network to lower: ``network``, else the first executor's, else the only one."""
    nets = dict(g.networks)
    if not nets:
        raise UserError(f"{path} holds no network")
    if network is not None:
        if network not in nets:
            raise UserError(f"{path} has no network {network!r}; it has: {', '.join(nets)}")
        return nets[network]
    for ex in dict(getattr(g, "executors", {}) or {}).values():
        name = getattr(ex, "network_name", None)
        if name in nets:
            return nets[name]
    if len(nets) == 1:
        return next(iter(nets.values()))
    raise UserError(f"{path} holds several networks and no executor names one; choose with "
                    f"--network (one of: {', '.join(nets)})")


def _flat(tree, prefix: str = "") -> dict:
    """nnabla's parameter scope (nested by '/') as one dict by full name."""
    out = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, name + "/"))
        else:
            out[name] = v
    return out


def graph_of(pn, params, source: str, batch: int = 1, load_params=None) -> ModelGraph:
    """A :class:`ModelGraph` of one ProtoNetwork; ``load_params()`` gives the parameters
    when ``params`` does not hold them (read on the first constant asked for)."""
    params = _flat(params)
    def fix(shape) -> tuple[int, ...]:
        shape = tuple(int(d) for d in shape)
        return tuple(batch if (i == 0 and d < 1) else d for i, d in enumerate(shape))

    shapes = {name: fix(v.shape) for name, v in pn.variables.items()}
    pnames = set(pn.parameters) | set(params)
    for name in pnames:
        var = params.get(name)
        if var is not None and name not in shapes:
            shapes[name] = tuple(int(d) for d in var.shape)
        elif name not in shapes and name in pn.parameters:
            shapes[name] = fix(pn.parameters[name].shape)
    nodes = [Node(f.name, f.type, list(f.inputs), list(f.outputs), dict(f.args or {}))
             for f in pn.functions.values()]

    def value(name):
        if not params and load_params is not None:
            params.update(_flat(load_params()))
        var = params.get(name)
        return None if var is None else var.d

    return ModelGraph(name=pn.name, source=source, nodes=nodes, shapes=shapes, params=pnames,
                      inputs=list(pn.inputs), outputs=list(pn.outputs), value=value)


def read_nnp(path: str | os.PathLike, *, network: str | None = None,
             batch: int = 1) -> ModelGraph:
    path = Path(path)
    g, params = load_protograph(path)
    return graph_of(pick_network(g, path, network), params, str(path), batch,
                    load_params=lambda: load_protograph(path, parameters=True)[1])
