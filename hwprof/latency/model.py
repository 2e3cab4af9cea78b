"""LatencyModel: what search consumes. Table first, predictor where the table has no row.

Given op specs it returns latencies in milliseconds and says where each came
from (``"table"`` or ``"predictor"``). Search never talks to hardware; it only
asks this object.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

from hwprof.errors import UserError
from hwprof.latency.specs import OpSpec, parse_spec
from hwprof.latency.table import LatencyTable, one_device


class SpecPredictor(Protocol):
    """Anything that predicts milliseconds for op specs (see latency.predictors)."""

    def predict_specs(self, specs: Sequence[OpSpec]) -> Sequence[float]: ...


class MissingLatency(UserError):
    """An op has no table row and there is no predictor to fall back on."""


class LatencyModel:
    def __init__(self, table: LatencyTable | None = None, predictor: SpecPredictor | None = None,
                 device_fingerprint: str | None = None, env_key: str | None = None):
        if table is None and predictor is None:
            raise UserError("a LatencyModel needs a table, a predictor, or both")
        self.table, self.predictor = table, predictor
        self._lut: dict[str, float] = {}
        self.device_fingerprint, self.env_key = device_fingerprint, env_key
        self.calibration = None  # object with apply(sum_ms, specs) -> ms; see estimate_arch
        if table is not None:
            df, self.device_fingerprint, self.env_key = one_device(
                table.df[table.df["status"] == "ok"], device_fingerprint, env_key)
            self._lut = dict(zip(df["signature"], df["latency_ms"].astype(float)))

    def lookup(self, spec: OpSpec | dict) -> float | None:
        return self._lut.get(parse_spec(spec).signature)

    def latencies(self, specs: Iterable[OpSpec | dict]) -> list[tuple[float, str]]:
        """(milliseconds, source) per spec; source is 'table' or 'predictor'."""
        specs = [parse_spec(s) for s in specs]
        out: list[Any] = [None] * len(specs)
        missing = []
        for i, s in enumerate(specs):
            v = self._lut.get(s.signature)
            if v is not None:
                out[i] = (v, "table")
            else:
                missing.append(i)
        if missing:
            if self.predictor is None:
                s = specs[missing[0]]
                raise MissingLatency(f"{len(missing)} op(s) are not in the table and no predictor "
                                     f"was given; first: {s.kind} {s.canonical_json()}")
            preds = self.predictor.predict_specs([specs[i] for i in missing])
            for i, v in zip(missing, preds):
                out[i] = (float(v), "predictor")
        return out

    def latency(self, spec: OpSpec | dict) -> tuple[float, str]:
        return self.latencies([spec])[0]

    def sum_ms(self, specs: Iterable[OpSpec | dict]) -> float:
        return sum(ms for ms, _ in self.latencies(specs))

    def estimate_arch(self, space, choices) -> dict[str, Any]:
        """Whole-network estimate: the sum of the ops, then the calibration.

        ``self.calibration`` (set by whoever loads one; see the predictors
        package) maps the plain sum to an end-to-end estimate; without one the
        estimate is the plain sum.
        """
        specs = space.arch_specs(choices)
        lat = self.latencies(specs)
        total = sum(ms for ms, _ in lat)
        cal = getattr(self, "calibration", None)
        est = float(cal.apply(total, specs)) if cal is not None else total
        covered = cal is not None and (not hasattr(cal, "covers") or cal.covers(specs))
        return {"estimate_ms": est, "sum_ms": total, "calibrated": covered,
                "from_table": sum(src == "table" for _, src in lat),
                "from_predictor": sum(src == "predictor" for _, src in lat)}
