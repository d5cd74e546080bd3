"""FastTreeShap against LightGBM's own TreeSHAP (`pred_contrib=True`): same numbers, every split type."""

from __future__ import annotations

import itertools
import math

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from leadscore.serving import treeshap
from leadscore.serving.treeshap import FastTreeShap

TOL = 1e-9
BACKENDS = ["numba", "numpy"] if treeshap.numba is not None else ["numpy"]
BIG_LEVELS = [f"k{i}" for i in range(40)]  # more than 32 categories: bitsets of two words
SMALL_LEVELS = ["red", "green", "blue"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    a[rng.random(n) < 0.3] = np.nan
    b = rng.poisson(1.0, size=n).astype(float)  # many exact zeros
    b[rng.random(n) < 0.2] = np.nan
    c = rng.exponential(size=n)
    d = rng.integers(0, 6, size=n).astype(float)
    d[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "a": a, "b": b, "c": c, "d": d, "noise": rng.normal(size=n),
        "big": pd.Categorical.from_codes(rng.integers(-1, len(BIG_LEVELS), size=n), categories=BIG_LEVELS),
        "small": pd.Categorical.from_codes(rng.integers(-1, 3, size=n), categories=SMALL_LEVELS),
    })


def _target(X: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = X["big"].cat.codes.to_numpy()
    logit = (1.2 * np.nan_to_num(X["a"].to_numpy()) + 0.9 * X["a"].isna() - 0.6 * X["b"].fillna(-1)
             + 0.5 * (X["b"] == 0) + 0.3 * X["c"] - 0.4 * X["d"].fillna(2.5)
             + np.where(big < 0, -0.8, np.where(big % 3 == 0, 1.0, -0.5)) + 0.7 * (big >= 33)
             + 0.6 * (X["small"] == "green").to_numpy())
    return (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)


def _train(params: dict, rounds: int, n: int = 3000, seed: int = 0) -> lgb.Booster:
    X = _frame(n, seed)
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1, "min_data_per_group": 5,
            "cat_smooth": 1.0}
    data = lgb.Dataset(X, _target(X, seed + 1))
    return lgb.train({**base, **params}, data, num_boost_round=rounds)


def _eval_frame() -> pd.DataFrame:
    """Fresh rows plus the hard cases: all missing, unseen and missing categories, zeros, tiny values."""
    X = _frame(400, 99)
    special = pd.DataFrame({
        "a": [np.nan, 0.0, 1e-40, -1e-36, np.nan, 2.0],
        "b": [np.nan, 0.0, 0.0, np.nan, 1e-40, 3.0],
        "c": [np.nan, 0.0, 1.0, np.nan, 0.0, 1.0],
        "d": [np.nan, 0.0, 3.0, 5.0, np.nan, 1.0],
        "noise": [np.nan, 0.0, 0.0, 0.0, 0.0, 0.0],
        "big": [None, "k0", "k35", "never-seen", "k39", "k1"],
        "small": [None, "red", "blue", "never-seen", "green", None],
    })
    frame = pd.concat([X.astype({"big": object, "small": object}), special], ignore_index=True)
    # Categories as the serving pipeline builds them; LightGBM maps them back to training codes.
    return frame.assign(big=pd.Categorical(frame["big"], categories=[*reversed(BIG_LEVELS), "never-seen"]),
                        small=pd.Categorical(frame["small"], categories=SMALL_LEVELS))


def _splits(booster: lgb.Booster) -> list[dict]:
    out = []

    def walk(node: dict) -> None:
        if "split_index" in node:
            out.append(node)
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return out


def _max_diff(booster: lgb.Booster, shap: FastTreeShap, X: pd.DataFrame | np.ndarray, **predict) -> float:
    expected = np.asarray(booster.predict(X, pred_contrib=True, **predict))
    got = shap.contributions(X)
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


@pytest.fixture(scope="module")
def small_model() -> lgb.Booster:
    """Like production: 7 leaves, depth 4, NaNs, native categoricals (one above 32 levels)."""
    return _train({"num_leaves": 7, "max_depth": 4, "learning_rate": 0.1}, 200)


@pytest.fixture(scope="module")
def deep_model() -> lgb.Booster:
    return _train({"num_leaves": 31, "max_depth": 6, "learning_rate": 0.1, "min_data_in_leaf": 5}, 60)


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_model_matches_pred_contrib(small_model: lgb.Booster, backend: str) -> None:
    splits = _splits(small_model)
    categorical = [s for s in splits if s["decision_type"] == "=="]
    assert categorical, "the model should use native categorical splits"
    assert any(int(c) >= 32 for s in categorical for c in str(s["threshold"]).split("||"))
    assert {(s["missing_type"], s["default_left"]) for s in splits if s["decision_type"] == "<="} >= {
        ("NaN", True), ("NaN", False), ("None", True)}

    shap = FastTreeShap(small_model, backend=backend)
    X = _eval_frame()
    assert _max_diff(small_model, shap, X) < TOL
    # The bias column is summed in LightGBM's order: bit-identical.
    bias = np.asarray(small_model.predict(X, pred_contrib=True))[:, -1]
    np.testing.assert_array_equal(shap.contributions(X)[:, -1], bias)
    assert shap.n_fallback_trees == 0
    assert len(shap._plan.unit_bits) == small_model.num_trees()  # one table per tree


@pytest.mark.parametrize("rows", [1, 7, treeshap._FEW_ROWS, treeshap._FEW_ROWS + 1])
@pytest.mark.parametrize("model", ["small_model", "deep_model"])
def test_a_request_row_by_row_and_a_batch_in_blocks_agree(request, model: str, rows: int) -> None:
    """A few rows take the row-by-row kernel, more the parallel block kernel: both exact,
    on the hard cases (the last rows of the evaluation frame) too."""
    booster = request.getfixturevalue(model)
    shap = FastTreeShap(booster, backend="numba" if treeshap.numba is not None else "numpy")
    X = _eval_frame().tail(rows)
    assert _max_diff(booster, shap, X) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_deeper_model_uses_leaf_tables_and_matches(deep_model: lgb.Booster, backend: str) -> None:
    shap = FastTreeShap(deep_model, backend=backend)
    assert len(shap._plan.unit_bits) > deep_model.num_trees()  # trees too big for one table
    assert _max_diff(deep_model, shap, _eval_frame()) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_exactly_at_thresholds(small_model: lgb.Booster, backend: str) -> None:
    """Rows on each threshold, one ulp either side and at +-inf: thresholds are read bit-exactly.

    dump_model() writes the +inf threshold of "all but NaN" splits as 1e300; the model text keeps inf.
    """
    shap = FastTreeShap(small_model, backend=backend)
    base = shap.to_matrix(_eval_frame().iloc[:1])
    rows = []
    splits = _splits(small_model)
    assert any(s["threshold"] == 1e300 for s in splits)
    for split in splits:
        if split["decision_type"] == "<=":
            threshold = float(split["threshold"])
            for value in (threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf),
                          np.inf, -np.inf):
                row = np.repeat(base, 1, axis=0)
                row[0, split["split_feature"]] = value
                rows.append(row)
    matrix = np.concatenate(rows)
    assert len(matrix) > 500
    assert _max_diff(small_model, shap, matrix) < TOL
    reloaded = lgb.Booster(model_str=small_model.model_to_string())  # as served from MLflow
    assert _max_diff(reloaded, FastTreeShap(reloaded, backend=backend), matrix) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_as_missing(backend: str) -> None:
    booster = _train({"num_leaves": 7, "max_depth": 4, "learning_rate": 0.1, "zero_as_missing": True}, 60)
    assert any(s["missing_type"] == "Zero" for s in _splits(booster))
    X = _eval_frame()
    X.loc[::7, "c"] = 0.0
    X.loc[::11, "a"] = -1e-36  # inside LightGBM's zero band
    assert _max_diff(booster, FastTreeShap(booster, backend=backend), X) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_missing_handling_nan_counts_as_zero(backend: str) -> None:
    booster = _train({"num_leaves": 7, "max_depth": 4, "learning_rate": 0.1, "use_missing": False}, 60)
    assert {s["missing_type"] for s in _splits(booster) if s["decision_type"] == "<="} == {"None"}
    assert _max_diff(booster, FastTreeShap(booster, backend=backend), _eval_frame()) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_input_with_odd_category_codes(small_model: lgb.Booster, backend: str) -> None:
    shap = FastTreeShap(small_model, backend=backend)
    matrix = shap.to_matrix(_eval_frame())
    odd = [2.7, -0.5, -1.0, -3.0, 1e12, 100.0, 33.9, np.nan, 1e-40, 39.0, 32.0, -1e-40]
    big = list(shap.feature_names).index("big")
    matrix[: len(odd), big] = odd
    matrix[len(odd): 2 * len(odd), list(shap.feature_names).index("small")] = odd
    assert _max_diff(small_model, shap, matrix) < TOL
    assert _max_diff(small_model, shap, matrix.astype(np.float32)) < TOL


def test_integer_arrays_become_float32_as_in_lightgbm() -> None:
    """16777219 is no float32: LightGBM reads it as 16777220, right of a split between 16777218 and -20."""
    x = np.repeat([16_777_218.0, 16_777_220.0], 200)
    X = np.column_stack([x, np.arange(len(x)) % 7])
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 3, "min_data_in_leaf": 5},
                        lgb.Dataset(X, (x > 16_777_219).astype(int)), num_boost_round=3)
    assert any(16_777_218 < s["threshold"] < 16_777_220 for s in _splits(booster))
    ints = np.array([[16_777_219, 3], [16_777_218, 1], [16_777_221, 0]], dtype=np.int64)
    assert _max_diff(booster, FastTreeShap(booster), ints) < TOL
    assert _max_diff(booster, FastTreeShap(booster), ints.astype(np.float64)) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_best_and_chosen_iterations(backend: str) -> None:
    X = _frame(3000, 5)
    y = _target(X, 6)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 31, "learning_rate": 0.3},
                        lgb.Dataset(X.iloc[:2000], y[:2000]), num_boost_round=200,
                        valid_sets=[lgb.Dataset(X.iloc[2000:], y[2000:])],
                        callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True)
    assert 4 < booster.best_iteration < booster.current_iteration()
    Xe = _eval_frame()
    assert _max_diff(booster, FastTreeShap(booster, backend=backend), Xe) < TOL
    chosen = FastTreeShap(booster, start_iteration=2, num_iteration=4, backend=backend)
    assert _max_diff(booster, chosen, Xe, start_iteration=2, num_iteration=4) < TOL


def test_single_leaf_trees_only_move_the_bias() -> None:
    stump = _train({"num_leaves": 7, "min_data_in_leaf": 2000}, 5)  # no split possible: one leaf
    assert stump.num_trees() == 1
    shap = FastTreeShap(stump)
    Xe = _eval_frame()
    assert _max_diff(stump, shap, Xe) < TOL
    assert shap.contributions(Xe)[0, -1] != 0.0
    X = _frame(3000, 0)
    more = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "max_depth": 4},
                     lgb.Dataset(X, _target(X, 1)), num_boost_round=20, init_model=stump)
    assert more.num_trees() == 21
    assert _max_diff(more, FastTreeShap(more), Xe) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_trees_too_big_for_tables_fall_back_to_lightgbm(backend: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    booster = _train({"num_leaves": 31, "max_depth": -1, "learning_rate": 0.1, "min_data_in_leaf": 5}, 30)
    monkeypatch.setattr(treeshap, "MAX_LEAF_FEATURES", 6)  # the deepest paths use 5 to 7 features
    shap = FastTreeShap(booster, backend=backend)
    assert 0 < shap.n_fallback_trees < booster.num_trees()
    assert _max_diff(booster, shap, _eval_frame()) < TOL


@pytest.mark.parametrize("params", [
    {"objective": "regression"},
    {"objective": "binary", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.6},
], ids=["regression", "random-forest"])
def test_other_single_output_models(params: dict) -> None:
    booster = _train({"num_leaves": 7, "max_depth": 4, **params}, 30)
    assert _max_diff(booster, FastTreeShap(booster), _eval_frame()) < TOL


def _brute_force_shapley(value: float, zero: np.ndarray, ones: list[int]) -> list[float]:
    """Shapley values of the leaf game v * prod_j (o_j if j in S else z_j), over every coalition S."""
    u = len(ones)

    def game(coalition: set[int]) -> float:
        return value * math.prod(ones[j] if j in coalition else zero[j] for j in range(u))

    phi = []
    for i in range(u):
        others = [j for j in range(u) if j != i]
        phi.append(sum(math.factorial(len(s)) * math.factorial(u - len(s) - 1) / math.factorial(u)
                       * (game({*s, i}) - game(set(s)))
                       for size in range(u) for s in itertools.combinations(others, size)))
    return phi


def test_leaf_tables_are_the_shapley_values_of_the_leaf_game() -> None:
    rng = np.random.default_rng(3)
    for u in range(1, 6):
        zero = rng.uniform(0.05, 0.95, size=(2, u))
        value = rng.normal(size=2)
        tables = treeshap._leaf_tables(zero, value)
        for leaf, pattern in itertools.product(range(2), range(1 << u)):
            ones = [(pattern >> j) & 1 for j in range(u)]
            expected = _brute_force_shapley(value[leaf], zero[leaf], ones)
            np.testing.assert_allclose(tables[leaf, pattern], expected, rtol=0, atol=1e-14)


def test_frame_conversion_is_lightgbms() -> None:
    from lightgbm.basic import _data_from_pandas

    frame = _eval_frame().assign(f32=np.float32(0.1), i64=7, flag=True)
    categories = [BIG_LEVELS, SMALL_LEVELS]
    theirs = _data_from_pandas(frame, "auto", "auto", categories)[0]
    ours = treeshap._frame_to_matrix(frame, categories)
    np.testing.assert_array_equal(ours, theirs.astype(np.float64))
    assert np.isnan(ours[-3, 5]) and np.isnan(ours[-6, 5])  # unseen and missing categories


def test_backend_choice(small_model: lgb.Booster, monkeypatch: pytest.MonkeyPatch) -> None:
    X = _eval_frame()
    assert FastTreeShap(small_model).backend == BACKENDS[0]
    assert _max_diff(small_model, FastTreeShap(small_model, backend="lightgbm"), X) < TOL
    monkeypatch.setattr(treeshap, "numba", None)  # without numba: LightGBM's own, not the slow numpy path
    assert FastTreeShap(small_model).backend == "lightgbm"
    with pytest.raises(ImportError):
        FastTreeShap(small_model, backend="numba")


def test_refuses_what_it_does_not_support(small_model: lgb.Booster) -> None:
    X = _frame(600, 0)
    multiclass = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                           lgb.Dataset(X, np.arange(len(X)) % 3), num_boost_round=2)
    with pytest.raises(NotImplementedError, match="one tree per iteration"):
        FastTreeShap(multiclass)
    linear = lgb.train({"objective": "binary", "linear_tree": True, "verbose": -1},
                       lgb.Dataset(X.drop(columns=["big", "small"]).fillna(0), _target(X, 1)),
                       num_boost_round=2)
    with pytest.raises(NotImplementedError, match="linear trees"):
        FastTreeShap(linear)
    shap = FastTreeShap(small_model)
    with pytest.raises(NotImplementedError, match="DataFrame or a dense"):
        shap.contributions(scipy.sparse.csr_matrix(np.zeros((2, shap.n_features))))
    with pytest.raises(ValueError, match="number of features"):
        shap.contributions(np.zeros((2, shap.n_features - 1)))
