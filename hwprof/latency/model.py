"""LatencyModel: what search consumes. Table first, predictor where the table has no row.

Given op specs it returns latencies in milliseconds and says where each came
from (``"table"``, ``"predictor"``, or ``"missing"`` when neither answers).
Search never talks to hardware; it only asks this object.

Two ways to ask:

- :meth:`LatencyModel.latencies` is strict: every op must be answered, else
  :class:`MissingLatency` names how many are not (what search needs);
- :meth:`LatencyModel.answers` never stops at a miss: each op gets an
  :class:`Answer` whose ``latency_ms`` is ``None`` when neither the table nor
  a predictor holds it, so a caller can list every missing op and give the
  partial sum (``hwprof predict`` and ``hwprof estimate`` do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

from hwprof.errors import UserError
from hwprof.latency.specs import OpSpec, parse_spec
from hwprof.latency.table import LatencyTable, one_device

SOURCES = ("table", "predictor", "missing")


class SpecPredictor(Protocol):
    """Anything that predicts milliseconds for op specs (see latency.predictors)."""

    def predict_specs(self, specs: Sequence[OpSpec]) -> Sequence[float]: ...


class MissingLatency(UserError):
    """An op has no table row and there is no predictor to fall back on."""


@dataclass(frozen=True)
class Answer:
    """One op's latency and where it came from; ``latency_ms`` is None when ``missing``."""

    spec: OpSpec
    latency_ms: float | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.spec.kind, "signature": self.spec.signature,
                "latency_ms": self.latency_ms, "source": self.source, "spec": self.spec.to_dict()}


def answered_sum(answers: Sequence[Answer]) -> float:
    """The sum of the answered ops (the partial sum when some are missing)."""
    return float(sum(a.latency_ms for a in answers if a.latency_ms is not None))


class LatencyModel:
    def __init__(self, table: LatencyTable | None = None, predictor: SpecPredictor | None = None,
                 device_fingerprint: str | None = None, env_key: str | None = None):
        if table is None and predictor is None:
            raise UserError("a LatencyModel needs a table, a predictor, or both")
        self.table, self.predictor = table, predictor
        self._lut: dict[str, float] = {}
        self.device_fingerprint, self.env_key = device_fingerprint, env_key
        self.calibration = None  # object with apply(sum_ms, specs) -> ms; see estimate_arch
        # set by load_latency_model when the table and the predictor sit at different
        # reference levels (their answers then differ by a common factor)
        self.level_note: str | None = None
        if table is not None:
            df, self.device_fingerprint, self.env_key = one_device(
                table.df[table.df["status"] == "ok"], device_fingerprint, env_key)
            self._lut = dict(zip(df["signature"], df["latency_ms"].astype(float)))

    def lookup(self, spec: OpSpec | dict) -> float | None:
        return self._lut.get(parse_spec(spec).signature)

    def answers(self, specs: Iterable[OpSpec | dict]) -> list[Answer]:
        """One :class:`Answer` per spec, in order; ops nobody answers are ``missing``."""
        specs = [parse_spec(s) for s in specs]
        out: list[Answer | None] = [None] * len(specs)
        todo = []
        for i, s in enumerate(specs):
            v = self._lut.get(s.signature)
            if v is not None:
                out[i] = Answer(s, v, "table")
            else:
                todo.append(i)
        if todo and self.predictor is not None:
            preds = self.predictor.predict_specs([specs[i] for i in todo])
            for i, v in zip(todo, preds):
                out[i] = Answer(specs[i], float(v), "predictor")
            todo = []
        for i in todo:
            out[i] = Answer(specs[i], None, "missing")
        return out  # type: ignore[return-value]

    def latencies(self, specs: Iterable[OpSpec | dict]) -> list[tuple[float, str]]:
        """(milliseconds, source) per spec; source is 'table' or 'predictor'.

        Raises :class:`MissingLatency` when some op has neither a table row nor a
        predictor; :meth:`answers` lists them instead.
        """
        ans = self.answers(specs)
        missing = [a for a in ans if a.latency_ms is None]
        if missing:
            s = missing[0].spec
            raise MissingLatency(f"{len(missing)} of {len(ans)} op(s) are not in the table and no "
                                 f"predictor was given; first: {s.kind} {s.canonical_json()}")
        return [(a.latency_ms, a.source) for a in ans]  # type: ignore[misc]

    def latency(self, spec: OpSpec | dict) -> tuple[float, str]:
        return self.latencies([spec])[0]

    def sum_ms(self, specs: Iterable[OpSpec | dict]) -> float:
        return sum(ms for ms, _ in self.latencies(specs))

    def estimate_specs(self, specs: Sequence[OpSpec | dict], *, strict: bool = True
                       ) -> dict[str, Any]:
        """Whole-network estimate of ``specs``: the sum of the ops, then the calibration.

        ``self.calibration`` (set by whoever loads one; see the predictors
        package) maps the plain sum to an end-to-end estimate; without one the
        estimate is the plain sum. ``strict=False``: ops nobody answers are
        listed under ``missing`` (their indices) and the sums are partial.
        """
        specs = [parse_spec(s) for s in specs]
        ans = self.answers(specs) if not strict else [
            Answer(s, ms, src) for s, (ms, src) in zip(specs, self.latencies(specs))]
        total = answered_sum(ans)
        cal = getattr(self, "calibration", None)
        est = float(cal.apply(total, specs)) if cal is not None else total
        covered = cal is not None and (not hasattr(cal, "covers") or cal.covers(specs))
        return {"estimate_ms": est, "sum_ms": total, "calibrated": covered,
                "from_table": sum(a.source == "table" for a in ans),
                "from_predictor": sum(a.source == "predictor" for a in ans),
                "missing": [i for i, a in enumerate(ans) if a.source == "missing"],
                "answers": ans}

    def estimate_arch(self, space, choices, *, strict: bool = True) -> dict[str, Any]:
        """:meth:`estimate_specs` of one architecture of a space (without ``answers``)."""
        est = self.estimate_specs(space.arch_specs(choices), strict=strict)
        est.pop("answers")
        if strict:
            est.pop("missing")
        return est
