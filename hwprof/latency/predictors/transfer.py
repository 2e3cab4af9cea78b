"""Transfer: a predictor of one device adapted to another from a few measured ops.

``hwprof fit --transfer-from a.predictor --table few_rows.parquet --out b.predictor``
keeps device A's models and learns a small multiplicative correction on the
new device's rows (50 ops are enough for the benchmark's figures)::

    log(latency_B) = log(pred_A) + w . z(spec) + b

``z`` standardises a handful of features whose effect on the ratio between
two devices is plausible and smooth: ``log(pred_A)`` itself (a faster or
slower device scales large and small ops differently: overheads against
throughput), the kind (one indicator per kind: each kind runs different
kernels), log MACs, log bytes moved, arithmetic intensity, and whether the
op is a 1x1 convolution (runtimes pick other algorithms for them). The
weights are a ridge regression whose penalty is chosen by leave-one-out
cross-validation (closed form), so a handful of rows cannot overfit: with
too few rows the penalty grows and the correction falls back to a constant
ratio. The leave-one-out errors also give the transferred predictor's
intervals (see :mod:`intervals`).

Two devices that run different kernels (nnabla's and PyTorch's on one CPU)
differ per shape, not by a smooth ratio: a kind with at least
:data:`FOREST_MIN_ROWS` rows also gets a random forest of the residual on
that kind's full features (and ``log(pred_A)``), and keeps it where its
leave-one-out error is lower than the ridge's (``forest_kinds``).

The ridge is a few numbers kept in the predictor's metadata
(``meta["transfer"]``); a kept forest travels in the predictor file beside
the models (``LatencyPredictor.transfer_models``; files without one read as
before).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.predictors.intervals import interval_from_residuals
from hwprof.latency.specs import OpSpec, stored_specs

ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 25))
MIN_TRANSFER_ROWS = 5
FOREST_MIN_ROWS = 20  # rows of one kind before a forest correction is tried for it
FOREST_GAIN = 0.9     # ... and kept only if its LOO error is below this share of the ridge's


def _raw_features(spec: OpSpec, pred_ms: float, kinds: Sequence[str]) -> list[float]:
    f = spec.features()
    moved = f["bytes_read"] + f["bytes_written"]
    k = spec.get("kernel") if spec.kind == "conv2d" else None
    pointwise = float(k == 1 or k == [1, 1])
    return [math.log(pred_ms), math.log1p(f["macs"]), math.log1p(moved),
            math.log1p(f["macs"] / moved if moved else 0.0), pointwise,
            *[float(spec.kind == kind) for kind in kinds]]


def _design(state: dict, specs: Sequence[OpSpec], pred_ms: np.ndarray) -> np.ndarray:
    x = np.array([_raw_features(s, p, state["kinds"]) for s, p in zip(specs, pred_ms)], float)
    return (x - np.array(state["mean"])) / np.array(state["scale"])


def correction(state: dict, specs: Sequence[OpSpec], pred_ms: np.ndarray,
               forest=None, kind_features=None) -> np.ndarray:
    """The factor device B's latency is over device A's predicted ``pred_ms``: the ridge's,
    or where the specs' kind kept a forest (``forest``, with ``kind_features``: the kind's
    feature matrix of ``specs``), the forest's."""
    pred_ms = np.asarray(pred_ms, float)
    if forest is not None and kind_features is not None:
        return np.exp(forest.predict(_forest_x(kind_features, pred_ms)))
    z = _design(state, specs, pred_ms)
    return np.exp(z @ np.array(state["coef"]) + state["intercept"])


def _forest_x(kind_features: np.ndarray, pred_ms: np.ndarray) -> np.ndarray:
    return np.hstack([kind_features, np.log(pred_ms)[:, None]])


def _forest():
    from sklearn.ensemble import RandomForestRegressor
    return RandomForestRegressor(n_estimators=100, min_samples_leaf=3, random_state=0,
                                 n_jobs=1)


def _forests(base, specs, pred, r, ridge_loo, log=None):
    """Per kind with enough rows: a forest of the residual ``r`` if its leave-one-out error
    beats the ridge's. Returns ({kind: fitted forest}, LOO residuals with the kept ones)."""
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    kept, loo = {}, ridge_loo.copy()
    kinds = np.array([s.kind for s in specs])
    for kind in sorted(set(kinds)):
        idx = np.flatnonzero(kinds == kind)
        if len(idx) < FOREST_MIN_ROWS:
            continue
        x = _forest_x(base._features(kind, [specs[i] for i in idx]), pred[idx])
        fit_loo = r[idx] - cross_val_predict(_forest(), x, r[idx], cv=LeaveOneOut())
        ridge_err = float(np.mean(np.abs(ridge_loo[idx])))
        forest_err = float(np.mean(np.abs(fit_loo)))
        if log:
            log(f"transfer {kind}: leave-one-out mean |log error| ridge {ridge_err:.3f}, "
                f"forest {forest_err:.3f}")
        if forest_err < FOREST_GAIN * ridge_err:
            kept[kind] = _forest().fit(x, r[idx])
            loo[idx] = fit_loo
    return kept, loo


def _ridge_loo(z: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Ridge on centred ``z`` (intercept unpenalised) -> coef, intercept, LOO residuals."""
    n, d = z.shape
    a = np.hstack([np.ones((n, 1)), z])
    pen = alpha * np.eye(d + 1)
    pen[0, 0] = 0.0
    inv = np.linalg.pinv(a.T @ a + pen)
    w = inv @ a.T @ r
    h = np.einsum("ij,jk,ik->i", a, inv, a)
    loo = (r - a @ w) / np.clip(1.0 - h, 1e-6, None)
    return w[1:], float(w[0]), loo


def fit_transfer(base, df, *, target: str = "latency_ms", source: str = "",
                 log=None) -> dict:
    """The correction fitted on the ok rows of ``df`` (the new device's table): the forests
    kept ({kind: forest}) and the state (JSON numbers) for the predictor's metadata."""
    ok = df[(df["status"] == "ok") & df[target].notna()]
    ok = ok.drop_duplicates("signature", keep="last")
    specs = stored_specs(ok["spec"])
    keep = [i for i, s in enumerate(specs) if base.can_predict(s)]
    skipped = sorted({specs[i].kind for i in range(len(specs)) if i not in set(keep)})
    specs = [specs[i] for i in keep]
    y = ok[target].astype(float).to_numpy()[keep]
    if len(specs) < MIN_TRANSFER_ROWS:
        raise UserError(f"only {len(specs)} measured row(s) of kinds the predictor knows "
                        f"({', '.join(base.kinds)}); a transfer needs at least "
                        f"{MIN_TRANSFER_ROWS} (50 give good corrections)")
    pred = base._predict(specs, corrected=False)
    kinds = sorted({s.kind for s in specs})
    raw = np.array([_raw_features(s, p, kinds) for s, p in zip(specs, pred)], float)
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale[scale == 0] = 1.0
    z = (raw - mean) / scale
    r = np.log(y / pred)
    fits = {a: _ridge_loo(z, r, a) for a in ALPHAS}
    alpha = min(ALPHAS, key=lambda a: (float(np.mean(fits[a][2] ** 2)), -a))
    coef, intercept, loo = fits[alpha]
    forests, loo = _forests(base, specs, pred, r, loo, log=log)
    loo_pred = y / np.exp(loo)  # the prediction each row got when left out
    from hwprof.latency.predictors.evaluate import accuracy
    before = accuracy(pred, y)
    after = accuracy(loo_pred, y)
    if log:
        log(f"transfer on {len(y)} rows ({', '.join(kinds)}): device A's predictor as it is "
            f"within ±10 %: {100 * before['within_10']:.0f} %; corrected (leave-one-out): "
            f"{100 * after['within_10']:.0f} % (ridge alpha {alpha:g}"
            + (f"; forest for {', '.join(forests)})" if forests else ")"))
    return forests, {"kinds": kinds, "forest_kinds": sorted(forests),
                     "mean": mean.tolist(), "scale": scale.tolist(),
                     "coef": coef.tolist(), "intercept": intercept, "alpha": alpha,
                     "rows": len(y), "target": target, "source": source,
                     "skipped_kinds": skipped, "loo_accuracy": after, "base_accuracy": before,
                     "interval": interval_from_residuals(y, loo_pred)}


def transferred(base, df, *, target: str = "latency_ms", source: str = "", from_path: str = "",
                log=None):
    """A new LatencyPredictor: ``base``'s models with a correction for ``df``'s device."""
    from hwprof.latency.predictors.predictor import LatencyPredictor, _select_rows

    rows, fp, env = _select_rows(df, target, None, None)
    forests, state = fit_transfer(base, rows, target=target, source=source, log=log)
    state["from"] = from_path
    state["from_device_fingerprint"] = base.meta.get("device_fingerprint")
    meta = dict(base.meta, transfer=state, device_fingerprint=fp, env_key=env,
                sources=[source] if source else [], target=target,
                training_signatures=sorted(rows["signature"]),
                worst_training_rows={})  # adaptive sampling's centres were device A's
    return LatencyPredictor(base.models, base.feature_names, meta, stacked=base.stacked,
                            transfer_models=forests)
