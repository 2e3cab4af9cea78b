import sys

import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import get_space
from hwprof.search.evaluators import TrainEvaluator
from hwprof.search.executors import LocalExecutor, RayExecutor, make_executor

ARCHS = [["mbconv_e3_k3", "skip"], ["mbconv_e6_k3", "mbconv_e3_k3"], ["mbconv_e3_k3", "mbconv_e6_k3"]]


@pytest.fixture(scope="module")
def evaluator():
    from hwprof.search.data import load_data
    sp = get_space("tiny")
    data = load_data("digits", sp.input, sp.classes, seed=0, limit=240)
    return TrainEvaluator(sp, data, seed=7, epochs=1, batch=32)


@pytest.fixture(scope="module")
def serial(evaluator):
    return [evaluator.evaluate(a) for a in ARCHS]


def _scores(results):
    return [(r["choices"], r["accuracy"]) for r in results]


def test_make_executor_names():
    assert isinstance(make_executor(None), LocalExecutor)
    assert make_executor("local", workers=3).workers == 3
    assert make_executor("ray").address is None
    assert make_executor("ray://head:10001").address == "ray://head:10001"
    for bad in ("slurm", "ray://", "ray:head"):
        with pytest.raises(UserError, match="local, ray, ray://HOST:PORT"):
            make_executor(bad)
    with pytest.raises(UserError, match="--workers"):
        LocalExecutor(0)


def test_local_worker_processes_give_the_serial_results(evaluator, serial):
    with LocalExecutor(2) as ex:
        got = ex.map(evaluator, ARCHS)
        assert ex._pool is not None           # kept for the next call with the same evaluator
        again = ex.map(evaluator, ARCHS[:2])
    assert ex._pool is None
    assert _scores(got) == _scores(serial)
    assert _scores(again) == _scores(serial[:2])


def test_one_worker_runs_in_process(evaluator, serial):
    ex = LocalExecutor(1)
    assert _scores(ex.map(evaluator, ARCHS)) == _scores(serial)
    assert ex._pool is None


def test_missing_ray_is_one_line_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray -> ImportError
    with pytest.raises(UserError) as e:
        RayExecutor().map(len, ["ab"])
    assert "pip install 'hwprof[ray]'" in str(e.value) and "\n" not in str(e.value)


def test_ray_executor_on_a_local_ray_gives_the_serial_results(evaluator, serial):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor() as ex:
            got = ex.map(evaluator, ARCHS)
        assert ray.is_initialized()   # a Ray the executor did not start is left running
        nodes = ray.nodes()
    finally:
        ray.shutdown()
    assert _scores(got) == _scores(serial)
    assert len(nodes) == 1 and nodes[0]["Alive"]


@pytest.mark.slow
def test_ray_client_address_of_a_started_cluster_gives_the_serial_results(evaluator, serial):
    """``--executor ray://host:port``: a one-node Ray cluster with a client server, started
    by the test (as ``ray start --head`` would), reached through Ray Client."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "ray_client_server_port": 10231, "include_dashboard": False})
    try:
        with RayExecutor("ray://127.0.0.1:10231") as ex:
            got = ex.map(evaluator, ARCHS)
            assert ex._started
        assert not ex._started   # it connected, so it disconnects
    finally:
        cluster.shutdown()
    assert _scores(got) == _scores(serial)
