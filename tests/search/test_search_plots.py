"""Search plots draw whatever series a strategy's history has (epochs, trials, or none)."""

import numpy as np
import pytest

from hwprof.search.plots import plot_latency, plot_probs

NAMES = [["a", "b", "skip"], ["a", "b"]]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("history", [
    {"epoch": [1, 2], "tau": [1.0, 0.5], "expected_ms": [1.2, 1.1],
     "probs": [[[0.3, 0.3, 0.4], [0.5, 0.5]], [[0.2, 0.2, 0.6], [0.9, 0.1]]]},
    {"trial": [1, 2, 3], "trial_ms": [0.9, 1.0, None], "accuracy": [0.1, 0.2, 0.3]},
    {"trial": [1, 2], "latency_ms": [0.9, 1.0]},
    {},
], ids=["one-shot", "trials", "latency_ms", "empty"])
def test_plots_tolerate_any_history(tmp_path, history):
    final = [np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0])]
    p = plot_probs(history, NAMES, ["l1", "l2"], tmp_path / "p.png", final=final)
    q = plot_latency(history, 1.05, tmp_path / "l.png", 1.0)
    assert p.read_bytes()[:8] == PNG and q.read_bytes()[:8] == PNG


def _round(k, est, meas):
    return {"round": k, "estimate_ms": est, "measured_ms": meas, "budget_ms": 1.0}


def test_the_loop_plot_draws_measured_networks_and_skips_when_none_were(tmp_path):
    from hwprof.search.plots import plot_loop
    rounds = [_round(1, 0.97, 1.08), _round(1, 0.93, 1.01), _round(2, 0.9, 0.97)]
    p = plot_loop(rounds, 1.0, tmp_path / "loop.png", rounds[-1], 0.95)
    assert p == tmp_path / "loop.png" and p.read_bytes()[:8] == PNG
    unmeasured = [_round(1, 0.97, None)]
    assert plot_loop(unmeasured, 1.0, tmp_path / "none.png", None, 0.95) is None
    assert not (tmp_path / "none.png").exists()
