from hwprof.latency.predictors.adaptive import adaptive_specs
from hwprof.latency.predictors.persist import save_predictor


def test_adaptive_configs_are_new_near_the_worst_and_reproducible(tmp_path, small_predictor):
    path = tmp_path / "p.predictor"
    save_predictor(path, small_predictor)
    a = adaptive_specs(path, 12, ["conv2d", "dwconv2d", "mbconv"], 4)
    b = adaptive_specs(path, 12, ["conv2d", "dwconv2d", "mbconv"], 4)
    c = adaptive_specs(path, 12, ["conv2d", "dwconv2d", "mbconv"], 5)
    assert [s.signature for s in a] == [s.signature for s in b]
    assert [s.signature for s in a] != [s.signature for s in c]
    kinds = [s.kind for s in a]
    assert kinds.count("conv2d") == kinds.count("dwconv2d") == kinds.count("mbconv") == 12
    trained = set(small_predictor.meta["training_signatures"])
    assert not trained & {s.signature for s in a}
    assert len({s.signature for s in a}) == len(a)
    # neighbours of small training ops stay small: no jump to 224x224 maps
    centres = [s for s in a if s.kind == "dwconv2d"]
    assert max(s.input[2] for s in centres) <= 16 * 1.5
