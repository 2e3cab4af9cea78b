"""Damaged tables, non-UTF-8 and empty ops files, failed fleet exports: one line, exit 2,
nothing written (issue 16, items 5 and 6). Synthetic tables: nothing is measured."""

import json

import pytest

from hwprof.cli import main
from hwprof.latency.table import write_table
from tests.damaged import DAMAGE
from tests.synthetic import synthetic_table

VERBS = [
    ["table", "show", "{t}"],
    ["table", "validate", "{t}"],
    ["table", "filter", "{t}", "--kind", "bn", "--out", "{tmp}/out.parquet"],
    ["table", "merge", "{t}", "{good}", "--out", "{tmp}/out.parquet"],
    ["table", "diff", "{good}", "{t}"],
    ["export", "{t}", "--format", "csv", "--out", "{tmp}/out.csv"],
    ["export", "{t}", "--format", "fleet", "--out", "{tmp}/fleet"],
    ["fit", "--table", "{t}", "--out", "{tmp}/out.predictor"],
    ["estimate", "--arch", "{tmp}/arch.json", "--table", "{t}"],
]


def one_line_error(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("hwprof: error: "), (rc, err)
    return err[0]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v[:2]))
def test_damaged_tables_are_one_line_errors_in_every_table_verb(verb, damage, tmp_path, capsys):
    bad, good = tmp_path / "bad.parquet", tmp_path / "good.parquet"
    write_table(bad, synthetic_table())
    write_table(good, synthetic_table())
    DAMAGE[damage](bad)
    (tmp_path / "arch.json").write_text(json.dumps({"space": "tiny", "choices": ["mbconv_e3_k3", "skip"]}))
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(t=bad, good=good, tmp=tmp_path) for a in verb]
    assert "is damaged" in one_line_error(argv, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("damage", ["corrupt data page", "metadata a list"])
def test_a_damaged_fleet_partition_is_a_one_line_error(damage, tmp_path, capsys):
    fleet = tmp_path / "fleet"
    assert main(["export", str(_table(tmp_path)), "--format", "fleet", "--out", str(fleet)]) == 0
    part = next(fleet.glob("*/part-0.parquet"))
    DAMAGE[damage](part)
    assert "is damaged" in one_line_error(["table", "show", str(fleet)], capsys)
    assert "is damaged" in one_line_error(
        ["export", str(_table(tmp_path, 2.0)), "--format", "fleet", "--mode", "upsert",
         "--out", str(fleet)], capsys)


def _table(tmp_path, scale=1.0):
    path = tmp_path / f"t{scale}.parquet"
    write_table(path, synthetic_table(scale))
    return path


def test_non_utf8_and_empty_ops_files_are_one_line_errors(tmp_path, capsys):
    ops = tmp_path / "ops.json"
    ops.write_bytes(b'{"kind": "relu", "input": [1, 8, 8, 8], "note": "\xe9t\xe9"}\n')
    args = ["predict", "--predictor", str(tmp_path / "p.predictor"), "--ops", str(ops)]
    assert "not UTF-8" in one_line_error(args, capsys)
    ops.write_text("[]\n")
    assert "holds no op specs" in one_line_error(args, capsys)
