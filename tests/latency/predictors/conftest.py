"""Tables shared by the predictor tests: small ops with synthetic latencies.

The latencies come from a made-up device (a per-op overhead plus compute and memory
time, with a deterministic +-3 % scatter per op), so the tests check what fitting,
stacking and persisting do without depending on this CPU's timing noise. Predictors
on real measurements are the benchmarks' job (scripts/bench_predictors*.py).
"""

import hashlib

import pytest

from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table, write_table
from tests.synthetic import synthetic_table


def small_specs(n_per_kind=24, offset=0):
    """Small conv2d and dwconv2d configs (well under a millisecond each), distinct."""
    specs = []
    sides = (4, 6, 8, 10, 12, 14, 16)
    chans = (8, 16, 24, 32, 48)
    i = offset
    while len(specs) < n_per_kind:
        side, c = sides[i % len(sides)], chans[(i // len(sides)) % len(chans)]
        k = (1, 3)[(i // 35) % 2]
        specs.append(parse_spec({"kind": "conv2d", "input": [1, c, side, side],
                                 "out_channels": chans[(i * 3) % len(chans)], "kernel": k}))
        i += 1
    i = offset
    while len(specs) < 2 * n_per_kind:
        side, c = sides[i % len(sides)], chans[(i // len(sides)) % len(chans)] * 2
        specs.append(parse_spec({"kind": "dwconv2d", "input": [1, c, side, side],
                                 "kernel": (3, 5)[(i // 35) % 2], "stride": 1 + (i // 70) % 2}))
        i += 1
    return specs


def synthetic_ms(spec) -> float:
    """The made-up device: 5 us per op, 20 GMAC/s, 10 GB/s, times a fixed scatter per op."""
    f = spec.features()
    ms = 0.005 + f["macs"] / 20e6 + (f["bytes_read"] + f["bytes_written"]) / 10e6
    h = int(hashlib.sha256(spec.signature.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return ms * (0.97 + 0.06 * h)


def measure(specs, out):
    """A table of ``specs`` on the made-up device, written to ``out`` and read back."""
    specs = [s if hasattr(s, "features") else parse_spec(s) for s in specs]
    write_table(out, synthetic_table(specs=specs, medians=[synthetic_ms(s) for s in specs]))
    return read_table(out)


@pytest.fixture(scope="session")
def small_table_path(tmp_path_factory):
    """24 conv2d + 24 dwconv2d rows of the made-up device."""
    out = tmp_path_factory.mktemp("pred") / "small.parquet"
    measure(small_specs(24), out)
    return out


@pytest.fixture(scope="session")
def small_table(small_table_path):
    return read_table(small_table_path)


@pytest.fixture(scope="session")
def small_predictor(small_table):
    from hwprof.latency.predictors.predictor import fit_predictor
    return fit_predictor(small_table.df, cv=3, min_rows=10,
                         candidates=("linear", "rf"))
