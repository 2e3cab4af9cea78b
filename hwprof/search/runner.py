"""One search end to end: supernet search, budget-respecting derivation, retrain, export, report.

The search never talks to hardware: latencies come from the LatencyModel, and
the end-to-end measurement of the result is a callable handed in by the
caller (``measure(spec) -> ms``, or ``None`` when the device is not
reachable).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.arch import save_arch
from hwprof.latency.spaces import Space
from hwprof.search.latency_loss import LOSS_FORMS, LatencyLoss, LatencyTable2D

ALGOS = ("proxyless", "darts")


def learner_class(algo: str):
    if algo == "darts":
        from hwprof.search.darts import Darts
        return Darts
    if algo == "proxyless":
        from hwprof.search.proxyless import ProxylessNAS
        return ProxylessNAS
    raise UserError(f"unknown search algorithm {algo!r}; choose one of {', '.join(ALGOS)}")


def estimator(space: Space, model) -> Callable[[list[str]], float] | None:
    """Whole-network estimate for derivation; None means the additive table sum is exact."""
    if getattr(model, "calibration", None) is None:
        return None
    return lambda choices: float(model.estimate_arch(space, choices)["estimate_ms"])


def run_search(space: Space, model, data, budget_ms: float, out: str | os.PathLike, *,
               algo: str = "proxyless", epochs: int = 8, retrain_epochs: int = 3, seed: int = 0,
               loss_form: str = "hinge", batch: int = 64, min_fill: float = 0.9,
               measure: Callable | None = None, log: Callable[[str], None] = print,
               extra_report: dict | None = None, learner_options: dict | None = None) -> dict:
    import nnabla as nn

    from hwprof.search.derive import derive
    from hwprof.search.export import save_nnp
    from hwprof.search.plots import plot_latency, plot_probs
    from hwprof.search.supernet import SuperNet
    from hwprof.search.train import train_child

    if loss_form not in LOSS_FORMS:
        raise UserError(f"unknown latency loss {loss_form!r}; choose one of {', '.join(LOSS_FORMS)}")
    if epochs < 1 or retrain_epochs < 0:
        raise UserError("--epochs must be >= 1 and --retrain-epochs >= 0")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    cls = learner_class(algo)
    lut = LatencyTable2D.from_model(space, model)
    lo, hi = lut.range_ms()
    if budget_ms < lo:
        raise UserError(f"the budget {budget_ms:.4g} ms is below the fastest architecture of "
                        f"{space.name} ({lo:.4g} ms by the latency model; range {lo:.4g}..{hi:.4g} ms)")
    log(f"space {space.name}: {len(space.layers)} searchable layers, latency range "
        f"{lo:.3f}..{hi:.3f} ms (fixed {lut.fixed_ms:.3f} ms); budget {budget_ms:.3f} ms")
    if budget_ms >= hi:
        log("note: the budget is above the slowest architecture; it does not constrain the search")

    nn.clear_parameters()
    nn.seed(seed)
    rng = np.random.RandomState(seed)
    t0 = time.perf_counter()
    loss = LatencyLoss(lut, budget_ms, loss_form)
    learner = cls(space, lut, loss, data, rng, batch=batch, log=log, **(learner_options or {}))
    history = learner.fit(epochs)
    tau = history["tau"][-1]
    probs = learner.probs(tau)
    picked = derive(probs, lut, budget_ms, estimator(space, model), min_fill=min_fill)
    search_s = time.perf_counter() - t0
    choices = picked["choices"]
    est = model.estimate_arch(space, choices)
    predicted = float(est["estimate_ms"])
    log(f"derived architecture ({'calibrated' if est.get('calibrated') else 'sum of ops'}): "
        f"{predicted:.3f} ms predicted, budget {budget_ms:.3f} ms")
    for lay, c, p in zip(space.layers, choices, probs):
        log(f"  {lay.name:10s} {c:14s} p={p[list(lay.candidates).index(c)]:.2f}")

    # retraining from scratch with a generator of its own: the same procedure for any architecture
    rng_child = np.random.RandomState(seed)
    child = SuperNet(space, rng_child, scope="child")
    trained = train_child(child, choices, data, retrain_epochs, rng_child, batch=batch, log=log)
    log(f"retrained {retrain_epochs} epoch(s): test accuracy {trained['test_accuracy']:.4f}")
    save_nnp(out / "model.nnp", child, choices)
    save_arch(out / "arch.json", space, choices, budget_ms=budget_ms, predicted_ms=predicted,
              sum_ms=float(est["sum_ms"]), algo=algo)

    measured = None
    if measure is not None:
        measured = measure(space.arch_network(choices))
        if measured is not None:
            log(f"measured end to end: {measured:.3f} ms ({measured / budget_ms:.2f} x budget)")

    plot_probs(history, lut.names, [lay.name for lay in space.layers], out / "arch_probs.png")
    plot_latency(history, budget_ms, out / "latency.png", predicted)
    steps = learner.weight_seconds + learner.arch_seconds
    report = {
        "algo": algo, "space": space.name, "data": data.name, "choices": choices,
        "test_accuracy": trained["test_accuracy"], "val_accuracy": trained["val_accuracy"],
        "budget_ms": budget_ms, "predicted_ms": predicted, "predicted_sum_ms": float(est["sum_ms"]),
        "calibrated": bool(est.get("calibrated")),
        "measured_ms": measured,
        "measured_over_budget": None if measured is None else measured / budget_ms,
        "expected_ms_final": history["expected_ms"][-1],
        "in_band": picked["in_band"], "min_fill": min_fill,
        "search_seconds": search_s, "retrain_seconds": trained["seconds"],
        "epochs": epochs, "retrain_epochs": retrain_epochs, "seed": seed,
        "latency_loss": loss_form, "batch": learner.batch,
        "latency_term_seconds": learner.latency_seconds, "step_seconds": steps,
        "latency_term_share": learner.latency_seconds / steps if steps else None,
        "latency_range_ms": [lo, hi], "latency_sources": lut.sources,
        "data_sizes": data.sizes(), "data_notes": data.notes,
        "history": history, **(extra_report or {}),
    }
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False, default=_nan_none) + "\n")
    os.replace(tmp, out / "report.json")
    return report


def _nan_none(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")
