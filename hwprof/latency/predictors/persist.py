"""Predictor files: skops, never pickle, with an explicit list of trusted types.

A predictor file is a skops archive (a zip) holding the per-kind regressors,
their feature names and the predictor's metadata as JSON, plus a small
``hwprof.json`` member read *before* anything is loaded::

    {"format": "hwprof-predictor", "format_version": 1, "hwprof_version": "...",
     "sklearn_version": "...", "skops_version": "...", "kinds": [...]}

Loading refuses a file of another format version or one that holds any type
outside :data:`TRUSTED_TYPES` (skops builds only the types it is told to
trust, so loading runs no code from the file), and warns when the file was
written by another hwprof or scikit-learn version. A scikit-learn version
with another major.minor that cannot rebuild the models is a clear error
asking to refit.

Format history: 1 — first version.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hwprof import __version__
from hwprof.errors import UserError

FORMAT = "hwprof-predictor"
FORMAT_VERSION = 1
HEADER = "hwprof.json"

# Types outside skops' own safe set that a predictor file may contain.
TRUSTED_TYPES = (
    "hwprof.latency.predictors.regressors.KindRegressor",
    "hwprof.latency.predictors.regressors.LinearResidualBoosting",
    "sklearn.tree._tree.Tree",
)


class PredictorFileError(UserError):
    """A predictor file that is missing, foreign, untrusted or of another version."""


class PredictorVersionWarning(UserWarning):
    """The predictor file was written by another hwprof or scikit-learn version."""


def _versions() -> dict[str, str]:
    import sklearn
    import skops
    return {"hwprof_version": __version__, "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__}


def save_predictor(path: str | os.PathLike, predictor) -> None:
    """Write ``predictor`` (a LatencyPredictor) to ``path`` atomically."""
    import skops.io as sio

    from hwprof.latency.atomic import file_mode

    path = Path(path)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **_versions(),
              "kinds": predictor.kinds}
    body = {"models": predictor.models, "feature_names": predictor.feature_names,
            "stacked": predictor.stacked, "meta_json": json.dumps(predictor.meta, default=str)}
    forests = getattr(predictor, "transfer_models", None)  # a transfer's per-kind forests
    if forests:
        body["transfer_models"] = forests
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise PredictorFileError(f"cannot write a predictor at {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        sio.dump(body, tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(HEADER, json.dumps(header, indent=1))
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The ``hwprof.json`` header of a predictor file, checked; loads no model."""
    path = Path(path)
    if not path.exists():
        raise PredictorFileError(f"no predictor file at {path}")
    if path.is_dir():
        raise PredictorFileError(f"{path} is a directory; expected a predictor file written by "
                                 f"`hwprof fit`")
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read(HEADER))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError):
        raise PredictorFileError(f"{path} is not an hwprof predictor file (write one with "
                                 f"`hwprof fit --table TABLE --out {path.name}`)") from None
    if header.get("format") != FORMAT:
        raise PredictorFileError(f"{path} is not an hwprof predictor file")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise PredictorFileError(
            f"{path} has predictor format version {version!r}; this hwprof ({__version__}) "
            f"reads version {FORMAT_VERSION}: "
            + ("upgrade hwprof" if newer else "refit it with `hwprof fit`"))
    return header


def load_predictor(path: str | os.PathLike):
    """Load a LatencyPredictor, trusting only :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    from hwprof.latency.predictors.predictor import LatencyPredictor

    path = Path(path)
    header = read_header(path)
    here = _versions()
    for key, what in (("sklearn_version", "scikit-learn"), ("hwprof_version", "hwprof")):
        if header.get(key) != here[key]:
            warnings.warn(f"{path} was written with {what} {header.get(key)}; this is "
                          f"{what} {here[key]}. Predictions may differ; refit with `hwprof fit` "
                          f"if they look wrong", PredictorVersionWarning, stacklevel=2)
    try:
        untrusted = set(sio.get_untrusted_types(file=str(path)))
    except Exception as e:
        raise PredictorFileError(f"{path}: cannot read the predictor archive ({e})") from None
    unexpected = sorted(untrusted - set(TRUSTED_TYPES))
    if unexpected:
        raise PredictorFileError(f"{path} holds types hwprof does not trust: "
                                 f"{', '.join(unexpected)}; refusing to load it")
    try:
        body = sio.load(str(path), trusted=list(TRUSTED_TYPES))
    except Exception as e:
        raise PredictorFileError(
            f"{path} could not be loaded ({type(e).__name__}: {e}); it was written with "
            f"scikit-learn {header.get('sklearn_version')}, this is {here['sklearn_version']}: "
            f"refit it with `hwprof fit`") from None
    if not isinstance(body, dict) or not {"models", "feature_names", "meta_json"} <= set(body):
        raise PredictorFileError(f"{path}: the predictor archive lacks its models")
    return LatencyPredictor(body["models"], body["feature_names"], json.loads(body["meta_json"]),
                            stacked=body.get("stacked"),
                            transfer_models=body.get("transfer_models"))


def update_meta(path: str | os.PathLike, **changes: Any) -> None:
    """Rewrite a predictor file with some metadata keys changed (e.g. calibrations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PredictorVersionWarning)
        pred = load_predictor(path)
    pred.meta.update(changes)
    save_predictor(path, pred)
