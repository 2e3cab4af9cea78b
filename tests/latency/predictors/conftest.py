"""Real measured tables shared by the predictor tests (small ops, short protocol)."""

import pytest

from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.conftest import FAST_PROTOCOL


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


def measure(specs, out):
    build_table(specs, [get_backend("cpu")], out, protocol=FAST_PROTOCOL, quiet=True,
                log=lambda m: None)
    return read_table(out)


@pytest.fixture(scope="session")
def small_table_path(tmp_path_factory):
    """24 conv2d + 24 dwconv2d rows measured on this CPU."""
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
