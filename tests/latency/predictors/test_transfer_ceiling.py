"""scripts/transfer_ceiling.py on made-up pairs of devices (synthetic tables, nothing timed):
a device B that is device A times a smooth function of the op is learnt from 30 of its rows;
one whose ratio to A is random per op is not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hwprof.latency.sampling import sample_specs
from hwprof.latency.table import write_table
from tests.synthetic import synthetic_table

pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import transfer_ceiling  # noqa: E402

SPECS = sample_specs(80, kinds=["conv2d"], seed=5)


def _pair(tmp_path, ratio):
    """Tables of A (latency from MACs) and B (A times ``ratio(spec, i)``) of the same ops."""
    a_ms = [0.02 + s.features()["macs"] / 2e8 for s in SPECS]
    b_ms = [m * ratio(s, i) for i, (s, m) in enumerate(zip(SPECS, a_ms))]
    paths = []
    for name, ms, fp in (("a", a_ms, "fp-a"), ("b", b_ms, "fp-b")):
        p = tmp_path / f"{name}.parquet"
        write_table(p, synthetic_table(specs=SPECS, medians=ms, fp=fp))
        paths.append(str(p))
    return paths


def _shares(capsys, paths):
    assert transfer_ceiling.main(["--a", paths[0], "--b", paths[1], "--few", "30",
                                  "--draws", "2", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "within ±10 %" in ln]
    assert len(lines) == 2, out
    return [float(ln.split("within ±10 % ")[1].split(" %")[0]) for ln in lines]


def test_smooth_ratio_is_learnt_from_30_rows(tmp_path, capsys):
    # B is slower for small ops and faster for large ones, smoothly in the op's size
    paths = _pair(tmp_path, lambda s, i: 0.5 * (1 + 2e6 / (2e6 + s.features()["macs"])))
    few, many = _shares(capsys, paths)
    assert few >= 95 and many >= 95


def test_ratio_random_per_op_is_not(tmp_path, capsys):
    rng = np.random.default_rng(0)
    jitter = np.exp(rng.uniform(-0.4, 0.4, len(SPECS)))
    paths = _pair(tmp_path, lambda s, i: 0.5 * jitter[i])
    few, many = _shares(capsys, paths)
    assert few < 60 and many < 60


def test_refuses_tables_with_too_few_common_ops(tmp_path, capsys):
    a, b = _pair(tmp_path, lambda s, i: 0.5)
    write_table(b, synthetic_table(specs=SPECS[:40], medians=[1.0] * 40, fp="fp-b"))
    assert transfer_ceiling.main(["--a", a, "--b", b]) == 2  # 50 few rows + 10 to judge
    assert "only 40 ops in both tables" in capsys.readouterr().out
