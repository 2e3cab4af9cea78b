"""One search end to end: a strategy's search, closed-loop derivation, retrain, export, report.

The search never talks to hardware: latencies come from the LatencyModel, and
the end-to-end measurement of the result is a callable handed in by the
caller (``measure([spec, ...]) -> [ms, ...]``, or ``None`` when the device is not
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
from hwprof.search.closedloop import (
    FILL,
    FIRST_LADDER,
    LATER_LADDER,
    MIN_FILL,
    Round,
    close_loop,
    fastest_measured,
)
from hwprof.search.constraints import Constraints
from hwprof.search.derive import derive, fastest_ms
from hwprof.search.latency_loss import LOSS_FORMS, LatencyLoss, LatencyTable2D
from hwprof.search.registry import get_strategy
from hwprof.search.strategy import SearchProblem, SearchResult, Strategy, check_options


def estimator(space: Space, model) -> Callable[[list[str]], float] | None:
    """Whole-network estimate for derivation; None means the additive table sum is exact."""
    if getattr(model, "calibration", None) is None:
        return None
    return lambda choices: float(model.estimate_arch(space, choices)["estimate_ms"])


def run_search(space: Space, model, data, budget_ms: float, out: str | os.PathLike, *,
               algo: str | Strategy = "proxyless", epochs: int | None = None,
               retrain_epochs: int = 3, seed: int = 0, loss_form: str = "hinge", batch: int = 64,
               min_fill: float = MIN_FILL, measure: Callable | None = None,
               log: Callable[[str], None] = print, extra_report: dict | None = None,
               strategy_options: dict | None = None, evaluator: str | None = None,
               executor: str | None = "local", max_rounds: int = 4,
               allow_over_budget: bool = False, param_budget: float | None = None,
               memory_budget: float | None = None) -> dict:
    """Search with strategy ``algo`` (a registered name or a Strategy), derive through the
    closed loop, retrain and export the answer; the report.

    ``measure([spec, ...]) -> [ms, ...] | None`` measures whole networks (``sequence``
    specs) end to end; None (or a callable that returns None) means no device:
    the budget is then checked against the latency model only. When no round
    of the loop is measured within the budget, nothing is exported and the
    report's ``result`` is ``"over_budget"`` (``allow_over_budget`` keeps the
    fastest measured network instead). ``epochs`` defaults to the strategy's.
    """
    strategy = resolve_strategy(algo, strategy_options or {})
    epochs = strategy.default_epochs if epochs is None else epochs
    _check_options(loss_form, epochs, retrain_epochs)
    out = _out_dir(out)
    problem = make_problem(space, model, data, budget_ms, strategy, epochs=epochs, seed=seed,
                           loss_form=loss_form, batch=batch, log=log, options=strategy_options,
                           evaluator=evaluator, executor=executor, min_fill=min_fill,
                           param_budget=param_budget, memory_budget=memory_budget)
    lut, limits, est = problem.lut, problem.limits, estimator(space, model)
    floor = fastest_ms(lut, est)
    lo, hi = _check_budget(space, lut, budget_ms, floor, log)
    result, search_s = run_strategy(strategy, problem)
    t1 = time.perf_counter()
    loop = derive_through_loop(space, result.probs, lut, floor, est, limits, measure, budget_ms,
                               max_rounds=max_rounds, min_fill=min_fill, log=log)
    answer, verdict = _verdict(loop, allow_over_budget)
    report = _search_report(strategy, problem, result, loop, verdict, extra_report,
                            measure_s=time.perf_counter() - t1, search_s=search_s,
                            calibrated=est is not None, latency_range=(lo, hi),
                            settings={"space": space.name, "data": data.name,
                                      "budget_ms": budget_ms, "max_rounds": max_rounds,
                                      "min_fill": min_fill, "epochs": epochs,
                                      "retrain_epochs": retrain_epochs, "seed": seed,
                                      "latency_loss": loss_form})
    report.setdefault("batch", batch)   # a strategy's own batch entry wins
    _plot_loop(report, answer, budget_ms, out)
    if answer is None:
        _remove_stale(out, log)
        report["constraints"] = []
        write_report(out, report)
        return report
    report.update(_answer_report(space, model, lut, limits, answer, budget_ms))
    _log_choices(space, answer.choices, result.probs, report, log)
    report.update(_retrain_and_export(space, data, answer, result, budget_ms, out, algo=strategy.name,
                                      seed=seed, retrain_epochs=retrain_epochs, batch=batch,
                                      names=lut.names, report=report, log=log))
    write_report(out, report)
    return report


def _search_report(strategy, problem, result, loop, verdict, extra_report, *, measure_s,
                   search_s, calibrated, latency_range, settings) -> dict:
    """The report's entries up to the answer: the search's settings, the loop's rounds, timings.

    ``extra_report`` (the caller's) overrides the runner's entries; the
    strategy's own extras never do.
    """
    report = {
        **_strategy_entries(strategy, problem, result), **settings,
        "result": verdict, "loop_status": loop["status"],
        "rounds": [r.to_dict() for r in loop["rounds"]],
        "measure_seconds": measure_s, "search_seconds": search_s, "calibrated": bool(calibrated),
        "arch_probs": [[float(x) for x in p] for p in result.probs],
        "latency_range_ms": list(latency_range), "latency_sources": problem.lut.sources,
        "data_sizes": problem.data.sizes(), "data_notes": problem.data.notes,
        **(extra_report or {}),
    }
    for k, v in result.extras.items():   # the strategy's own entries; the runner's keys win
        report.setdefault(k, v)
    return report


def derive_through_loop(space: Space, probs, lut, floor: float, est, limits, measure,
                        budget_ms: float, *, max_rounds: int, min_fill: float, log,
                        ladders: tuple = (FIRST_LADDER, LATER_LADDER)) -> dict:
    """Derive from the strategy's probabilities, measure, tighten and derive again
    (:func:`close_loop`); ``measure`` None checks the budget against the model only."""
    return close_loop(
        # a target tightened below the fastest network is clamped to it: the fastest remain
        lambda target, fill, skip: derive(probs, lut, max(target, floor), est, min_fill=fill,
                                          limits=limits, exclude=skip),
        None if measure is None else (lambda chs: measure([space.arch_network(c) for c in chs])),
        budget_ms, max_rounds=max_rounds, min_fill=min_fill, ladders=ladders, log=log)


def make_problem(space: Space, model, data, budget_ms: float, strategy, *, epochs: int,
                 seed: int = 0, loss_form: str = "hinge", batch: int = 64,
                 log: Callable[[str], None] = print, options: dict | None = None,
                 evaluator: str | None = None, executor: str | None = "local",
                 min_fill: float = MIN_FILL, param_budget: float | None = None,
                 memory_budget: float | None = None) -> SearchProblem:
    """The SearchProblem ``strategy`` gets: candidate latencies, latency loss, whole-network
    estimate (calibrated when the model has a calibration, else the table sum), limits."""
    lut = LatencyTable2D.from_model(space, model)
    limits = Constraints.from_space(space, param_budget, memory_budget)
    est = estimator(space, model) or (
        lambda ch: lut.arch_ms([n.index(c) for n, c in zip(lut.names, ch)]))
    return SearchProblem(
        space, lut, LatencyLoss(lut, budget_ms, loss_form, extra_terms=limits.loss_terms()),
        budget_ms, est, limits, data, seed=seed, epochs=epochs, batch=batch, log=log,
        options=dict(options or {}),
        evaluator=evaluator or getattr(strategy, "default_evaluator", None), executor=executor,
        min_fill=min_fill, model=model)


def _strategy_entries(strategy, problem: SearchProblem, result: SearchResult) -> dict:
    return {"algo": strategy.name, "strategy_kind": strategy.kind,
            "strategy_options": problem.options, "evaluator": problem.evaluator,
            "executor": problem.executor, "strategy_choices": result.choices,
            "history": result.history}


def run_strategy(strategy, problem: SearchProblem) -> tuple[SearchResult, float]:
    """(the strategy's checked result, seconds it took)."""
    t0 = time.perf_counter()
    result = strategy.search(problem)
    if not isinstance(result, SearchResult):
        raise UserError(f"search strategy {strategy.name!r} returned {type(result).__name__}, "
                        f"not a SearchResult")
    return result.check(problem, strategy.name), time.perf_counter() - t0


def resolve_strategy(algo, options: dict):
    """The strategy instance for ``algo`` (a name or an instance); its options checked."""
    strategy = get_strategy(algo) if isinstance(algo, str) else algo
    if not callable(getattr(strategy, "search", None)):
        raise UserError(f"{algo!r} is not a search strategy (no search(problem) method)")
    check_options(strategy, options)
    return strategy


def _check_options(loss_form: str, epochs: int, retrain_epochs: int) -> None:
    if loss_form not in LOSS_FORMS:
        raise UserError(f"unknown latency loss {loss_form!r}; choose one of {', '.join(LOSS_FORMS)}")
    if epochs < 1 or retrain_epochs < 0:
        raise UserError("--epochs must be >= 1 and --retrain-epochs >= 0")


def _out_dir(out) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    return out


def _check_budget(space: Space, lut: LatencyTable2D, budget_ms: float, fastest: float,
                  log) -> tuple[float, float]:
    lo, hi = lut.range_ms()
    if budget_ms < fastest:
        raise UserError(f"the budget {budget_ms:.4g} ms is below the fastest architecture of "
                        f"{space.name} ({fastest:.4g} ms by the latency model; additive range "
                        f"{lo:.4g}..{hi:.4g} ms)")
    log(f"space {space.name}: {len(space.layers)} searchable layers, latency range "
        f"{lo:.3f}..{hi:.3f} ms (fixed {lut.fixed_ms:.3f} ms); budget {budget_ms:.3f} ms")
    if budget_ms >= hi:
        log("note: the budget is above the slowest architecture; it does not constrain the search")
    return lo, hi


def _verdict(loop: dict, allow_over_budget: bool) -> tuple[Round | None, str]:
    """(the network to export or None, the report's ``result``)."""
    status = loop["status"]
    if status != "over":
        return loop["answer"], {"unmeasured": "estimated_within_budget"}.get(status, status)
    if allow_over_budget:
        return fastest_measured(loop["rounds"]), "over_budget_kept"
    return None, "over_budget"


def _answer_report(space, model, lut, limits: Constraints, answer: Round, budget_ms) -> dict:
    est = model.estimate_arch(space, answer.choices)
    idx = [names.index(c) for names, c in zip(lut.names, answer.choices)]
    measured = answer.measured_ms
    value = measured if measured is not None else float(est["estimate_ms"])
    latency = {"name": "latency", "unit": "ms", "value": value, "budget": budget_ms,
               "slack": budget_ms - value, "ok": value <= budget_ms,
               "source": "measured" if measured is not None else "estimate"}
    return {"choices": answer.choices, "predicted_ms": float(est["estimate_ms"]),
            "predicted_sum_ms": float(est["sum_ms"]), "measured_ms": measured,
            "measured_over_budget": answer.ratio, "in_band": answer.in_band(),
            "answer_round": answer.round, "constraints": [latency] + limits.report(idx),
            "calibrated": bool(est.get("calibrated"))}


def _log_choices(space, choices, probs, report, log) -> None:
    log(f"derived architecture ({'calibrated' if report['calibrated'] else 'sum of ops'}): "
        f"{report['predicted_ms']:.3f} ms predicted, budget {report['budget_ms']:.3f} ms")
    for lay, c, p in zip(space.layers, choices, probs):
        log(f"  {lay.name:10s} {c:14s} p={p[list(lay.candidates).index(c)]:.2f}")
    for c in report["constraints"]:
        if c["budget"] is not None:
            log(f"  {c['name']}: {c['value']:.4g} {c['unit']} of {c['budget']:.4g} "
                f"(slack {c['slack']:.4g}, {c['source']})")


def _retrain_and_export(space, data, answer: Round, result: SearchResult, budget_ms, out: Path, *, algo,
                        seed, retrain_epochs, batch, names, report, log) -> dict:
    import nnabla as nn

    from hwprof.search.export import save_nnp
    from hwprof.search.plots import plot_latency, plot_probs
    from hwprof.search.supernet import SuperNet
    from hwprof.search.train import train_child

    # retraining from scratch with a generator of its own: the same procedure for any architecture
    with nn.parameter_scope("child"):
        nn.clear_parameters()  # an earlier search in this process must not lend its weights
    rng_child = np.random.RandomState(seed)
    child = SuperNet(space, rng_child, scope="child")
    trained = train_child(child, answer.choices, data, retrain_epochs, rng_child, batch=batch,
                          log=log)
    log(f"retrained {retrain_epochs} epoch(s): test accuracy {trained['test_accuracy']:.4f}")
    save_nnp(out / "model.nnp", child, answer.choices)
    save_arch(out / "arch.json", space, answer.choices, budget_ms=budget_ms,
              predicted_ms=report["predicted_ms"], sum_ms=report["predicted_sum_ms"],
              measured_ms=answer.measured_ms, algo=algo)
    plot_probs(result.history, names, [lay.name for lay in space.layers], out / "arch_probs.png",
               final=result.probs)
    plot_latency(result.history, budget_ms, out / "latency.png", report["predicted_ms"])
    return {"test_accuracy": trained["test_accuracy"], "val_accuracy": trained["val_accuracy"],
            "retrain_seconds": trained["seconds"]}


def _plot_loop(report: dict, answer: Round | None, budget_ms: float, out: Path) -> None:
    """``out/loop.png`` when the loop measured networks; an earlier run's plot goes otherwise."""
    from hwprof.search.plots import plot_loop
    path = out / "loop.png"
    drawn = plot_loop(report["rounds"], budget_ms, path, answer.to_dict() if answer else None,
                      FILL)
    if drawn is None and path.exists():
        path.unlink()


def _remove_stale(out: Path, log) -> None:
    """An earlier run's answer in ``out`` must not pass for this run's."""
    for name in ("arch.json", "model.nnp", "arch_probs.png", "latency.png"):
        if (out / name).exists():
            (out / name).unlink()
            log(f"removed {out / name} of an earlier run: this run has no answer within budget")


def write_report(out: str | os.PathLike, report: dict) -> None:
    """Write ``out/report.json`` atomically."""
    out = Path(out)
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False, default=_nan_none) + "\n")
    os.replace(tmp, out / "report.json")


def _nan_none(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")
