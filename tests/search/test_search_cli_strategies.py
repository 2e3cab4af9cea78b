"""`hwprof search --algo / --strategy-option`: registered names, one-line errors, a run."""

import json
import re

import numpy as np
import pytest

from hwprof.cli import main
from hwprof.latency.table import write_table
from tests.synthetic import synthetic_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from hwprof.latency.spaces import get_space
    specs = get_space("tiny").table_specs()
    t = synthetic_table(specs=specs, medians=[0.02 + 0.01 * (i % 7) for i in range(len(specs))])
    path = tmp_path_factory.mktemp("t") / "tiny.parquet"
    write_table(path, t)
    return path


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    """96 random 16x16 RGB images of 10 classes: enough batches to exercise a search."""
    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("d") / "small.npz"
    np.savez(path, x_train=rng.rand(96, 3, 16, 16).astype(np.float32),
             y_train=rng.randint(0, 10, 96))
    return path


def _search(capsys, table, out, *extra):
    rc = main(["search", "--table", str(table), "--space", "tiny", "--latency-budget", "mid",
               "--no-device", "--out", str(out), *map(str, extra)])
    o, e = capsys.readouterr()
    return rc, o, e


def _one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hwprof: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_unknown_algo_is_exit_2_listing_registered_names(capsys, table, tmp_path):
    rc, _, err = _search(capsys, table, tmp_path, "--algo", "genetic")
    assert rc == 2
    line = _one_error(err)
    for name in ("darts", "proxyless", "fbnet", "random", "evolution", "spos"):
        assert name in line
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("opt,match", [
    ("tau0", "expected KEY=VALUE"),
    ("population=20", "has no option population"),
    ("tau0=warm", "expected a number"),
])
def test_bad_strategy_options_are_exit_2(capsys, table, tmp_path, opt, match):
    rc, _, err = _search(capsys, table, tmp_path, "--algo", "darts", "--strategy-option", opt)
    assert rc == 2 and match in _one_error(err)


def test_help_lists_the_registered_strategies(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    for name, kind in (("darts", "one-shot"), ("fbnet", "one-shot"), ("proxyless", "one-shot"),
                       ("random", "multi-trial"), ("evolution", "multi-trial"),
                       ("spos", "multi-trial")):
        assert re.search(rf"^  {name} +{kind}  +\S", out, re.M), name
    assert "--strategy-option" in out


def test_fbnet_through_the_cli_with_options(capsys, table, small_npz, tmp_path):
    out = tmp_path / "run"
    rc, o, err = _search(capsys, table, out, "--algo", "fbnet", "--data", small_npz,
                         "--epochs", "2", "--retrain-epochs", "0", "--batch-size", "16",
                         "--strategy-option", "tau0=3", "--strategy-option", "warmup=0")
    assert rc == 0, err
    assert "[fbnet] epoch 2/2" in o
    rep = json.loads((out / "report.json").read_text())
    assert rep["algo"] == "fbnet" and rep["strategy_kind"] == "one-shot"
    assert rep["strategy_options"] == {"tau0": "3", "warmup": "0"}
    assert rep["history"]["tau"][0] == pytest.approx(3.0)
    assert rep["predicted_ms"] <= rep["budget_ms"]
    assert rep["batch"] == 16 and rep["arch_steps"] > 0
