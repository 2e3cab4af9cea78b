import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import FAST_PROTOCOL


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table
    from hwprof.latency.spaces import get_space

    out = tmp_path_factory.mktemp("tables") / "cpu-tiny.parquet"
    build_table(get_space("tiny").table_specs(), [get_backend("cpu")], out, protocol=FAST_PROTOCOL,
                quiet=True, log=lambda m: None)
    return out


# a short protocol and two calibration networks; on this noisy CPU the loop may end over
# the budget, which is not what this test checks (test_search_loop does, with a fake device)
FAST_LOOP = ["--calibrate-archs", "2", "--time-cap", "0.2", "--min-samples", "5", "--min-span",
             "0", "--max-rounds", "2", "--allow-over-budget"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hwprof", "search", *args], capture_output=True,
                          text=True, timeout=300)


def _budget(table, frac=0.6):
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.search.latency_loss import LatencyTable2D
    lo, hi = LatencyTable2D.from_model(get_space("tiny"), load_latency_model(table)).range_ms()
    return lo + frac * (hi - lo)


def _mid(table):
    """'mid' of the whole-network estimate (calibrated once the proxyless run calibrated it)."""
    from hwprof.commands.search import mid_budget
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    return mid_budget(get_space("tiny"), load_latency_model(table))


@pytest.mark.parametrize("algo", ["proxyless", "darts"])
def test_search_writes_arch_model_report_and_plots(tiny_table, tmp_path, algo):
    budget = _budget(tiny_table)
    # darts runs with 'mid': halfway between the fastest and the slowest architecture
    text = f"{budget * 1e3:.1f}us" if algo == "proxyless" else "mid"
    out = tmp_path / "run"
    p = _cli("--table", str(tiny_table), "--space", "tiny", "--latency-budget", text,
             "--algo", algo, "--data", "digits", "--epochs", "1", "--retrain-epochs", "1",
             "--out", str(out), *(["--no-measure"] if algo == "darts" else FAST_LOOP))
    assert p.returncode == 0, p.stderr
    assert f"[{algo}] epoch 1/1" in p.stdout and "E[latency]" in p.stdout
    rep = json.loads((out / "report.json").read_text())
    for k in ("algo", "test_accuracy", "budget_ms", "predicted_ms", "measured_ms", "search_seconds"):
        assert k in rep
    assert rep["algo"] == algo
    want = round(budget * 1e3, 1) / 1e3 if algo == "proxyless" else _mid(tiny_table)
    assert rep["budget_ms"] == pytest.approx(want)
    if algo == "proxyless":   # the table's device (cpu) is reachable: calibrated, then the loop
        assert "the table holds no calibration for tiny" in p.stdout
        assert rep["measured_ms"] is not None and rep["measured_ms"] > 0
        assert "round 1/" in p.stdout and "x budget" in p.stdout and rep["rounds"]
    else:
        assert rep["predicted_ms"] <= rep["budget_ms"]
    if algo == "darts":       # --no-measure: null, as for an unreachable device
        assert rep["measured_ms"] is None and "measured n/a" in p.stdout
    assert 0.0 <= rep["test_accuracy"] <= 1.0 and rep["search_seconds"] > 0
    arch = json.loads((out / "arch.json").read_text())
    assert arch["space"] == "tiny" and arch["choices"] == rep["choices"]
    assert arch["predicted_ms"] == pytest.approx(rep["predicted_ms"])
    for png in ("arch_probs.png", "latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the exported network loads in nnabla and classifies a 16x16 RGB image
    from hwprof.search.export import load_nnp
    x, y = load_nnp(out / "model.nnp")
    x.d = np.random.RandomState(0).randn(*x.shape)
    y.forward()
    assert y.shape == (1, 10) and np.all(np.isfinite(y.d))
    # arch.json is the format measure-arch reads
    from hwprof.latency.arch import load_arch
    sp, choices, _ = load_arch(out / "arch.json")
    assert sp.name == "tiny" and choices == rep["choices"]


@pytest.mark.parametrize("args,match", [
    (["--latency-budget", "fast"], "cannot read 'fast' as a duration"),
    (["--latency-budget", "1us"], "below the fastest architecture"),
    (["--latency-budget", "1ms", "--data", "nope.npz"], "does not exist"),
    (["--latency-budget", "1ms", "--epochs", "0"], "--epochs"),
])
def test_user_mistakes_are_one_line_errors(tiny_table, tmp_path, args, match):
    p = _cli("--table", str(tiny_table), "--space", "tiny", "--out", str(tmp_path / "r"),
             "--no-device", *args)
    assert p.returncode == 2
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("hwprof: error:")]
    assert len(errors) == 1 and match in errors[0]
    assert "Traceback" not in p.stderr


def test_missing_table_is_an_error(tmp_path):
    p = _cli("--space", "tiny", "--latency-budget", "1ms")
    assert p.returncode == 2 and "--table" in p.stderr


def test_a_calibration_from_an_older_agent_is_measured_again(tiny_table, tmp_path):
    import shutil

    from hwprof.latency.predictors.calibration import fit_calibration, store_in_meta
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table, write_table
    table = tmp_path / "old.parquet"
    shutil.copy(tiny_table, table)
    t = read_table(table)
    old = fit_calibration([1.0, 2.0, 3.0], [1.1, 2.1, 3.2], space="tiny",
                          stem_signature=get_space("tiny").fixed_specs[0].signature)
    store_in_meta(t.meta, old)            # no agent version: measured before agent 10
    write_table(table, t)
    p = _cli("--table", str(table), "--space", "tiny", "--latency-budget", "mid", "--algo",
             "proxyless", "--data", "digits", "--epochs", "1", "--retrain-epochs", "1",
             "--out", str(tmp_path / "r"), *FAST_LOOP)
    assert p.returncode == 0, p.stderr
    assert "calibration for tiny is out of date" in p.stdout
    cal = read_table(table).meta["calibrations"]["tiny"]
    assert int(cal["agent_version"]) >= 10 and cal["points"] != old.to_dict()["points"]
