"""Output verbs never replace a file without --force, and never write over their own input
(issue 16, item 2). Synthetic tables: nothing is measured."""

import pytest

from hwprof.cli import main
from hwprof.latency.table import read_table, write_table
from tests.synthetic import synthetic_table


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "a.parquet"
    write_table(path, synthetic_table())
    return path


def refused(argv, capsys, match):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwprof: error: ") and match in err[0], err
    return err[0]


def test_export_refuses_to_replace_another_table(table, tmp_path, capsys):
    victim = tmp_path / "victim.parquet"
    write_table(victim, synthetic_table(2.0))
    before = victim.read_bytes()
    refused(["export", table, "--format", "csv", "--out", victim], capsys, "--force")
    assert victim.read_bytes() == before and len(read_table(victim).df) == 6


def test_export_refuses_a_text_file_until_forced(table, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    refused(["export", table, "--format", "json", "--out", notes], capsys, "exists")
    assert notes.read_text() == "my notes\n"
    assert main(["export", str(table), "--format", "json", "--out", str(notes), "--force"]) == 0
    assert notes.read_text().lstrip().startswith(("[", "{"))


@pytest.mark.parametrize("verb", [
    ["table", "filter", "{t}", "--kind", "bn", "--out", "{t}"],
    ["table", "merge", "{t}", "{t}", "--out", "{t}"],
    ["export", "{t}", "--format", "csv", "--out", "{t}"],
    ["fit", "--table", "{t}", "--out", "{t}"],
    ["table", "diff", "{t}", "{t}", "--plot", "{t}"],
    ["evaluate", "--predictor", "p.predictor", "--table", "{t}", "--plot", "{t}"],
])
def test_no_verb_writes_over_its_own_input_even_with_force(verb, table, capsys):
    before = table.read_bytes()
    argv = [str(table) if a == "{t}" else a for a in verb] + ["--force"]
    refused(argv, capsys, "is also an input")
    assert table.read_bytes() == before


def test_own_input_through_another_name_is_refused(table, tmp_path, capsys):
    link = tmp_path / "link.parquet"
    link.symlink_to(table)
    refused(["table", "filter", table, "--kind", "bn", "--out", link, "--force"], capsys,
            "is also an input")
    assert len(read_table(table).df) == 6


def test_filter_and_merge_need_force_then_replace(table, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    out.write_text("precious")
    refused(["table", "filter", table, "--kind", "bn", "--out", out], capsys, "--force")
    refused(["table", "merge", table, "--out", out], capsys, "--force")
    assert out.read_text() == "precious"
    assert main(["table", "filter", str(table), "--kind", "bn", "--out", str(out), "--force"]) == 0
    assert read_table(out).df["kind"].tolist() == ["bn"]


def test_import_refuses_its_own_input(tmp_path, capsys):
    src = tmp_path / "rows.csv"
    src.write_text("kind,c,hw,lat\nrelu,8,16,0.1\n")
    refused(["import", "csv", src, "--map", "kind=kind,in_channels=c,in_h=hw,latency_ms=lat",
             "--out", src, "--force"], capsys, "is also an input")
    assert src.read_text().startswith("kind,c,hw,lat")


def test_fleet_directory_is_added_to_without_force_but_not_from_itself(table, tmp_path, capsys):
    fleet = tmp_path / "fleet"
    assert main(["export", str(table), "--format", "fleet", "--out", str(fleet)]) == 0
    assert main(["export", str(table), "--format", "fleet", "--out", str(fleet)]) == 0
    refused(["export", fleet, "--format", "fleet", "--out", fleet], capsys, "is also an input")
