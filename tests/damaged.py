"""Damaged copies of a table file, for the tests of one-line refusals (issue 16, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from hwprof.latency.table import META_KEY


def corrupt_data_page(path: Path, column: str = "median_ms") -> None:
    """Overwrite bytes of ``column``'s first data page; the footer stays readable."""
    md = pq.ParquetFile(path).metadata
    names = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)]
    off = md.row_group(0).column(names.index(column)).data_page_offset
    data = bytearray(path.read_bytes())
    for i in range(off, off + 24):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def replace_meta(path: Path, raw: bytes) -> None:
    """Rewrite ``path`` with ``raw`` as its ``hwprof`` metadata."""
    tbl = pq.read_table(path)
    pq.write_table(tbl.replace_schema_metadata({META_KEY: raw}), path)


DAMAGE = {
    "corrupt data page": corrupt_data_page,
    "metadata not JSON": lambda p: replace_meta(p, b"{not json"),
    "metadata not UTF-8": lambda p: replace_meta(p, b"\xff\xfe{}"),
    "metadata a list": lambda p: replace_meta(p, json.dumps([1, 2]).encode()),
    "metadata a string": lambda p: replace_meta(p, json.dumps("v2").encode()),
}
