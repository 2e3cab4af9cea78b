"""Whole-network calibration: from the sum of isolated ops to the end-to-end latency.

Ops timed one at a time are not the network: one ``forward()`` over the whole
graph saves per-call overhead, keeps activations in cache, and so on. A
calibration is fitted from a handful of random architectures of one space,
each measured end to end (``hwprof calibrate``), against the plain sum the
LatencyModel gives for it::

    end_to_end_ms ~= slope * sum_ms + intercept

fitted by least squares on *relative* errors (weights 1/measured), so a small
and a large network count alike. With fewer than three architectures only the
slope (a ratio) is fitted.

Calibrations are stored as plain JSON, one per space, under the key
``calibrations`` of the table's metadata (or of the predictor file when there
is no table). :class:`CalibrationSet` is what ``LatencyModel.calibration``
holds: it recognises the space of an architecture by the signature of its
first op (the stem) and applies that space's calibration; an architecture of
a space it has no calibration for gets the plain sum (``covers()`` says which).

Standard library and numpy only: this module is imported without sklearn.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from hwprof.errors import UserError

FORMAT_VERSION = 1


@dataclass
class Calibration:
    """One space's linear map from the sum of ops to the end-to-end latency."""

    space: str
    stem_signature: str
    slope: float
    intercept: float
    n: int
    points: list[dict[str, Any]] = field(default_factory=list)  # choices, sum_ms, measured_ms
    sum_rmspe: float | None = None         # plain sum vs measured, on the fitting points
    calibrated_rmspe: float | None = None  # calibrated vs measured, same points
    device_fingerprint: str | None = None
    agent_version: str | None = None       # the agent that measured the networks (None: before 10)
    fitted_at: str | None = None
    format_version: int = FORMAT_VERSION

    def predict(self, sum_ms: float) -> float:
        est = self.slope * float(sum_ms) + self.intercept
        if not est > 0:  # far outside the fitted range: keep the ratio, never <= 0
            est = self.slope * float(sum_ms)
        return est

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        if d.get("format_version") != FORMAT_VERSION:
            raise UserError(f"stored calibration has format version {d.get('format_version')!r};"
                            f" this hwprof reads version {FORMAT_VERSION}: run `hwprof calibrate`"
                            f" again")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


# Networks measured by agents before this version are not comparable with today's: agent 10
# times a network session's reference warm (protocol.NETWORK_REF_PRIME_CALLS), which carried
# mbv2-cifar networks 4-10 % higher than the cold reference of agent 9 did. A calibration
# fitted on such networks is measured again when the device can be reached.
NETWORKS_COMPARABLE_SINCE = 10


def outdated(cal: Calibration) -> str | None:
    """Why ``cal`` is out of date (its networks measured by an agent before
    :data:`NETWORKS_COMPARABLE_SINCE`), or None when it is current."""
    try:
        version = int(cal.agent_version)
    except (TypeError, ValueError):   # None (before agent 10) or unreadable
        version = None
    if version is not None and version >= NETWORKS_COMPARABLE_SINCE:
        return None
    return (f"its networks were measured by agent {cal.agent_version or 'before 10'}, which "
            f"timed the reference op cold after long networks (agent "
            f"{NETWORKS_COMPARABLE_SINCE} times it warm)")


# What renews an out-of-date calibration, as every command that reports one says it.
RENEW = ("the next `hwprof search` that can reach the device measures it again (or run "
         "`hwprof calibrate`)")


def describe(cal: Calibration) -> dict[str, Any]:
    """A calibration as the commands report it (``table show``, ``estimate --json``): its fit,
    its networks (how many a search's loop added), its errors, its agent and whether it is
    out of date."""
    return {"space": cal.space, "slope": cal.slope, "intercept": cal.intercept, "n": cal.n,
            "added_by_searches": sum(1 for p in cal.points if p.get("source")),
            "sum_rmspe": cal.sum_rmspe, "calibrated_rmspe": cal.calibrated_rmspe,
            "agent_version": cal.agent_version, "fitted_at": cal.fitted_at,
            "out_of_date": outdated(cal)}


def _rmspe(pred: Sequence[float], true: Sequence[float]) -> float:
    import numpy as np
    p, t = np.asarray(pred, float), np.asarray(true, float)
    return float(np.sqrt(np.mean(((p - t) / t) ** 2)))


def fit_calibration(sum_ms: Sequence[float], measured_ms: Sequence[float], *, space: str,
                    stem_signature: str, choices: Sequence[Sequence[str]] | None = None,
                    device_fingerprint: str | None = None,
                    agent_version: str | None = None) -> Calibration:
    """Fit end-to-end = slope * sum + intercept on relative errors."""
    import numpy as np
    s = np.asarray(sum_ms, dtype=float)
    m = np.asarray(measured_ms, dtype=float)
    if s.shape != m.shape or s.ndim != 1:
        raise UserError(f"calibration needs one sum per measurement; got {s.shape} and {m.shape}")
    if len(s) < 1:
        raise UserError("calibration needs at least one architecture measured end to end")
    if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(np.isfinite(m)) and np.all(m > 0)):
        raise UserError("calibration needs positive, finite sums and measurements")
    w = 1.0 / m
    if len(s) >= 3 and np.ptp(s) > 0:
        a = np.stack([s * w, w], axis=1)
        (slope, intercept), *_ = np.linalg.lstsq(a, m * w, rcond=None)
        if slope <= 0:  # degenerate spread: fall back to a ratio
            slope, intercept = float(np.median(m / s)), 0.0
    else:
        slope, intercept = float(np.median(m / s)), 0.0
    choices = list(choices) if choices is not None else [None] * len(s)
    points = [{"choices": list(c) if c is not None else None, "sum_ms": float(x),
               "measured_ms": float(y)} for c, x, y in zip(choices, s, m)]
    cal = Calibration(space=space, stem_signature=stem_signature, slope=float(slope),
                      intercept=float(intercept), n=int(len(s)), points=points,
                      device_fingerprint=device_fingerprint, agent_version=agent_version,
                      fitted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    cal.sum_rmspe = _rmspe(s, m)
    cal.calibrated_rmspe = _rmspe([cal.predict(x) for x in s], m)
    return cal


LOOP_POINTS = 100   # a calibration keeps at most this many points added after its fit


def refit_with(cal: Calibration, more: Sequence[Mapping[str, Any]], *,
               source: str = "loop", keep: int = LOOP_POINTS) -> Calibration:
    """``cal`` fitted again on its points and ``more`` (``choices``, ``sum_ms``,
    ``measured_ms``): networks measured end to end at the same level later, e.g. by a
    search's closed loop. Every point of the first fit is kept, and the newest ``keep`` of
    those added since (tagged ``source``)."""
    first = [dict(p) for p in cal.points if not p.get("source")]
    added = ([dict(p) for p in cal.points if p.get("source")]
             + [{**dict(p), "source": source} for p in more])
    pts = first + (added[-keep:] if keep > 0 else [])
    new = fit_calibration([p["sum_ms"] for p in pts], [p["measured_ms"] for p in pts],
                          space=cal.space, stem_signature=cal.stem_signature,
                          choices=[p.get("choices") for p in pts],
                          device_fingerprint=cal.device_fingerprint,
                          agent_version=cal.agent_version)
    for p, q in zip(new.points, pts):
        if q.get("source"):
            p["source"] = q["source"]
    return new


class CalibrationSet:
    """Calibrations by space; ``apply(sum_ms, specs)`` is what LatencyModel calls."""

    def __init__(self, calibrations: Sequence[Calibration] = ()):
        self.by_space: dict[str, Calibration] = {c.space: c for c in calibrations}

    def __bool__(self) -> bool:
        return bool(self.by_space)

    def __len__(self) -> int:
        return len(self.by_space)

    def for_specs(self, specs: Sequence[Any]) -> Calibration | None:
        """The calibration whose space's stem is the first of ``specs``, if any."""
        if not specs:
            return None
        first = specs[0]
        sig = first.signature if hasattr(first, "signature") else None
        if sig is None:
            from hwprof.latency.specs import parse_spec
            sig = parse_spec(first).signature
        for cal in self.by_space.values():
            if cal.stem_signature == sig:
                return cal
        return None

    def covers(self, specs: Sequence[Any]) -> bool:
        return self.for_specs(specs) is not None

    def apply(self, sum_ms: float, specs: Sequence[Any]) -> float:
        cal = self.for_specs(specs)
        return float(sum_ms) if cal is None else cal.predict(sum_ms)

    def to_meta(self) -> dict[str, Any]:
        return {name: c.to_dict() for name, c in self.by_space.items()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> CalibrationSet:
        if not meta:
            return cls()
        if not isinstance(meta, Mapping):
            raise UserError("stored calibrations are not a JSON object; run `hwprof calibrate` "
                            "again")
        return cls([Calibration.from_dict(d) for d in meta.values()])


def stored_calibration(table=None, predictor=None) -> CalibrationSet | None:
    """The calibrations stored with a table (preferred) or a predictor; None if none.

    With both, the table's calibrations win for the spaces they cover.
    """
    cals = CalibrationSet()
    if predictor is not None:
        cals.by_space.update(CalibrationSet.from_meta(
            getattr(predictor, "meta", {}).get("calibrations")).by_space)
    if table is not None:
        cals.by_space.update(CalibrationSet.from_meta(table.meta.get("calibrations")).by_space)
    return cals if cals else None


def store_in_meta(meta: dict[str, Any], cal: Calibration) -> None:
    """Add or replace ``cal`` in a metadata dict (table or predictor)."""
    cur = dict(meta.get("calibrations") or {})
    cur[cal.space] = cal.to_dict()
    meta["calibrations"] = cur
