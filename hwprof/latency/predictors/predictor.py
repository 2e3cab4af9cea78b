"""The latency predictor: one :class:`KindRegressor` per op kind, fitted on a table.

:func:`fit_predictor` takes a table's rows (one device, one environment) and
fits every kind; :class:`LatencyPredictor` answers ``predict_specs`` for the
LatencyModel. A composite op (an MBConv block, a ``sequence``) of a kind with
no model of its own is predicted as the sum of its parts; a primitive kind
with no model is an error that names the kinds the predictor knows.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from hwprof import __version__
from hwprof.errors import UserError
from hwprof.latency.predictors.evaluate import accuracy
from hwprof.latency.predictors.features import feature_matrix
from hwprof.latency.predictors.intervals import interval_from_residuals
from hwprof.latency.predictors.regressors import CANDIDATES, MIN_ROWS, KindRegressor, TooFewRows
from hwprof.latency.specs import COMPOSITE_KINDS, OpSpec, parse_spec, stored_specs
from hwprof.latency.table import one_device

TARGETS = ("latency_ms", "median_ms", "min_ms", "p10_ms", "mean_ms")
WORST_KEPT = 200  # per kind: training rows with the largest CV error, for adaptive sampling


class LatencyPredictor:
    """Per-kind regressors plus what they were fitted on.

    ``stacked[kind]`` lists the primitive kinds whose models also feed a
    composite kind's model: an MBConv block gets, besides its own features,
    the log of the summed predictions of its convolutions by the conv2d and
    dwconv2d models (the learned cost of its parts; the block model learns
    what the rest and the interplay add). Where ``meta["stack_bandwidth"]``
    has the kind (older predictor files lack it and keep the one column), a
    second column adds to that sum the time the block's other parts (batch
    norms, activations, SE gate, residual add) take to move their bytes at the
    effective bandwidth of the table's depthwise convolutions: a roofline
    estimate of the whole block, which a model on log features cannot form by
    itself because the costs add rather than multiply.
    """

    def __init__(self, models: dict[str, KindRegressor], feature_names: dict[str, list[str]],
                 meta: dict[str, Any], stacked: dict[str, list[str]] | None = None,
                 transfer_models: dict[str, Any] | None = None):
        self.models = dict(models)
        self.transfer_models = dict(transfer_models or {})  # per kind: a transfer's forest
        self.feature_names = {k: list(v) for k, v in feature_names.items()}
        self.meta = dict(meta)
        self.stacked = {k: list(v) for k, v in (stacked or {}).items()}

    def _features(self, kind: str, specs: Sequence[OpSpec]) -> np.ndarray:
        x, _ = feature_matrix(specs, self.feature_names[kind])
        using = self.stacked.get(kind)
        if using:
            x = np.hstack([x, self._parts_log(specs, using,
                                              self.meta.get("stack_bandwidth", {}).get(kind))])
        return x

    def _parts_log(self, specs: Sequence[OpSpec], using: Sequence[str],
                   bandwidth: float | None = None) -> np.ndarray:
        """log(sum of the predicted latencies of each spec's parts of kinds ``using``),
        and with a ``bandwidth`` (bytes/s) also log(that sum + the other parts'
        bytes / bandwidth)."""
        parts, owner = [], []
        rest = np.zeros(len(specs))
        for i, s in enumerate(specs):
            for c in s.children():
                if c.kind in using:
                    parts.append(c)
                    owner.append(i)
                elif bandwidth:
                    f = c.features()
                    rest[i] += f["bytes_read"] + f["bytes_written"]
        sums = np.zeros(len(specs))
        if parts:
            np.add.at(sums, owner, self._predict(parts, corrected=False))
        cols = [sums]  # ms
        if bandwidth:
            cols.append(sums + rest / bandwidth * 1e3)
        return np.log1p(np.column_stack(cols) * 1e3)  # microseconds, log1p keeps 0 finite

    @property
    def kinds(self) -> list[str]:
        return sorted(self.models)

    def can_predict(self, spec: OpSpec) -> bool:
        if spec.kind in self.models:
            return True
        parts = spec.children()
        return bool(parts) and all(self.can_predict(p) for p in parts)

    def predict_specs(self, specs: Sequence[OpSpec | dict]) -> np.ndarray:
        """Latency in milliseconds of every spec."""
        return self._predict([parse_spec(s) for s in specs], corrected=True)

    def _predict(self, specs: Sequence[OpSpec], corrected: bool) -> np.ndarray:
        """``corrected``: with the transfer correction (``meta["transfer"]``), if any; the
        stacked composite models always see their parts' uncorrected predictions."""
        out = np.full(len(specs), np.nan)
        by_kind: dict[str, list[int]] = {}
        for i, s in enumerate(specs):
            by_kind.setdefault(s.kind, []).append(i)
        for kind, idx in by_kind.items():
            sub = [specs[i] for i in idx]
            if kind in self.models:
                x = self._features(kind, sub)
                p = self.models[kind].predict(x)
                if corrected and self.meta.get("transfer"):
                    from hwprof.latency.predictors.transfer import correction
                    p = p * correction(self.meta["transfer"], sub, p,
                                       forest=self.transfer_models.get(kind), kind_features=x)
                out[idx] = p
                continue
            for i in idx:
                parts = [parse_spec(c) for c in specs[i].children()]
                if not parts:
                    raise UserError(f"the predictor has no model for op kind {kind!r} (it was "
                                    f"fitted on {', '.join(self.kinds)}); measure {kind} ops "
                                    f"into the table or fit with rows of that kind")
                out[i] = float(np.sum(self._predict(parts, corrected)))
        return out

    def predict_intervals(self, specs: Sequence[OpSpec | dict]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(latency, low, high) in ms of every spec; low/high are NaN where the predictor
        file has no intervals (fitted by an older hwprof). See :mod:`intervals`."""
        from hwprof.latency.predictors.intervals import op_intervals
        specs = [parse_spec(s) for s in specs]
        return op_intervals(self, specs)

    def describe(self) -> dict[str, Any]:
        return {"kinds": {k: {"model": m.chosen_, "rows": int(self.meta["rows"][k]),
                              "cv": m.cv_scores_} for k, m in sorted(self.models.items())},
                **{k: self.meta.get(k) for k in ("target", "device_fingerprint", "env_key",
                                                 "sources", "fitted_at", "hwprof_version")}}


def _select_rows(df, target: str, device_fingerprint: str | None, env_key: str | None):
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}; expected one of: {', '.join(TARGETS)}")
    ok, device_fingerprint, env_key = one_device(
        df[(df["status"] == "ok") & df[target].notna()], device_fingerprint, env_key,
        purpose="a predictor is for one device", fp_hint="choose one with --device-fingerprint",
        env_hint="choose one with --env-key")
    return ok.drop_duplicates("signature", keep="last"), device_fingerprint, env_key


def training_rows(pred: LatencyPredictor, df, target: str = "latency_ms"):
    """The rows of ``df`` that ``pred`` was fitted on (its device and environment, one row per
    signature, those named in its training signatures), for refitting on parts of them."""
    rows, _, _ = _select_rows(df, target, pred.meta.get("device_fingerprint"),
                              pred.meta.get("env_key"))
    return rows[rows["signature"].isin(set(pred.meta.get("training_signatures") or ()))]


MAX_CI = 0.2  # rows whose latency is known only within more than +-20 % are not training data


def _drop_uncertain(rows, target: str, max_ci: float | None, log=None):
    """Leave out rows whose 95 % CI half-width exceeds ``max_ci`` of their latency: on a
    machine that changes speed, a big op timed few times can be off by half, and a few
    such labels pull a model further than many good ones (issue 17: dropping the 18 % of
    conv2d rows over +-20 % raised held-out ±10 % from 78 % to 88 %). Rows without a CI
    (imported tables) are kept."""
    lo_col, hi_col = (("latency_ci_low_ms", "latency_ci_high_ms") if target == "latency_ms"
                      else ("ci_low_ms", "ci_high_ms"))
    if max_ci is None or lo_col not in rows or hi_col not in rows:
        return rows
    half = (rows[hi_col].astype(float) - rows[lo_col].astype(float)) / 2
    bad = (half / rows[target].astype(float)) > max_ci
    if bad.any() and log:
        per = ", ".join(f"{k} {n}" for k, n in rows[bad]["kind"].value_counts().items())
        log(f"note: left out {int(bad.sum())} row(s) whose latency CI is wider than "
            f"±{100 * max_ci:g} % ({per}); --max-ci changes the limit")
    return rows[~bad]


def _bandwidth(fitted: dict[str, tuple[list[OpSpec], np.ndarray]],
               using: Sequence[str]) -> float | None:
    """Effective bandwidth (bytes/s) of the training rows of the stacked kinds
    (``fitted``: kind -> (specs, latencies in ms)): the median of bytes moved
    over latency, of the depthwise convs where there are some (memory-bound,
    like the parts of a block no model stands for)."""
    rates = []
    for kind in ["dwconv2d"] if "dwconv2d" in using else using:
        specs, ms = fitted[kind]
        for spec, t in zip(specs, ms):
            f = spec.features()
            if t > 0:
                rates.append((f["bytes_read"] + f["bytes_written"]) / (t * 1e-3))
    return float(np.median(rates)) if rates else None


def fit_predictor(df, *, kinds: Sequence[str] | None = None, candidates=CANDIDATES, cv: int = 5,
                  min_rows: int = MIN_ROWS, target: str = "latency_ms", scoring: str = "mape",
                  random_state: int = 0, stack: bool = True,
                  sources: Sequence[str] = (), device_fingerprint: str | None = None,
                  env_key: str | None = None, log=None, skip_short: bool | None = None,
                  max_ci: float | None = MAX_CI) -> LatencyPredictor:
    """Fit one regressor per kind on the ok rows of a table frame.

    A kind with too few rows is an error when ``kinds`` names it; of the
    table's own kinds (``kinds=None``) such kinds are skipped with a note to
    ``log`` (``skip_short`` overrides), and it is an error only when none is left.
    """
    if skip_short is None:
        skip_short = kinds is None
    rows, fp, env = _select_rows(df, target, device_fingerprint, env_key)
    rows = _drop_uncertain(rows, target, max_ci, log)
    kinds = _fittable_kinds(rows, kinds, max(min_rows, 2 * cv), skip_short, log)
    worst, n_rows, intervals = {}, {}, {}
    fitted: dict[str, tuple[list[OpSpec], np.ndarray]] = {}  # kind -> its specs and latencies
    pred = LatencyPredictor({}, {}, {})
    settings = dict(candidates=tuple(candidates), cv=cv, min_rows=min_rows, scoring=scoring,
                    random_state=random_state)
    # primitives first, so that composite kinds can stack on their parts' models
    for kind in sorted(kinds, key=lambda k: (k in COMPOSITE_KINDS, kinds.index(k))):
        part = rows[rows["kind"] == kind]
        specs, y, model = _fit_kind(pred, kind, part, target, fitted, stack, settings, log)
        rel = np.abs(model.oof_ms_ - y) / y
        worst[kind] = [{"spec": part["spec"].iloc[i], "true_ms": float(y[i]),
                        "cv_pred_ms": float(model.oof_ms_[i])}
                       for i in np.argsort(-rel)[:WORST_KEPT]]
        intervals[kind] = interval_from_residuals(y, model.oof_ms_)
        n_rows[kind] = len(y)
        fitted[kind] = (specs, y)
    pred.meta = {"target": target, "device_fingerprint": fp, "env_key": env, "rows": n_rows,
                 "sources": list(sources), "cv": cv, "candidates": list(candidates),
                 "scoring": scoring,
                 "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "hwprof_version": __version__, "worst_training_rows": worst,
                 "intervals": intervals,
                 "stack_bandwidth": pred.meta.get("stack_bandwidth", {}),
                 "training_signatures": sorted(rows[rows["kind"].isin(kinds)]["signature"]),
                 "cv_accuracy": {k: accuracy(m.oof_ms_,
                                             rows[rows["kind"] == k][target].astype(float))
                                 for k, m in pred.models.items()}}
    return pred


def _fittable_kinds(rows, kinds, need: int, skip_short: bool, log) -> list[str]:
    """The kinds to fit: ``kinds`` or the table's own, less (with a note) or refusing
    (TooFewRows) those with fewer than ``need`` rows."""
    if kinds is None:
        kinds = sorted(set(rows["kind"]))
        if not kinds:
            raise UserError("the table has no measured (ok) rows to fit on")
    else:
        kinds = list(kinds)
    counts = rows["kind"].value_counts()
    short = [(k, int(counts.get(k, 0))) for k in kinds if int(counts.get(k, 0)) < need]
    if not short:
        return kinds
    desc = ", ".join(f"{k} ({n} rows)" for k, n in short)
    advice = f"each kind needs at least {need}. Measure more (build-table --sample N --kinds ...)"
    if not skip_short or len(short) == len(kinds):
        raise TooFewRows(f"too few measured rows to fit: {desc}; {advice} or leave the kind "
                         f"out with --kinds")
    # a table's few rows of some kind (an imported one's 3 whole networks, say) are
    # answered from the table; they do not stop the other kinds from being fitted
    (log or (lambda m: None))(f"note: skipping kinds with too few measured rows: {desc}; {advice}")
    skipped = {k for k, _ in short}
    return [k for k in kinds if k not in skipped]


def _fit_kind(pred: LatencyPredictor, kind: str, part, target: str, fitted, stack: bool,
              settings: dict, log):
    """Fit ``kind``'s regressor on its rows ``part`` into ``pred`` (stacked on the parts'
    models already fitted, for a composite kind); returns its specs, latencies and model."""
    specs = stored_specs(part["spec"])
    _, fnames = feature_matrix(specs[:1])
    pred.feature_names[kind] = fnames
    if kind in COMPOSITE_KINDS and stack:
        using = sorted({c.kind for s in specs for c in s.children()} & set(pred.models))
        if using:
            pred.stacked[kind] = using
            bw = _bandwidth(fitted, using)
            if bw:
                pred.meta.setdefault("stack_bandwidth", {})[kind] = bw
    x = pred._features(kind, specs)
    y = part[target].astype(float).to_numpy()
    t0 = time.monotonic()
    model = KindRegressor(**settings).fit(x, y)
    if log:
        cvs = ", ".join(f"{c} {100 * s['mape']:.1f}/{100 * s['rmspe']:.1f}%"
                        for c, s in model.cv_scores_.items())
        log(f"{kind}: {len(y)} rows, CV MAPE/RMSPE {cvs} -> {model.chosen_} "
            f"({time.monotonic() - t0:.1f} s)")
    pred.models[kind] = model
    return specs, y, model
