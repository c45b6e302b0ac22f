"""Proxy ensembles: ranks of stored proxies combined without labels."""

import numpy as np
import pytest

from parzc.predictors.proxy_ensembles import AGGREGATIONS, proxy_ensemble, proxy_ranks
from parzc.predictors.targets import rank_target
from parzc.registry import UnknownNameError
from parzc.store import Store

PROXIES = ["net:nwot", "synflow", "net:params"]


@pytest.fixture(scope="module")
def matrix(mini_store):
    return Store(mini_store).assemble("nb201", "cifar10", ["synflow"], onehot=True)


def test_mean_rank_is_the_mean_of_the_scaled_ranks(matrix):
    columns = [matrix.aggregates[:, matrix.aggregate_names.index(p)] for p in PROXIES]
    expected = np.mean([rank_target(c) for c in columns], axis=0)
    np.testing.assert_array_equal(proxy_ensemble(matrix, PROXIES), expected)
    np.testing.assert_array_equal(proxy_ensemble(matrix, PROXIES, "mean_rank"), expected)


def test_log_rank_favours_what_no_proxy_rejects():
    """Ranked (3, 1), (2, 2) and (1, 3) by two proxies, the three tie on the mean rank; the
    mean log rank puts the architecture no proxy ranks last first."""
    ranks = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(AGGREGATIONS.get("mean_rank")(ranks), [0.5, 0.5, 0.5])
    logs = AGGREGATIONS.get("log_rank")(ranks)
    assert logs.argmax() == 1 and logs[0] == pytest.approx(logs[2])


@pytest.mark.parametrize("aggregation", AGGREGATIONS.names())
def test_one_proxy_keeps_its_order_and_a_failure_ranks_last(matrix, aggregation):
    nwot = matrix.aggregates[:, matrix.aggregate_names.index("net:nwot")].copy()
    score = proxy_ensemble(matrix, ["net:nwot"], aggregation)
    assert np.array_equal(np.argsort(score, kind="stable"), np.argsort(nwot, kind="stable"))
    matrix_failed = matrix.subset(np.arange(len(matrix)))
    column = matrix_failed.aggregate_names.index("net:nwot")
    matrix_failed.aggregates = matrix_failed.aggregates.copy()
    matrix_failed.aggregates[nwot.argmax(), column] = np.nan
    failed = proxy_ensemble(matrix_failed, ["net:nwot"], aggregation)
    assert failed.argmin() == nwot.argmax()


def test_ranks_are_one_to_n(matrix):
    ranks = proxy_ranks(matrix, PROXIES)
    assert ranks.shape == (3, len(matrix))
    assert ranks.min() >= 1 and ranks.max() <= len(matrix)


@pytest.mark.parametrize(
    "proxies, aggregation, error, message",
    [
        (["net:zen"], "mean_rank", ValueError, "net:zen"),
        ([], "mean_rank", ValueError, "at least one proxy"),
        (PROXIES, "median", UnknownNameError, "proxy aggregation 'median'"),
    ],
)
def test_bad_ensembles_are_named(matrix, proxies, aggregation, error, message):
    with pytest.raises(error, match=message):
        proxy_ensemble(matrix, proxies, aggregation)


def test_pool_ranking_ranks_any_architecture_among_the_pool(matrix):
    """Scored over its own pool it orders as the mean rank does; an architecture outside the
    pool gets the rank its values would have there, and a failed proxy ranks below the pool."""
    from parzc.predictors.proxy_ensembles import PoolRanking

    pool = matrix.subset(np.arange(6))
    ranking = PoolRanking.fit(pool, PROXIES)
    scores = ranking.scores(pool)
    assert scores.mean() == pytest.approx(0.0) and scores.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(np.argsort(scores), np.argsort(proxy_ensemble(pool, PROXIES)))
    others = matrix.subset(np.arange(6, len(matrix)))  # scored alone or together: the same
    np.testing.assert_array_equal(ranking.scores(others)[:1], ranking.scores(others.subset([0])))
    failed = pool.subset(np.arange(6))
    failed.aggregates[0, :] = np.nan
    assert ranking.scores(failed)[0] == pytest.approx(-ranking.mean / ranking.std)
    with pytest.raises(ValueError, match="net:zen"):
        PoolRanking.fit(pool, ["net:zen"])
