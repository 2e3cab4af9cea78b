import pytest

from hwprof.errors import UserError
from hwprof.latency.predictors.calibration import (
    Calibration,
    CalibrationSet,
    fit_calibration,
    refit_with,
    store_in_meta,
    stored_calibration,
)
from hwprof.latency.spaces import get_space


def test_affine_fit_recovers_the_line_and_beats_the_plain_sum():
    sums = [2.0, 3.0, 5.0, 8.0]
    meas = [0.8 * s + 0.5 for s in sums]
    cal = fit_calibration(sums, meas, space="tiny", stem_signature="abc")
    assert cal.slope == pytest.approx(0.8) and cal.intercept == pytest.approx(0.5)
    assert cal.calibrated_rmspe == pytest.approx(0.0, abs=1e-9)
    assert cal.sum_rmspe > 0.1
    assert cal.predict(10.0) == pytest.approx(8.5)


def test_one_or_two_points_fit_a_ratio_only():
    cal = fit_calibration([4.0, 5.0], [2.0, 3.0], space="tiny", stem_signature="abc")
    assert cal.intercept == 0.0 and cal.slope == pytest.approx(0.55)


def test_bad_measurements_are_refused():
    with pytest.raises(UserError, match="positive"):
        fit_calibration([1.0, 2.0], [0.0, 1.0], space="s", stem_signature="x")
    with pytest.raises(UserError, match="one sum per measurement"):
        fit_calibration([1.0, 2.0], [1.0], space="s", stem_signature="x")


def test_set_picks_the_space_by_its_stem_and_round_trips_as_json():
    tiny, mini = get_space("tiny"), get_space("mbv2-mini")
    t_specs = tiny.arch_specs([tiny.layers[0].candidates[0], tiny.layers[1].candidates[0]])
    cal = fit_calibration([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], space="tiny",
                          stem_signature=t_specs[0].signature)
    meta = {}
    store_in_meta(meta, cal)
    import json
    meta = json.loads(json.dumps(meta))
    cals = CalibrationSet.from_meta(meta["calibrations"])
    assert cals.apply(2.0, t_specs) == pytest.approx(2.5)
    m_specs = mini.arch_specs([lay.candidates[0] for lay in mini.layers])
    assert not cals.covers(m_specs)
    assert cals.apply(2.0, m_specs) == 2.0  # no calibration for that space: the plain sum


def test_stored_calibration_prefers_the_table():
    class T:
        meta = {}

    class P:
        meta = {}

    a = Calibration("tiny", "sig", 2.0, 0.0, 3)
    b = Calibration("tiny", "sig", 3.0, 0.0, 3)
    store_in_meta(P.meta, a)
    assert stored_calibration(None, P).by_space["tiny"].slope == 2.0
    store_in_meta(T.meta, b)
    assert stored_calibration(T, P).by_space["tiny"].slope == 3.0
    assert stored_calibration(type("E", (), {"meta": {}})(), None) is None
    with pytest.raises(UserError, match="format version"):
        Calibration.from_dict({**a.to_dict(), "format_version": 7})


def _pt(s, m, name="a"):
    return {"choices": [name], "sum_ms": s, "measured_ms": m}


def test_refit_keeps_the_first_points_and_the_newest_added_ones():
    cal = fit_calibration([2.0, 4.0, 6.0], [2.0, 4.0, 6.0], space="tiny", stem_signature="abc",
                          choices=[["r1"], ["r2"], ["r3"]])
    # networks measured later run 10 % under the first fit near 5 ms
    new = refit_with(cal, [_pt(5.0, 4.5, "l1"), _pt(5.2, 4.68, "l2")])
    assert new.n == 5 and new.space == "tiny" and new.stem_signature == "abc"
    assert [p.get("source") for p in new.points] == [None, None, None, "loop", "loop"]
    assert [p["choices"] for p in new.points] == [["r1"], ["r2"], ["r3"], ["l1"], ["l2"]]
    assert 4.5 < new.predict(5.0) < cal.predict(5.0) == pytest.approx(5.0)
    # at most `keep` added points survive, the newest; the first fit's all do
    newer = refit_with(new, [_pt(5.4, 4.86, "l3")], keep=2)
    assert [p["choices"] for p in newer.points] == [["r1"], ["r2"], ["r3"], ["l2"], ["l3"]]
    assert [p.get("source") for p in newer.points][3:] == ["loop", "loop"]
