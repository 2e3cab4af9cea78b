"""build-table's note when the reference never reached the table's level (synthetic rows)."""

import pandas as pd

from hwprof.commands.build_table import unreached_level_note
from hwprof.latency.build import BuildReport

T0 = pd.Timestamp("2026-12-06 04:00", tz="UTC")


def rows(bracketed, at=T0 + pd.Timedelta(minutes=1)):
    return pd.DataFrame({"status": "ok", "measured_at": at, "bracketed": bracketed})


def report(p5, p95, level=1.38):
    return BuildReport(out="t.parquet", requested=3, skipped=0, reference_level_ms=level,
                       machine={"spread": p95 / p5, "p5_ms": p5, "p95_ms": p95})


def test_a_level_the_machine_never_reached_is_explained():
    note = unreached_level_note(report(1.01, 1.25), rows([False] * 19 + [True]), T0)
    assert note and "ran faster than the table's level" in note and "the 95 % of ops" in note
    assert "1.0100-1.2500 ms" in note and "1.3800 ms" in note and "table rescale" in note
    slower = unreached_level_note(report(1.5, 2.0), rows([False] * 10), T0)
    assert "ran slower" in slower


def test_no_note_when_the_level_was_reached_or_rows_bracketed_it():
    assert unreached_level_note(report(1.1, 2.3), rows([False] * 10), T0) is None  # inside
    assert unreached_level_note(report(1.01, 1.25), rows([False] * 5 + [True] * 5), T0) is None
    # rows of earlier builds of the same table do not count
    old = rows([False] * 10, at=T0 - pd.Timedelta(hours=1))
    assert unreached_level_note(report(1.01, 1.25), old, T0) is None
    assert unreached_level_note(report(1.01, 1.25, level=None), rows([False]), T0) is None
