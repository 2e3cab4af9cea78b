"""`hwprof search` with the multi-trial strategies: --workers, --executor, --evaluator, reports."""

import json

import pytest

from tests.search.test_search_cli_strategies import _one_error, _search, small_npz, table  # noqa: F401


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_random_search_through_the_cli_is_the_same_with_two_workers(capsys, table,  # noqa: F811
                                                                     small_npz, tmp_path):  # noqa: F811
    reps = []
    for w in (1, 2):
        rc, _, err = _search(capsys, table, tmp_path / f"w{w}", "--algo", "random", "--data",
                             small_npz, "--epochs", 2, "--retrain-epochs", 1, "--workers", w)
        assert rc == 0, err
        reps.append(_report(tmp_path / f"w{w}"))
    one, two = reps
    assert one["strategy_kind"] == "multi-trial" and one["evaluator"] == "train"
    assert one["trials"] == 2 and len(one["history"]["accuracy"]) == 2
    assert one["history"] == two["history"] and one["choices"] == two["choices"]
    assert one["executor"] == "local"
    assert one["constraints"][0]["ok"] and one["predicted_ms"] <= one["budget_ms"]
    assert (tmp_path / "w1" / "arch.json").exists() and (tmp_path / "w1" / "model.nnp").exists()


def test_spos_through_the_cli_reports_the_supernet_and_its_search(capsys, table,  # noqa: F811
                                                                  small_npz, tmp_path):  # noqa: F811
    rc, _, err = _search(capsys, table, tmp_path, "--algo", "spos", "--data", small_npz,
                         "--epochs", 1, "--retrain-epochs", 1, "--workers", 1,
                         "--strategy-option", "population=3", "--strategy-option", "generations=1")
    assert rc == 0, err
    rep = _report(tmp_path)
    assert rep["evaluator"] == "supernet" and rep["history"]["epoch"] == [1]
    assert rep["trials"] == 2 and rep["supernet_seconds"] > 0   # the 2 within the budget


@pytest.mark.parametrize("extra,match", [
    (("--algo", "random", "--workers", 0), "--workers must be >= 1"),
    (("--algo", "random", "--executor", "slurm"), "unknown executor 'slurm'"),
    (("--algo", "random", "--evaluator", "oracle"), "unknown evaluator 'oracle'"),
    (("--algo", "evolution", "--strategy-option", "population=many"), "expected an integer"),
])
def test_mistakes_are_one_line_exit_2(capsys, table, small_npz, tmp_path, extra,  # noqa: F811
                                      match):
    rc, _, err = _search(capsys, table, tmp_path, "--data", small_npz, "--epochs", 1, *extra)
    assert rc == 2 and match in _one_error(err)
