"""Load a :class:`~hwprof.latency.model.LatencyModel` from files on disk.

    model = load_latency_model("tables/cpu.parquet", "cpu.predictor")
    model.estimate_arch(space, choices)   # calibrated when a calibration is stored

The table (``--table``) answers the ops it holds; the predictor file
(``--predictor``, written by ``hwprof fit``) answers the others. The
whole-network calibration written by ``hwprof calibrate`` lives in the table's
metadata (key ``calibrations``), or in the predictor file when it was fitted
without a table; it is attached as ``model.calibration`` so that
``estimate_arch`` returns the calibrated estimate. scikit-learn is imported
only when a predictor file is given.
"""

from __future__ import annotations

import os
from typing import Optional

from hwprof.errors import UserError
from hwprof.latency.model import LatencyModel

PathLike = Optional["str | os.PathLike[str]"]


def load_latency_model(table_path: PathLike = None, predictor_path: PathLike = None, *,
                       calibrate: bool = True, device_fingerprint: str | None = None,
                       env_key: str | None = None) -> LatencyModel:
    """A LatencyModel from a table file, a predictor file, or both.

    ``calibrate=False`` leaves ``model.calibration`` unset (plain sums).
    """
    if table_path is None and predictor_path is None:
        raise UserError("give a latency table (--table), a predictor (--predictor), or both")
    table = predictor = None
    if table_path is not None:
        from hwprof.latency.table import read_table
        table = read_table(table_path)
    if predictor_path is not None:
        from hwprof.latency.predictors.persist import load_predictor
        predictor = load_predictor(predictor_path)
    model = LatencyModel(table, predictor, device_fingerprint=device_fingerprint, env_key=env_key)
    if table is not None and predictor is not None:
        from hwprof.latency.levelmerge import predictor_level_note
        model.level_note = predictor_level_note(predictor, table, str(table_path))
    if calibrate:
        from hwprof.latency.predictors.calibration import stored_calibration
        model.calibration = stored_calibration(table, predictor)
    return model
