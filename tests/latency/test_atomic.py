"""Atomic writes honour the umask and keep a rewritten file's mode (issue 16, item 3)."""

import os
import stat

import pytest

from hwprof.latency.adapters.tabular import export_csv
from hwprof.latency.atomic import atomic_write_text
from hwprof.latency.table import write_table
from tests.synthetic import synthetic_table


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_new_tables_and_csvs_get_the_umask_mode(tmp_path, umask, mask, expected):
    umask(mask)
    write_table(tmp_path / "t.parquet", synthetic_table())
    export_csv(synthetic_table(), tmp_path / "t.csv")
    atomic_write_text(tmp_path / "t.txt", "x")
    assert [mode(tmp_path / n) for n in ("t.parquet", "t.csv", "t.txt")] == [expected] * 3


def test_rewriting_keeps_the_existing_mode(tmp_path, umask):
    path = tmp_path / "t.parquet"
    write_table(path, synthetic_table())
    os.chmod(path, 0o644)
    umask(0o077)
    write_table(path, synthetic_table(2.0))
    assert mode(path) == 0o644
    os.chmod(path, 0o600)
    umask(0o022)
    write_table(path, synthetic_table())
    assert mode(path) == 0o600
