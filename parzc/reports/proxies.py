"""The zero-cost proxy table: each aggregate proxy's rank correlation with test accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import stats

if TYPE_CHECKING:
    from parzc.store import Store


def aggregate_proxies(
    store: Store, space: str, dataset: str, target: str | None = None
) -> pl.DataFrame:
    """One row per (arch, proxy): per-layer proxies summed over layers plus network-level ones.

    Per-weight proxies stored as layer means (snip, plain, grasp, synflow) also get a
    "<proxy>:weights" aggregate, sum_l mean_l * params_l: the sum over every weight that the
    zero-cost literature reports (params_l counts a layer's bias too). The store holds
    canonical networks only, so each network counts once. Joined with the accuracies
    (val_acc, test_acc) of `target` (default: `dataset`, where the proxies were extracted);
    only labelled networks of a user's space have a row, and where its labels file gives no
    test accuracy, `test_acc` is the validation accuracy.
    """
    from parzc.proxies import LAYER_PROXIES

    weight_mean = [n for n in LAYER_PROXIES.names() if LAYER_PROXIES.get(n).weight_mean]
    return (
        store.connect()
        .sql(
            """
        WITH f AS (SELECT * FROM features WHERE space = $space AND dataset = $dataset),
        agg AS (
            SELECT arch_id, proxy, sum(value) AS value FROM f GROUP BY arch_id, proxy
            UNION ALL
            SELECT f.arch_id, f.proxy || ':weights', sum(f.value * p.value) FROM f
            JOIN f AS p ON p.arch_id = f.arch_id AND p.layer = f.layer AND p.proxy = 'params'
            WHERE list_contains($weight_mean, f.proxy) GROUP BY f.arch_id, f.proxy
            UNION ALL
            SELECT arch_id, 'net:' || proxy, value FROM arch_stats
            WHERE space = $space AND dataset = $dataset AND proxy <> 'n_layers'
        )
        SELECT agg.*, a.val_acc, coalesce(a.test_acc, a.val_acc) AS test_acc
        FROM agg JOIN accuracy a
        ON a.space = $space AND a.dataset = $target AND a.arch_id = agg.arch_id
        ORDER BY proxy, arch_id
        """,
            params={
                "space": space,
                "dataset": dataset,
                "target": target or dataset,
                "weight_mean": weight_mean,
            },
        )
        .pl()
    )


def proxy_correlation_table(
    store: Store, space: str, dataset: str, target: str | None = None
) -> pl.DataFrame:
    """Spearman and Kendall of every aggregate proxy (extracted on `dataset`) against the test
    accuracy of `target` (default `dataset`), over the stored networks (NaN rows dropped)."""
    rows = []
    for (proxy,), group in aggregate_proxies(store, space, dataset, target).group_by(
        "proxy", maintain_order=True
    ):
        finite = group.filter(pl.col("value").is_finite())
        x, y = finite["value"].to_numpy(), finite["test_acc"].to_numpy()
        rows.append(
            {
                "space": space,
                "dataset": target or dataset,
                "proxy_dataset": dataset,
                "proxy": proxy,
                "archs": len(group),
                "nan": len(group) - len(finite),
                "spearman": float(stats.spearmanr(x, y).statistic) if len(x) > 2 else np.nan,
                "kendall": float(stats.kendalltau(x, y).statistic) if len(x) > 2 else np.nan,
            }
        )
    return pl.DataFrame(rows).sort("spearman", descending=True, nulls_last=True)
