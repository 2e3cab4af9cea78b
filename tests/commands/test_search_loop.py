"""`hwprof search` with calibration and the closed loop, against a fake device.

The table is synthetic (the ``tiny`` space's ops with made-up latencies) and
the device is a stand-in for ``measure_specs``: a network's end-to-end latency
is the table's sum of its ops times a factor (over or under the table), so no
test here times anything. The search itself runs (1 epoch on digits).
"""

import json

import pytest

from hwprof.cli import main
from hwprof.latency.backends.agent import AGENT_VERSION
from hwprof.latency.table import read_table, write_table
from tests.synthetic import synthetic_table


@pytest.fixture
def table(tmp_path):
    from hwprof.latency.spaces import get_space
    specs = get_space("tiny").table_specs()
    t = synthetic_table(specs=specs, medians=[0.02 + 0.01 * (i % 7) for i in range(len(specs))])
    path = tmp_path / "tiny.parquet"
    write_table(path, t)
    return path


class FakeDevice:
    """Replaces measure_specs (loop) and measure_archs (calibration): factor x table sum."""

    def __init__(self, table, factor, level_source="table"):
        from hwprof.latency.loading import load_latency_model
        self.model = load_latency_model(table, calibrate=False)
        self.factor, self.networks, self.calls = factor, 0, 0
        self.level_source = level_source   # "session": a table of another environment

    def ms(self, spec):
        return self.factor * self.model.sum_ms(spec.children())

    def measure_specs(self, specs, backend, **kw):
        self.calls += 1
        self.networks += len(specs)
        res = [{"latency_ms": self.ms(s), "machine": {"spread": 1.0},
                "level_source": self.level_source} for s in specs]
        return res, {"fingerprint_id": "fp-synth", "agent_version": AGENT_VERSION}

    def measure_archs(self, space, choices_list, backend, **kw):
        return self.measure_specs([space.arch_network(c) for c in choices_list], backend, **kw)


def _device(monkeypatch, table, factor, **kw):
    dev = FakeDevice(table, factor, **kw)
    monkeypatch.setattr("hwprof.latency.endtoend.measure_specs", dev.measure_specs)
    monkeypatch.setattr("hwprof.latency.calibrate.measure_archs", dev.measure_archs)
    return dev


def _search(capsys, table, out, *extra):
    rc = main(["search", "--table", str(table), "--space", "tiny", "--data", "digits",
               "--epochs", "1", "--retrain-epochs", "1", "--out", str(out), *map(str, extra)])
    o, e = capsys.readouterr()
    rep = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return rc, o, e, rep


def _budget(table, frac=0.5):
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.search.latency_loss import LatencyTable2D
    lo, hi = LatencyTable2D.from_model(get_space("tiny"), load_latency_model(table)).range_ms()
    return lo + frac * (hi - lo)


@pytest.mark.parametrize("factor", [1.3, 0.75])
def test_search_calibrates_then_loops_to_a_measured_latency_within_budget(
        monkeypatch, capsys, table, tmp_path, factor):
    dev = _device(monkeypatch, table, factor)
    budget = factor * _budget(table)
    rc, out, err, rep = _search(capsys, table, tmp_path / "run", "--latency-budget",
                                f"{budget:.4f}ms", "--calibrate-archs", 4)
    assert rc == 0, err
    assert "the table holds no calibration for tiny" in out and "stored in" in out
    # the calibration's 4 random networks, then the loop's networks added to it
    cal = read_table(table).meta["calibrations"]["tiny"]
    assert cal["n"] == 4 + len(rep["rounds"]) and cal["slope"] == pytest.approx(factor, rel=1e-6)
    assert [p.get("source") for p in cal["points"]] == [None] * 4 + ["loop"] * len(rep["rounds"])
    assert rep["calibration_update"]["added"] == len(rep["rounds"])
    assert f"refitted with the loop's {len(rep['rounds'])} network(s)" in out
    assert rep["calibrated"] and rep["calibration_seconds"] > 0
    assert rep["result"] in ("in_band", "within") and rep["measured_ms"] <= rep["budget_ms"]
    assert rep["measured_ms"] == pytest.approx(dev.ms(_network(rep["choices"])))
    for r in rep["rounds"]:
        assert {"estimate_ms", "measured_ms", "budget_ms", "ratio", "target_ms"} <= set(r)
        assert r["ratio"] == pytest.approx(r["measured_ms"] / r["budget_ms"])
    assert [c["name"] for c in rep["constraints"]] == ["latency", "params", "peak_memory"]
    assert rep["constraints"][0]["source"] == "measured"
    assert "round 1/4" in out and "x budget" in out
    assert json.loads((tmp_path / "run" / "arch.json").read_text())["choices"] == rep["choices"]
    assert (tmp_path / "run" / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loop.png" in out

    # a second search finds the stored calibration and measures nothing to calibrate
    calls, networks = dev.calls, dev.networks
    rc, out, err, rep = _search(capsys, table, tmp_path / "run2", "--latency-budget",
                                f"{budget:.4f}ms")
    assert rc == 0, err
    assert "holds one for tiny" in out
    # one measuring session per round of the loop, each measuring that round's ladder
    assert dev.calls - calls == max(r["round"] for r in rep["rounds"])
    assert dev.networks - networks == len(rep["rounds"])


def test_the_loops_networks_join_the_calibration_only_at_the_tables_level(
        monkeypatch, capsys, table, tmp_path):
    _store_identity_calibration(table)
    budget = _budget(table)
    # measured at the session's own level (a table of another environment): not added
    _device(monkeypatch, table, 0.8, level_source="session")
    rc, out, err, rep = _search(capsys, table, tmp_path / "a", "--latency-budget",
                                f"{budget:.4f}ms")
    assert rc == 0, err
    assert read_table(table).meta["calibrations"]["tiny"]["n"] == 2
    assert rep["calibration_update"] is None and "refitted" not in out
    before = rep["rounds"][0]
    # at the table's level, with --no-calibration-update: kept as it was
    _device(monkeypatch, table, 0.8)
    rc, out, err, rep = _search(capsys, table, tmp_path / "b", "--latency-budget",
                                f"{budget:.4f}ms", "--no-calibration-update")
    assert rc == 0, err
    assert read_table(table).meta["calibrations"]["tiny"]["n"] == 2
    assert "calibration_update" not in rep
    # by default: added, and the next search derives against the refitted estimate
    rc, out, err, rep = _search(capsys, table, tmp_path / "c", "--latency-budget",
                                f"{budget:.4f}ms")
    assert rc == 0, err
    cal = read_table(table).meta["calibrations"]["tiny"]
    assert cal["n"] == 2 + len(rep["rounds"])
    rc, out, err, rep = _search(capsys, table, tmp_path / "d", "--latency-budget",
                                f"{budget:.4f}ms")
    def off(r):
        return abs(r["measured_ms"] / r["estimate_ms"] - 1)
    # the identity calibration's estimates ran 25 % high on this device; the refitted one less
    assert off(before) == pytest.approx(0.2, abs=1e-6) and off(rep["rounds"][0]) < 0.1


def _network(choices):
    from hwprof.latency.spaces import get_space
    return get_space("tiny").arch_network(choices)


def _store_identity_calibration(table):
    """A calibration that says the table's sum is the network (the fake device then disagrees)."""
    from hwprof.latency.predictors.calibration import fit_calibration, store_in_meta
    from hwprof.latency.spaces import get_space
    space = get_space("tiny")
    cal = fit_calibration([1.0, 2.0], [1.0, 2.0], space="tiny",
                          stem_signature=space.fixed_specs[0].signature,
                          agent_version=AGENT_VERSION)
    t = read_table(table)
    store_in_meta(t.meta, cal)
    write_table(table, t)


def test_nothing_within_budget_is_refused_with_exit_3(monkeypatch, capsys, table, tmp_path):
    _store_identity_calibration(table)
    dev = _device(monkeypatch, table, 50.0)   # the device is 50x slower than the table says
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "arch.json").write_text("{}")   # an earlier run's answer must not survive
    # (with the 50x networks added to its calibration, the next search would refuse the
    # budget as below the fastest network before searching: kept as it was here)
    rc, out, err, rep = _search(capsys, table, out_dir, "--latency-budget",
                                f"{_budget(table):.4f}ms", "--max-rounds", 3,
                                "--no-calibration-update")
    assert rc == 3
    lines = [ln for ln in err.splitlines() if ln.startswith("hwprof: error:")]
    assert len(lines) == 1 and "no network was measured within the budget" in lines[0]
    assert "--allow-over-budget" in lines[0]
    assert not (out_dir / "arch.json").exists() and not (out_dir / "model.nnp").exists()
    assert (out_dir / "loop.png").exists() and "loop.png" in lines[0]   # what was measured
    assert rep["result"] == "over_budget" and 1 <= max(r["round"] for r in rep["rounds"]) <= 3
    assert all(r["ratio"] > 1 for r in rep["rounds"])
    assert dev.calls == max(r["round"] for r in rep["rounds"]) and dev.networks == len(rep["rounds"])

    rc, out, err, rep = _search(capsys, table, out_dir, "--latency-budget",
                                f"{_budget(table):.4f}ms", "--max-rounds", 2,
                                "--allow-over-budget")
    assert rc == 0 and rep["result"] == "over_budget_kept" and "over the budget" in err
    assert rep["measured_ms"] == min(r["measured_ms"] for r in rep["rounds"])
    assert (out_dir / "arch.json").exists()


def _no_measuring(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("measured although the device must not be used")
    monkeypatch.setattr("hwprof.latency.endtoend.measure_specs", refuse)
    monkeypatch.setattr("hwprof.latency.calibrate.measure_archs", refuse)


def test_no_device_checks_the_budget_against_the_table_only(monkeypatch, capsys, table,
                                                            tmp_path):
    _no_measuring(monkeypatch)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "loop.png").write_bytes(b"an earlier run's")   # must not pass for this one
    rc, out, err, rep = _search(capsys, table, tmp_path / "run", "--latency-budget", "mid",
                                "--no-device")
    assert rc == 0, err
    assert not (tmp_path / "run" / "loop.png").exists() and "loop.png" not in out
    assert "--no-device" in out and "checked against the latency model's estimate only" in out
    assert rep["measured_ms"] is None and rep["result"] == "estimated_within_budget"
    assert len(rep["rounds"]) == 1 and rep["constraints"][0]["source"] == "estimate"
    assert "calibrations" not in read_table(table).meta


def test_an_imported_table_is_not_calibrated_nor_measured(monkeypatch, capsys, table, tmp_path):
    _no_measuring(monkeypatch)
    t = read_table(table)
    t.df["source"] = "proxylessnas"
    write_table(table, t)
    rc, out, err, rep = _search(capsys, table, tmp_path / "run", "--latency-budget", "mid")
    assert rc == 0, err
    assert "the table was imported (proxylessnas)" in out and "table only" in out
    assert "hwprof calibrate" not in out + err
    assert rep["measured_ms"] is None and rep["device"] is None


def test_parameter_and_memory_budgets_bind_and_are_reported(monkeypatch, capsys, table,
                                                           tmp_path):
    from hwprof.latency.spaces import get_space
    from hwprof.search.constraints import Constraints
    _no_measuring(monkeypatch)
    c = Constraints.from_space(get_space("tiny"))
    least = c.fixed_params + sum(float(p.min()) for p in c.params)
    most = c.fixed_params + sum(float(p.max()) for p in c.params)
    pb = least + 0.3 * (most - least)
    mb = sorted({float(m) for layer in c.memory for m in layer} | {c.fixed_memory})
    mb = next(m for m in mb if m >= c.fixed_memory and all((lay <= m).any() for lay in c.memory))
    rc, out, err, rep = _search(capsys, table, tmp_path / "run", "--latency-budget", "mid",
                                "--no-device", "--param-budget", f"{pb:.0f}",
                                "--memory-budget", f"{mb:.0f}")
    assert rc == 0, err
    cons = {x["name"]: x for x in rep["constraints"]}
    assert cons["params"]["budget"] == pytest.approx(round(pb))
    assert cons["params"]["ok"] and cons["params"]["slack"] >= 0
    assert cons["peak_memory"]["ok"] and cons["peak_memory"]["slack"] >= 0
    assert cons["latency"]["ok"]
    assert "params:" in out and "peak_memory:" in out


@pytest.mark.parametrize("flag,value,match", [("--param-budget", "lots", "parameter count"),
                                              ("--memory-budget", "4XB", "memory size"),
                                              ("--param-budget", "1", "parameter budget")])
def test_bad_budgets_are_one_line_errors(monkeypatch, capsys, table, tmp_path, flag, value,
                                         match):
    _no_measuring(monkeypatch)
    try:
        rc = main(["search", "--table", str(table), "--space", "tiny", "--data", "digits",
                   "--latency-budget", "mid", "--no-device", "--out", str(tmp_path / "r"),
                   flag, value])
    except SystemExit as e:   # argparse's type errors exit by themselves
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and match in err and "Traceback" not in err
