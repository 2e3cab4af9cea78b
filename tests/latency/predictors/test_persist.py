"""Predictor files: skops with trusted types, versions in the file, loud refusals."""

import json
import os
import stat
import zipfile

import numpy as np
import pytest
import skops.io as sio

from hwprof.latency.predictors.persist import (
    HEADER,
    PredictorFileError,
    PredictorVersionWarning,
    load_predictor,
    read_header,
    save_predictor,
)
from hwprof.latency.sampling import sample_specs


def _rewrite_header(src, dst, **changes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == HEADER:
                h = json.loads(data)
                h.update(changes)
                data = json.dumps(h).encode()
            zout.writestr(item, data)


def test_round_trip_predicts_the_same(tmp_path, small_predictor):
    import sklearn

    import hwprof
    path = tmp_path / "cpu.predictor"
    save_predictor(path, small_predictor)
    header = read_header(path)
    assert header["hwprof_version"] == hwprof.__version__
    assert header["sklearn_version"] == sklearn.__version__
    assert header["kinds"] == ["conv2d", "dwconv2d"]
    loaded = load_predictor(path)
    specs = sample_specs(10, ["conv2d", "dwconv2d"], 3)
    assert np.allclose(loaded.predict_specs(specs), small_predictor.predict_specs(specs))
    assert loaded.meta["rows"] == small_predictor.meta["rows"]


def test_other_library_versions_warn(tmp_path, small_predictor):
    path = tmp_path / "a.predictor"
    save_predictor(path, small_predictor)
    old = tmp_path / "old.predictor"
    _rewrite_header(path, old, sklearn_version="0.0.1")
    with pytest.warns(PredictorVersionWarning, match="scikit-learn 0.0.1"):
        load_predictor(old)


def test_other_format_versions_and_foreign_files_are_refused(tmp_path, small_predictor):
    path = tmp_path / "a.predictor"
    save_predictor(path, small_predictor)
    newer = tmp_path / "newer.predictor"
    _rewrite_header(path, newer, format_version=99)
    with pytest.raises(PredictorFileError, match="format version 99.*upgrade hwprof"):
        load_predictor(newer)
    junk = tmp_path / "junk.predictor"
    junk.write_text("not a zip")
    with pytest.raises(PredictorFileError, match="not an hwprof predictor file"):
        load_predictor(junk)
    with pytest.raises(PredictorFileError, match="no predictor file"):
        load_predictor(tmp_path / "missing.predictor")


class Payload:
    """A type no predictor file may hold."""

    def __init__(self):
        self.x = 1


def test_untrusted_types_are_refused_before_loading(tmp_path, small_predictor):
    path = tmp_path / "a.predictor"
    save_predictor(path, small_predictor)
    evil = tmp_path / "evil.predictor"
    sio.dump({"models": {}, "feature_names": {}, "meta_json": "{}", "x": Payload()}, evil)
    with zipfile.ZipFile(path) as z:
        header = z.read(HEADER)
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr(HEADER, header)
    with pytest.raises(PredictorFileError, match="does not trust.*Payload"):
        load_predictor(evil)


def test_predictor_files_honour_the_umask_and_keep_their_mode(tmp_path):
    from types import SimpleNamespace
    empty = SimpleNamespace(kinds=[], models={}, feature_names={}, stacked={}, meta={})
    path = tmp_path / "p.predictor"
    old = os.umask(0o027)
    try:
        save_predictor(path, empty)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        os.chmod(path, 0o644)
        save_predictor(path, empty)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    finally:
        os.umask(old)
