"""Fit (and store) a space's whole-network calibration from end-to-end measurements.

The core shared by ``hwprof calibrate`` and ``hwprof search`` (which calibrates
by itself when the table's device is reachable and the table holds no
calibration for the space): measure a few random architectures of the space end
to end, interleaved beside the reference op and at the table's reference level,
fit ``end_to_end = slope * sum + intercept`` against the LatencyModel's plain
sums, and store the fit in the table's (or a predictor file's) metadata.
"""

from __future__ import annotations

from typing import Any, Callable

from hwprof.latency.endtoend import measure_archs, random_choices
from hwprof.latency.predictors.calibration import (
    Calibration,
    CalibrationSet,
    fit_calibration,
    outdated,
    refit_with,
    store_in_meta,
)


def has_calibration(model, space) -> bool:
    """Whether ``model`` holds a calibration for ``space`` (recognised by its stem)."""
    cal = getattr(model, "calibration", None)
    if not cal:
        return False
    stem = space.fixed_specs[:1]   # a calibration recognises its space by the stem
    return bool(cal.covers(stem)) if hasattr(cal, "covers") else True


def _calibration_of(model, space):
    """``model``'s stored calibration of ``space`` (recognised by its stem), or None."""
    cal = getattr(model, "calibration", None)
    return cal.for_specs(space.fixed_specs[:1]) if cal else None


def stale_calibration(model, space) -> str | None:
    """Why ``model``'s calibration of ``space`` is out of date, or None (current, or none)."""
    cal = _calibration_of(model, space)
    return None if cal is None else outdated(cal)


def measure_calibration(space, model, backend, *, archs: int = 8, seed: int = 0,
                        protocol: dict | None = None, table_meta: dict | None = None,
                        expect_fingerprint: str | None = None, progress=None,
                        log: Callable[[str], None] | None = None
                        ) -> tuple[Calibration, list[dict[str, Any]], dict]:
    """Measure ``archs`` random architectures (at most all of the space's) and fit the
    calibration of ``space``.

    ``model`` gives the plain sums (its own calibration, if any, is ignored);
    returns (calibration, end-to-end results, the agent's hello).
    """
    total = 1
    for lay in space.layers:
        total *= len(lay.candidates)
    choices = random_choices(space, min(archs, total), seed)
    sums = [float(model.estimate_arch(space, c)["sum_ms"]) for c in choices]  # fails first
    results, hello = measure_archs(space, choices, backend, protocol=protocol, seed=seed,
                                   expect_fingerprint=expect_fingerprint, table_meta=table_meta,
                                   progress=progress)
    if log is not None:
        for i, res in enumerate(results):
            spread = (res.get("machine") or {}).get("spread")
            log(f"  arch {i + 1}/{len(choices)}: sum {sums[i]:.3f} ms, end to end "
                f"{res['latency_ms']:.3f} ms"
                + (f" (machine moved {spread:.2f}x)" if spread else ""))
    cal = fit_calibration(sums, [r["latency_ms"] for r in results], space=space.name,
                          stem_signature=space.arch_specs(choices[0])[0].signature,
                          choices=choices, device_fingerprint=hello.get("fingerprint_id"),
                          agent_version=hello.get("agent_version"))
    return cal, results, hello


def store_calibration(cal: Calibration, table_path=None, predictor_path=None) -> str:
    """Store ``cal`` in the table (preferred) or the predictor file; returns where."""
    if table_path:
        from hwprof.latency.table import read_table, write_table
        table = read_table(table_path)
        store_in_meta(table.meta, cal)
        write_table(table_path, table)
        return str(table_path)
    from hwprof.latency.predictors.persist import load_predictor, update_meta
    meta = dict(load_predictor(predictor_path).meta)
    store_in_meta(meta, cal)
    update_meta(predictor_path, calibrations=meta["calibrations"])
    return str(predictor_path)


def attach(model, cal: Calibration) -> None:
    """Use ``cal`` for ``model``'s whole-network estimates from now on."""
    cur = getattr(model, "calibration", None) or CalibrationSet()
    cur.by_space[cal.space] = cal
    model.calibration = cur


def loop_points(rounds: list[dict], results: list[dict]) -> list[dict[str, Any]]:
    """The closed loop's networks measured at the table's level, as calibration points.

    ``rounds``: the search report's (in measuring order; unmeasured ones have no
    ``measured_ms``), ``results``: the end-to-end results of the measured ones, in the
    same order. A network measured at its session's own level (a table of another
    environment) is no point of the table's calibration."""
    measured = [r for r in rounds if r.get("measured_ms") is not None]
    if len(measured) != len(results):
        return []
    return [{"choices": list(r["choices"]), "sum_ms": float(r["sum_ms"]),
             "measured_ms": float(r["measured_ms"])}
            for r, res in zip(measured, results) if res.get("level_source") == "table"]


def update_from_loop(table_path, space, model, rounds: list[dict], results: list[dict]
                     ) -> tuple[Calibration, int] | None:
    """Refit ``model``'s calibration of ``space`` with the loop's networks (see
    :func:`loop_points`), use it and store it in the table; (calibration, networks added),
    or None when there is no calibration or nothing to add."""
    cal = _calibration_of(model, space)
    points = loop_points(rounds, results)
    if cal is None or not points:
        return None
    new = refit_with(cal, points)
    attach(model, new)
    store_calibration(new, table_path)
    return new, len(points)


def describe(cal: Calibration) -> str:
    return (f"{cal.space}: end_to_end = {cal.slope:.4f} * sum {cal.intercept:+.4f} ms from "
            f"{cal.n} architecture(s); RMSPE of the plain sum {100 * cal.sum_rmspe:.1f} %, "
            f"calibrated {100 * cal.calibrated_rmspe:.1f} %")
