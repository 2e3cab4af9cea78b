import pytest


@pytest.fixture(scope="session")
def tiny_table(tmp_path_factory):
    """A synthetic latency table of the ``tiny`` space (made-up, deterministic latencies):
    the search's unit tests need a table, not timings of this CPU."""
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import write_table
    from tests.synthetic import synthetic_table

    out = tmp_path_factory.mktemp("tables") / "tiny.parquet"
    write_table(out, synthetic_table(specs=get_space("tiny").table_specs()))
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


@pytest.fixture
def clean_registry():
    """Whatever a test registers (or scans from entry points) is undone after it."""
    from hwprof.search import registry
    saved, scanned = dict(registry._REGISTRY), registry._plugins_scanned
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry._plugins_scanned = scanned
