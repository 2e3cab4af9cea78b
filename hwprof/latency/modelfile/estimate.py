"""A lowered model file priced by a LatencyModel: every op's latency and source, the
partial sum when some are missing or unsupported, and the calibrated estimate."""

from __future__ import annotations

from typing import Any

from hwprof.latency.model import LatencyModel
from hwprof.latency.modelfile.lower import Lowered


def known_to(model: LatencyModel):
    """``known(spec)`` for :func:`lower_graph`: sequences the model's table holds (None when
    it holds none). Its ``starts`` are the signatures of those sequences' first ops, so
    only runs that start with one are tried."""
    import json

    from hwprof.latency.specs import parse_spec
    if model.table is None:
        return None
    df = model.table.df
    seqs = df.loc[(df["kind"] == "sequence") & (df["status"] == "ok"), "spec"]
    if seqs.empty:
        return None
    starts = {parse_spec(json.loads(s)["ops"][0]).signature for s in seqs}

    def known(spec) -> bool:
        return model.lookup(spec) is not None
    known.starts = starts  # type: ignore[attr-defined]
    return known


def estimate_lowered(model: LatencyModel, lowered: Lowered) -> dict[str, Any]:
    """The estimate of a lowered model (see ``hwprof estimate --model``)."""
    est = model.estimate_specs(lowered.specs, strict=False)
    answers = est.pop("answers")
    ops = []
    for i, (op, a) in enumerate(zip(lowered.supported, answers)):
        ops.append({"index": i, "kind": a.spec.kind, "signature": a.spec.signature,
                    "latency_ms": a.latency_ms, "source": a.source, "functions": op.names,
                    "spec": a.spec.to_dict()})
    missing = [{"index": o["index"], "kind": o["kind"], "signature": o["signature"],
                "functions": o["functions"]} for o in ops if o["source"] == "missing"]
    return {**est, "missing": missing, "unsupported": lowered.unsupported,
            "complete": not missing and not lowered.unsupported, "ops": ops,
            "n_ops": len(ops), "views": len(lowered.views)}
