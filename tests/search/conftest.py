import pytest

from tests.conftest import FAST_PROTOCOL


@pytest.fixture(scope="session")
def tiny_table(tmp_path_factory):
    """A real CPU latency table of the ``tiny`` space, measured with a short protocol."""
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table
    from hwprof.latency.spaces import get_space

    out = tmp_path_factory.mktemp("tables") / "cpu-tiny.parquet"
    build_table(get_space("tiny").table_specs(), [get_backend("cpu")], out, protocol=FAST_PROTOCOL,
                quiet=True, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_table):
    from hwprof.latency.loading import load_latency_model
    return load_latency_model(tiny_table)


@pytest.fixture(scope="session")
def digits_tiny():
    from hwprof.latency.spaces import get_space
    from hwprof.search.data import load_data
    sp = get_space("tiny")
    return load_data("digits", sp.input, sp.classes, seed=0)
