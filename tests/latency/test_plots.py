"""Plots are real PNG files with content (matplotlib Agg, no display)."""

import pytest

from hwprof.errors import UserError
from hwprof.latency.adapters import proxylessnas
from hwprof.latency.plots import plot_diff, plot_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import LatencyTable, read_table, write_table
from hwprof.latency.tableops import diff, merge
from tests.synthetic import synthetic_table

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "t.parquet"
    write_table(out, synthetic_table(specs=get_space("tiny").table_specs()))
    return read_table(out)


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return len(data), w, h


def test_table_plot(measured, tmp_path):
    out = tmp_path / "sub" / "t.png"
    res = plot_table(measured, out)
    n, w, h = _png_size(out)
    assert n > 10_000 and w > 300 and h > 200
    assert res["kinds"] == measured.df["kind"].nunique() and res["points"] == len(measured.df)


def test_table_plot_of_two_devices(measured, tmp_path):
    key = "expanded_conv-input:16x16x8-output:8x8x16-expand:3-kernel:3-stride:2-idskip:0"
    (tmp_path / "p.yaml").write_text(f"{key}: {{count: 3, mean: 0.5, var: 0.0001}}\n")
    phone = proxylessnas.import_file(tmp_path / "p.yaml", device_name="pixel1").table
    both = merge([measured, phone], allow_mixed=True).table
    res = plot_table(both, tmp_path / "both.png")
    assert _png_size(tmp_path / "both.png")[0] > 10_000 and res["points"] == len(measured.df) + 1


def test_diff_plot(measured, tmp_path):
    slow = measured.df.copy()
    slow["latency_ms"] = slow["latency_ms"] * 2.0
    res = diff(measured, LatencyTable(slow, measured.meta))
    plot_diff(res, tmp_path / "d.png")
    assert _png_size(tmp_path / "d.png")[0] > 10_000


def test_plot_mistakes(measured, tmp_path):
    with pytest.raises(UserError, match="PNG"):
        plot_table(measured, tmp_path / "t.pdf")
    empty = LatencyTable(measured.df.iloc[:0], measured.meta)
    with pytest.raises(UserError, match="no ok rows"):
        plot_table(empty, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
