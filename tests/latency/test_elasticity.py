"""The table's elasticity: fitted on a build's own passes, adopted with its level."""

import math

import pytest

from hwprof.latency import elasticity
from hwprof.latency.build import build_table
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.latency.fakebackend import STATES, FakeBackend, op_truth

LEVEL = 1.0


def _pass(base, e_true, state, n=20, wobble=0.03):
    """One pass's samples at a machine state near ``state``: the reference moves within
    +-wobble around it and the op follows it with ``e_true``."""
    refs = [state * (1 + wobble * math.sin(k)) for k in range(n)]
    return [base * r ** e_true for r in refs], refs


def _ops(n, e_true, states=(1.0, 1.07, 0.94)):
    return [(LEVEL, [_pass(0.5 + 0.1 * i, e_true, s) for s in states]) for i in range(n)]


@pytest.mark.parametrize("e_true", [0.0, 1.0, 1.5])
def test_the_fit_finds_how_far_ops_follow_the_reference(e_true):
    fit = elasticity.fit(_ops(25, e_true))
    assert fit["elasticity"] == pytest.approx(e_true, abs=0.051)
    assert fit["ops"] == 25
    assert fit["disagreement"] < fit["disagreement_default"]


def test_passes_that_agree_whatever_the_elasticity_keep_the_default():
    # every pass at the level: carrying moves nothing, so all candidates tie
    fit = elasticity.fit(_ops(25, 1.0, states=(1.0, 1.0, 1.0)))
    assert fit["elasticity"] == fit["default"] == 0.5
    assert fit["disagreement"] == pytest.approx(0.0, abs=1e-12)


def test_too_few_ops_with_several_passes_fit_nothing():
    ops = _ops(elasticity.MIN_OPS - 1, 1.0) + [(LEVEL, [_pass(1.0, 1.0, 1.05)])] * 5
    assert elasticity.fit(ops) is None


def test_a_row_is_derived_again_from_its_passes_samples():
    y1, x1 = _pass(2.0, 1.0, 1.0)
    y2, x2 = _pass(2.0, 1.0, 1.08)
    row = {"latency_ms": 9.0, "latency_ci_low_ms": 8.1, "latency_ci_high_ms": 9.9,
           "ref_level_ms": LEVEL, "pass_samples_ms": [y1, y2], "pass_sample_ref_ms": [x1, x2]}
    out = elasticity.rederive(row, 1.0)
    assert out["pass_medians_ms"] == pytest.approx([2.0, 2.0], rel=1e-9)
    assert out["latency_ms"] == pytest.approx(2.0, rel=1e-9)
    assert out["latency_ci_low_ms"] == pytest.approx(8.1 * out["latency_ms"] / 9.0)
    assert out["ref_elasticity"] == 1.0
    half = elasticity.rederive(row, 0.5)
    assert half["pass_medians_ms"][1] > 2.0 * 1.02  # carried only half-way down to the level
    row["pass_samples_ms"] = [y1, []]  # a pass measured without its samples
    assert elasticity.rederive(row, 1.0) == {}


def _specs(n):
    return [parse_spec({"kind": "relu", "input": [1, 8, 4 + i, 4]}) for i in range(n)]


def _drifting(e=1.0):
    fb = FakeBackend()
    fb.process_offsets, fb.op_elasticity = [1.0, 1.06, 0.95], e
    return fb


def test_a_new_table_fits_its_elasticity_on_its_passes_and_carries_every_row_with_it(tmp_path):
    out, specs = tmp_path / "t.parquet", _specs(24)
    logs = []
    rep = build_table(specs, [_drifting()], out, quiet=True, log=logs.append, passes=3)
    t = read_table(out)
    (entry,) = t.meta["reference"]["levels"].values()
    assert entry["elasticity"] == pytest.approx(1.0) == rep.elasticity["elasticity"]
    assert rep.reference_elasticity == pytest.approx(1.0)
    assert entry["elasticity_fit"]["ops"] == 24
    assert any("elasticity 1 fitted on 24 ops' passes" in m for m in logs)
    level = entry["level_ms"]
    assert level == pytest.approx(STATES[0])
    for s, row in t.df.set_index("signature").loc[[s.signature for s in specs]].iterrows():
        truth = op_truth(s)[0] * level
        # each pass sat at another state; carried with 1 they all read the op at the level
        assert list(row["pass_medians_ms"]) == pytest.approx([truth] * 3, rel=1e-9)
        assert row["latency_ms"] == pytest.approx(truth, rel=1e-9)
        assert row["ref_elasticity"] == pytest.approx(1.0)


def test_the_default_elasticity_leaves_such_passes_apart(tmp_path):
    # the same build with too few ops to fit: the protocol's 0.5 leaves each pass where it sat
    out = tmp_path / "t.parquet"
    rep = build_table(_specs(5), [_drifting()], out, quiet=True, log=lambda m: None, passes=3)
    (entry,) = read_table(out).meta["reference"]["levels"].values()
    assert "elasticity" not in entry and rep.elasticity is None
    row = read_table(out).df.iloc[0]
    assert max(row["pass_medians_ms"]) / min(row["pass_medians_ms"]) > 1.04


def test_a_table_that_adopts_a_level_adopts_its_elasticity_and_fits_none(tmp_path):
    specs = _specs(24)
    first = build_table(specs, [_drifting()], tmp_path / "a.parquet", quiet=True,
                        log=lambda m: None, passes=3)
    out = tmp_path / "b.parquet"
    rep = build_table(specs, [_drifting(e=0.0)], out, quiet=True, log=lambda m: None, passes=3,
                      reference_level_ms=first.reference_level_ms,
                      reference_elasticity=first.reference_elasticity)
    (entry,) = read_table(out).meta["reference"]["levels"].values()
    assert entry["elasticity"] == pytest.approx(1.0) and "elasticity_fit" not in entry
    assert rep.elasticity is None
    assert (read_table(out).df["ref_elasticity"] == 1.0).all()


def test_table_show_says_how_rows_are_carried_and_reference_from_adopts_it(tmp_path, capsys):
    from argparse import Namespace

    from hwprof.commands import table_show
    from hwprof.commands.build_table import _reference_from
    out = tmp_path / "t.parquet"
    build_table(_specs(24), [_drifting()], out, quiet=True, log=lambda m: None, passes=3)
    assert table_show.run(Namespace(path=str(out), json=False)) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "carried to it with elasticity" in ln)
    assert "elasticity 1 (fitted on 24 ops' passes" in line and "with 0.5" in line
    level, e, _ = _reference_from(out, {})
    assert (level, e) == (pytest.approx(STATES[0]), 1.0)
    few = tmp_path / "few.parquet"
    build_table(_specs(3), [_drifting()], few, quiet=True, log=lambda m: None, passes=3)
    assert _reference_from(few, {})[1] is None  # no elasticity: the protocol's own
