"""The fusion predictor and what it reads: cell graphs, aligned layer slots, the unlabelled pool."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from parzc.neighbours import neighbour_means
from parzc.predictors import create_predictor
from parzc.predictors.fusion_net import packed_slots
from parzc.predictors.proxy_ensembles import proxy_ensemble
from parzc.predictors.targets import rank_target
from parzc.predictors.torch_base import seeded
from parzc.registry import UnknownNameError
from parzc.spaces import get_space
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix

PROXIES = ["grad_norm", "snip", "synflow"]
FAST = dict(
    dim=16,
    depth=1,
    pretrain_epochs=2,
    epochs=5,
    device="cpu",
    pretrain_proxies=["net:nwot", "synflow", "net:params"],
)


@pytest.fixture(scope="module")
def mini_matrix(mini_store) -> FeatureMatrix:
    return Store(mini_store).assemble("nb201", "cifar10", PROXIES, onehot=True)


# --- cell graphs ---------------------------------------------------------------------------


def test_nb201_cell_graph_links_follow_the_cell():
    space = get_space("nb201")
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    graph = space.cell_graph(space.canonical(arch))
    vocab = space.graph_vocabulary
    # input, the 6 edge operations in arch-string order, output
    assert [vocab[i] for i in graph.ops] == [
        "input",
        "nor_conv_3x3",
        "none",
        "none",  # skip_connect 1->2 is dead: node 2 feeds only a `none` edge
        "avg_pool_3x3",
        "nor_conv_1x1",
        "none",
        "output",
    ]
    links = {tuple(map(int, e)) for e in np.argwhere(graph.adjacency)}
    # input -> conv3x3 (0->1) and avg_pool (0->3); conv3x3 feeds conv1x1 (1->3); both feed output
    assert links == {(0, 1), (0, 4), (1, 5), (4, 7), (5, 7)}


def test_twin_cells_share_their_canonical_graph():
    space = get_space("nb201")
    archs = space.archs()
    twins = archs.filter(archs["arch_id"] != archs["network_id"]).head(20)
    canonical = dict(archs.select("arch_id", "arch").iter_rows())
    for arch, network in twins.select("arch", "network_id").iter_rows():
        a = space.cell_graph(space.canonical(arch))
        b = space.cell_graph(canonical[network])
        assert np.array_equal(a.ops, b.ops) and np.array_equal(a.adjacency, b.adjacency)


def test_nb101_graph_is_the_pruned_cell():
    space = get_space("nb101")
    arch = space.archs()["arch"][0]
    spec = space.decode(arch)
    graph = space.cell_graph(arch)
    n = spec.num_vertices
    assert np.array_equal(graph.adjacency[:n, :n], np.array(spec.matrix))
    assert graph.adjacency[n:].sum() == 0 and (graph.ops[n:] == 0).all()
    assert [space.graph_vocabulary[i] for i in graph.ops[:n]] == list(spec.ops)


def test_darts_graph_gives_every_operation_one_input_and_one_sum():
    space = get_space("nb301")
    graph = space.cell_graph(space.archs()["arch"][0])
    vocab = space.graph_vocabulary
    labels = [vocab[i] for i in graph.ops]
    ops = [i for i, label in enumerate(labels) if ":" in label]
    assert len(ops) == 16 and graph.ops.shape == (space.graph_nodes,)
    assert (graph.adjacency[:, ops].sum(axis=0) == 1).all()
    assert (graph.adjacency[ops, :].sum(axis=1) == 1).all()
    sums = [i for i, label in enumerate(labels) if label == "sum"]
    assert (graph.adjacency[:, sums].sum(axis=0) == 2).all()  # two operations per state


def test_spaces_without_cells_say_so():
    with pytest.raises(NotImplementedError, match="autoformer"):
        get_space("autoformer").cell_graph("x")


# --- aligned slots ------------------------------------------------------------------------


def test_slots_put_each_layer_under_its_name(mini_store, mini_matrix):
    data = mini_matrix
    assert data.slots.shape == (len(data), len(data.slot_proxies), len(data.slot_names))
    assert data.slot_names[0] == "stem.0" and data.slot_names[-1] == "classifier"
    features = Store(mini_store).sql(
        "SELECT arch_id, layer_name::VARCHAR AS name, value FROM features WHERE proxy = 'snip'"
    )
    p = data.slot_proxies.index("snip")
    row = {int(a): i for i, a in enumerate(data.arch_ids)}
    for arch, name, value in features.iter_rows():
        assert data.slots[row[arch], p, data.slot_names.index(name)] == pytest.approx(value)
    # a slot an arch lacks is NaN, and every arch has as many present slots as layers
    present = np.isfinite(data.slots[:, p]).sum(axis=1)
    counts = features.group_by("arch_id").len()
    assert sorted(present) == sorted(counts["len"].to_list())


def test_packed_slots_are_the_layers_in_module_order():
    slots = np.full((1, 1, 5), np.nan)
    slots[0, 0, [1, 3]] = [7.0, 9.0]
    packed = packed_slots(slots)
    assert packed[0, 0, :2].tolist() == [7.0, 9.0] and np.isnan(packed[0, 0, 2:]).all()


def test_matrix_with_slots_and_graphs_round_trips(tmp_path, mini_matrix):
    mini_matrix.save(tmp_path / "m.npz")
    back = FeatureMatrix.load(tmp_path / "m.npz")
    assert back.slot_names == mini_matrix.slot_names
    assert back.graph_vocabulary == mini_matrix.graph_vocabulary
    np.testing.assert_array_equal(back.slots, mini_matrix.slots)
    np.testing.assert_array_equal(back.graph_adjacency, mini_matrix.graph_adjacency)


def test_unlabelled_pool_hides_the_accuracies(mini_matrix):
    pool = mini_matrix.unlabelled()
    assert np.isnan(pool.val_acc).all() and np.isnan(pool.test_acc).all()
    np.testing.assert_array_equal(pool.slots, mini_matrix.slots)
    assert not np.isnan(mini_matrix.val_acc).any()


# --- targets and pretraining target ---------------------------------------------------------


def test_rank_target_and_proxy_ensemble(mini_matrix):
    assert rank_target(np.array([10.0, 90.0, 50.0])).tolist() == [0.0, 1.0, 0.5]
    nwot = mini_matrix.aggregates[:, mini_matrix.aggregate_names.index("net:nwot")]
    ranks = proxy_ensemble(mini_matrix, ["net:nwot"])
    assert np.array_equal(np.argsort(ranks), np.argsort(nwot))


# --- the predictor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cell_attention": "hops", "pretrain_branch_heads": True},
        {"members": 2, "neighbour_smoothing": 0.3},
        {"members": 2, "finetune_averaging": 0.4},
        {"cell_attention": "flow", "cell_flow_passes": True},
        {"cell_attention": "siblings", "pretrain_flow_surrogate": 1.0},
        {
            "pretrain_branch_heads": True,
            "pretrain_head_proxies": ["snip", "net:params"],
            "pretrain_flow_surrogate": 1.0,
            "pretrain_slot_statistics": 1.0,
        },
    ],
    ids=[
        "links",
        "hops+branch_heads",
        "members+smoothing",
        "members+averaging",
        "flow_passes",
        "siblings+surrogate",
        "head_proxies+surrogate+slot_statistics",
    ],
)
def test_fusion_fits_predicts_and_reloads_bitwise(tmp_path, mini_matrix, options):
    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    model = create_predictor("fusion", **FAST, **options, mc_samples=3, tree_weight=0.5)
    report = model.fit(train, seed=0, pool=pool)
    assert report["n_pool"] == len(mini_matrix) and report["pretrain_seconds"] > 0
    score, uncertainty = model.predict(mini_matrix)
    assert np.isfinite(score).all() and (uncertainty >= 0).all()
    model.save(tmp_path / "fusion.pkl")
    again = type(model).load(tmp_path / "fusion.pkl").predict(mini_matrix)
    np.testing.assert_array_equal(again[0], score)
    # the same seed gives the same scores
    twin = create_predictor("fusion", **FAST, **options, mc_samples=3, tree_weight=0.5)
    twin.fit(train, seed=0, pool=pool)
    np.testing.assert_array_equal(twin.predict(mini_matrix)[0], score)


def _six_labels_and_a_pool_without(
    matrix: FeatureMatrix, left_out: int
) -> tuple[FeatureMatrix, FeatureMatrix]:
    """The first 6 archs as training labels, and a pool of every arch but the last `left_out`
    (so that some scored archs are outside it)."""
    return matrix.subset(np.arange(6)), matrix.subset(
        np.arange(len(matrix) - left_out)
    ).unlabelled()


def test_neighbour_smoothing_averages_with_the_neighbours_pool_scores(mini_matrix):
    """Smoothing mixes a score with the mean pool score of its cells' one-edit neighbours, for
    pool networks (means kept from fit) and others (searched when scored) alike; the networks
    themselves are those of the unsmoothed fit (same seed)."""
    train, pool = _six_labels_and_a_pool_without(mini_matrix, 4)
    plain = create_predictor("fusion", **FAST, tree_weight=0.5)
    plain.fit(train, seed=0, pool=pool)
    smooth = create_predictor("fusion", **FAST, tree_weight=0.5, neighbour_smoothing=0.3)
    smooth.fit(train, seed=0, pool=pool)
    score, pool_score = plain.predict(mini_matrix)[0], plain.predict(pool)[0]
    means = neighbour_means("nb201", mini_matrix.network_ids, pool.network_ids, pool_score)
    assert np.isfinite(means).all()
    expected = 0.7 * score + 0.3 * means
    np.testing.assert_allclose(smooth.predict(mini_matrix)[0], expected, rtol=1e-9)


def test_a_smoothing_model_of_the_old_layout_asks_to_be_fitted_again(tmp_path, mini_matrix):
    import pickle

    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    model = create_predictor("fusion", **FAST, neighbour_smoothing=0.3)
    model.fit(train, seed=0, pool=pool)
    model.save(tmp_path / "fusion.pkl")
    payload = pickle.loads((tmp_path / "fusion.pkl").read_bytes())
    payload["state"]["meta"]["neighbour_pool"] = (pool.onehot, np.zeros(len(pool)))  # old layout
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match="canonical codes only; fit it again"):
        type(model).load(tmp_path / "old.pkl")


def test_reweighting_a_fit_equals_fitting_with_the_other_weights(mini_matrix):
    """Members and trees do not depend on tree_weight or neighbour_smoothing: a fit re-blended
    at other weights scores as a fit made with them (same seed), and at its own weights as
    itself; without trees it cannot take a tree weight."""
    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    fitted = create_predictor("fusion", **FAST, tree_weight=0.5, neighbour_smoothing=0.2)
    fitted.fit(train, seed=0, pool=pool)
    other = create_predictor("fusion", **FAST, tree_weight=0.25, neighbour_smoothing=0.4)
    other.fit(train, seed=0, pool=pool)
    again = fitted.reweighted(pool, tree_weight=0.5, neighbour_smoothing=0.2)
    np.testing.assert_array_equal(again.predict(mini_matrix)[0], fitted.predict(mini_matrix)[0])
    moved = fitted.reweighted(pool, tree_weight=0.25, neighbour_smoothing=0.4)
    np.testing.assert_allclose(moved.predict(mini_matrix)[0], other.predict(mini_matrix)[0])
    assert fitted.tree_weight == 0.5  # the fitted model is left as it was
    no_trees = create_predictor("fusion", **FAST)
    no_trees.fit(train, seed=0, pool=pool)
    with pytest.raises(ValueError, match="fitted without trees"):
        no_trees.reweighted(pool, tree_weight=0.5, neighbour_smoothing=0.0)


def test_proxy_prior_mixes_the_pool_rank_of_its_proxies_into_the_final_score(mini_matrix, tmp_path):
    """prior_weight w: (1 - w) x the smoothed score z-scored over the pool + w x the mean pool
    rank of prior_proxies z-scored over the pool; a re-blend of a fit without the prior gives
    the same, the prior's proxies are ranked among the pool's values whatever rows are scored,
    and a saved fit keeps its prior."""
    train, pool = _six_labels_and_a_pool_without(mini_matrix, 2)
    plain = create_predictor("fusion", **FAST, neighbour_smoothing=0.2)
    plain.fit(train, seed=0, pool=pool)
    prior = {"prior_proxies": ["net:nwot", "net:params"], "prior_weight": {0: 0.3, 7: 0.0}}
    model = create_predictor("fusion", **FAST, neighbour_smoothing=0.2, **prior)
    model.fit(train, seed=0, pool=pool)
    pool_score = plain.predict(pool)[0]
    columns = [mini_matrix.aggregate_names.index(c) for c in prior["prior_proxies"]]

    def pool_rank(data) -> np.ndarray:  # mid-rank of each value among the pool's, in [0, 1]
        ranks = [
            [(np.sum(pool.aggregates[:, c] < v) + np.sum(pool.aggregates[:, c] <= v)) / 2
             for v in data.aggregates[:, c]]
            for c in columns
        ]  # fmt: skip
        return np.mean(ranks, axis=0) / len(pool)

    rank = pool_rank(mini_matrix)
    pool_ranks = pool_rank(pool)
    expected = 0.7 * (plain.predict(mini_matrix)[0] - pool_score.mean()) / pool_score.std()
    expected += 0.3 * (rank - pool_ranks.mean()) / pool_ranks.std()
    np.testing.assert_allclose(model.predict(mini_matrix)[0], expected, rtol=1e-9)
    # three rows scored alone: the prior's ranks are still among the pool's (float32 forwards of
    # another batch size round differently, by about 1e-7)
    three = model.predict(mini_matrix.subset(np.arange(3)))[0]
    np.testing.assert_allclose(three, expected[:3], rtol=1e-5)
    again = plain.reweighted(
        pool,
        tree_weight=0.0,
        neighbour_smoothing=0.2,
        prior_weight=0.3,
        prior_proxies=prior["prior_proxies"],
    )
    np.testing.assert_allclose(again.predict(mini_matrix)[0], expected, rtol=1e-9)
    model.save(tmp_path / "prior.pkl")
    loaded = type(model).load(tmp_path / "prior.pkl")
    np.testing.assert_array_equal(loaded.predict(mini_matrix)[0], model.predict(mini_matrix)[0])
    # 7 labels: the entry for 7 (0) applies and the score is the plain fit's
    more = create_predictor("fusion", **FAST, neighbour_smoothing=0.2, **prior)
    more.fit(mini_matrix.subset(np.arange(7)), seed=0, pool=pool)
    plain7 = create_predictor("fusion", **FAST, neighbour_smoothing=0.2)
    plain7.fit(mini_matrix.subset(np.arange(7)), seed=0, pool=pool)
    np.testing.assert_array_equal(more.predict(mini_matrix)[0], plain7.predict(mini_matrix)[0])


def test_tree_weight_by_label_count_applies_the_entry_for_the_fit(mini_matrix, tmp_path):
    """{labels: weight}: the entry with the most labels not above the fit's applies, so a fit
    on 5 labels blends as tree_weight 0.5 and one on 7 as 0 (no trees); JSON's string keys
    are read as label counts, and a saved fit keeps the weight it was fitted with."""
    pool = mini_matrix.unlabelled()
    by_labels = {"0": 0.5, "6": 0.0}  # as a saved fit's JSON metadata gives them
    for labels, weight in ((5, 0.5), (7, 0.0)):
        train = mini_matrix.subset(np.arange(labels))
        model = create_predictor("fusion", **FAST, tree_weight=by_labels)
        assert model.tree_weight == {0: 0.5, 6: 0.0}
        model.fit(train, seed=0, pool=pool)
        fixed = create_predictor("fusion", **FAST, tree_weight=weight)
        fixed.fit(train, seed=0, pool=pool)
        assert (model._trees is None) == (weight == 0)
        assert model.has_trees == (weight > 0)
        np.testing.assert_array_equal(model.predict(mini_matrix)[0], fixed.predict(mini_matrix)[0])
        model.save(tmp_path / "fit.pkl")
        loaded = type(model).load(tmp_path / "fit.pkl")
        np.testing.assert_array_equal(loaded.predict(mini_matrix)[0], fixed.predict(mini_matrix)[0])


def test_probes_blend_ridge_fits_on_the_pretrained_members(mini_matrix, tmp_path):
    """A probe is a ridge fit of the training labels' ranks on a member's embedding before
    fine-tuning: its scores are the embedding's, standardised, times its weights, and they rank
    the training networks as the labels do. The members are those of the fit without probes
    (same seed); the score mixes the two at probe_weight before the trees, and re-blending at
    weight 0 gives the fit without probes. A saved fit keeps its probes."""
    train, pool = mini_matrix.subset(np.arange(8)), mini_matrix.unlabelled()
    options = dict(FAST, members=2, pretrain_epochs=20, tree_weight=0.5)
    probed = create_predictor("fusion", **options, probe_weight=0.5, probe_ridge=0.1)
    probed.fit(train, seed=0, pool=pool)
    plain = create_predictor("fusion", **options)
    plain.fit(train, seed=0, pool=pool)
    assert probed.has_probes and not plain.has_probes and len(probed._probes) == 2
    pretrained = create_predictor("fusion", **options)  # no labels: the pretrained members
    pretrained.fit(train.subset(np.zeros(len(train), dtype=bool)), seed=0, pool=pool)
    inputs = probed._inputs(train, torch.device("cpu"))
    for probe, member in zip(probed._probes, pretrained._models, strict=True):
        torch.testing.assert_close(probe.encoder.state_dict(), member.state_dict(), rtol=0, atol=0)
        with seeded(0, torch.device("cpu")):  # the slots branch samples its Bayesian weights
            embedded = probe.encoder.embedding(inputs).double().detach().numpy()
        expected = (embedded - probe.mean) / probe.std @ probe.weights
        np.testing.assert_allclose(probe.scores(inputs, 0), expected, rtol=1e-6)
        assert kendalltau(expected, train.val_acc).statistic > 0.8
    for ours, theirs in zip(probed._models, plain._models, strict=True):
        torch.testing.assert_close(ours.state_dict(), theirs.state_dict(), rtol=0, atol=0)
    data = probed._inputs(mini_matrix, torch.device("cpu"))
    nets = np.mean([n.mean(axis=0) for n in probed._standardised(probed._mc_scores(data))], 0)
    probes = np.mean(probed._standardised_probes(probed._probe_scores(data)), axis=0)
    mean, sd = probed._meta["scales"][-1]
    trees = (probed._trees.predict(mini_matrix)[0] - mean) / sd
    expected = 0.5 * (0.5 * nets + 0.5 * probes) + 0.5 * trees
    np.testing.assert_allclose(probed.predict(mini_matrix)[0], expected, rtol=1e-9)
    assert not np.allclose(expected, plain.predict(mini_matrix)[0])
    unprobed = probed.reweighted(pool, tree_weight=0.5, neighbour_smoothing=0.0, probe_weight=0)
    np.testing.assert_allclose(unprobed.predict(mini_matrix)[0], plain.predict(mini_matrix)[0])
    with pytest.raises(ValueError, match="fitted without probes"):
        replace(plain, probe_weight=0.5).adopt(plain, pool)
    probed.save(tmp_path / "probed.pkl")
    loaded = type(probed).load(tmp_path / "probed.pkl")
    np.testing.assert_array_equal(loaded.predict(mini_matrix)[0], probed.predict(mini_matrix)[0])


def test_pretrained_share_interpolates_each_member_towards_its_pretrained_weights(mini_matrix):
    """With pretrained_share s, each member's weights are s x its pretrained weights + (1 - s) x
    those of the same fit without the share (same seed); by labels, the share of the fit's
    label count applies, and the fit's settings record that share, not the spec."""
    train, pool = mini_matrix.subset(np.arange(8)), mini_matrix.unlabelled()
    options = dict(FAST, members=2, pretrain_epochs=5)
    shared = create_predictor("fusion", **options, pretrained_share={0: 0.25, 100: 0.0})
    shared.fit(train, seed=0, pool=pool)
    plain = create_predictor("fusion", **options)
    plain.fit(train, seed=0, pool=pool)
    pretrained = create_predictor("fusion", **options)  # no labels: the pretrained members
    pretrained.fit(train.subset(np.zeros(len(train), dtype=bool)), seed=0, pool=pool)
    assert shared._meta["pretrained_share"] == 0.25
    for ours, tuned, before in zip(shared._models, plain._models, pretrained._models, strict=True):
        tuned, before = tuned.state_dict(), before.state_dict()
        assert any(not torch.equal(tuned[k], before[k]) for k in tuned)
        for name, value in ours.state_dict().items():
            torch.testing.assert_close(value, 0.25 * before[name] + 0.75 * tuned[name])
    assert shared.fit_settings(8)["pretrained_share"] == 0.25
    assert shared.fit_settings(100)["pretrained_share"] == 0.0
    assert shared.fit_settings(100) == replace(shared, pretrained_share=0.0).fit_settings(100)


def test_finetune_averaging_keeps_the_mean_of_the_last_epochs_weights():
    """SWA: the learning rate anneals until the last share of the epochs begins, then holds, and
    the model ends with the mean of its weights at the ends of those epochs."""
    epochs, averaged_epochs, lr = 10, 4, 0.05
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, generator=gen), torch.randn(12, generator=gen)
    start = torch.nn.Linear(3, 1)
    model, reference = copy.deepcopy(start), copy.deepcopy(start)
    fusion = create_predictor("fusion", **FAST)
    fusion._train_stage(
        model,
        {"x": (x,)},
        y,
        epochs=epochs,
        batch_size=64,
        lr=lr,
        loss_fn=torch.nn.functional.mse_loss,
        seed=0,
        forward=lambda inputs: model(inputs["x"][0]).squeeze(-1),
        averaging=averaged_epochs / epochs,
    )
    opt = torch.optim.AdamW(reference.parameters(), lr=lr, weight_decay=fusion.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    ends = []
    for epoch in range(epochs):
        opt.zero_grad()
        torch.nn.functional.mse_loss(reference(x).squeeze(-1), y).backward()
        opt.step()
        if epoch < epochs - averaged_epochs:
            sched.step()
        else:
            ends.append(torch.nn.utils.parameters_to_vector(reference.parameters()).detach())
    averaged = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    torch.testing.assert_close(averaged, torch.stack(ends).mean(0))
    assert not torch.allclose(averaged, ends[-1])


def test_finetune_averaging_by_label_count_is_recorded_per_fit(mini_matrix):
    """By labels, the share of the fit's label count applies: the fit's settings and report
    record that share, and a fit whose share is 0 keeps the settings of one without averaging."""
    train, pool = mini_matrix.subset(np.arange(8)), mini_matrix.unlabelled()
    averaging = create_predictor("fusion", **FAST, finetune_averaging={0: 0.5, 100: 0.0})
    averaging.fit(train, seed=0, pool=pool)
    plain = create_predictor("fusion", **FAST)
    plain.fit(train, seed=0, pool=pool)
    assert averaging._meta["finetune_averaging"] == 0.5
    assert not np.array_equal(averaging.predict(mini_matrix)[0], plain.predict(mini_matrix)[0])
    assert averaging.fit_settings(8)["finetune_averaging"] == 0.5
    assert averaging.fit_settings(100) == plain.fit_settings(100)


def test_a_fit_saved_before_probes_existed_still_predicts(tmp_path, mini_matrix):
    """A saved fit whose state and metadata predate probes loads without probes and scores
    as it did."""
    import pickle

    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    model = create_predictor("fusion", **FAST, tree_weight=0.5, neighbour_smoothing=0.3)
    model.fit(train, seed=0, pool=pool)
    model.save(tmp_path / "fusion.pkl")
    payload = pickle.loads((tmp_path / "fusion.pkl").read_bytes())
    del payload["state"]["probes"]
    for key in ("probe_weight", "probe_scales"):
        del payload["state"]["meta"][key]
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(payload))
    old = type(model).load(tmp_path / "old.pkl")
    assert not old.has_probes
    np.testing.assert_array_equal(old.predict(mini_matrix)[0], model.predict(mini_matrix)[0])


def test_fusion_trees_regress_the_tree_target(mini_matrix):
    """The blended trees are the gbdt predictor with `target: tree_target` on the same labels."""
    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    model = create_predictor("fusion", **FAST, tree_weight=0.5, tree_target="rank")
    model.fit(train, seed=0, pool=pool)
    reference = create_predictor("gbdt", use_onehot=True, target="rank")
    reference.fit(train, seed=0)
    trees = model._trees.predict(mini_matrix)[0]
    np.testing.assert_array_equal(trees, reference.predict(mini_matrix)[0])
    assert trees.max() <= 1.0  # ranks in [0, 1], not accuracies


def _pretrained(mini_matrix, epochs: int = 150, **options):
    """The pool, the first member and its `pretraining_outputs` over the pool after pretraining
    (`epochs`) with `options` and one fine-tuning epoch on 4 architectures."""
    import torch

    pool = mini_matrix.unlabelled()
    params = {**FAST, "pretrain_epochs": epochs, "epochs": 1, "pretrain_lr": 3e-3}
    model = create_predictor("fusion", **params, **options)
    model.fit(mini_matrix.subset(np.arange(4)), seed=0, pool=pool)
    net = model._models[0]
    with torch.no_grad():
        outputs = net.pretraining_outputs(model._inputs(pool, torch.device("cpu"))).numpy()
    return pool, net, outputs


def test_branch_heads_learn_each_proxy_from_one_branch(mini_matrix):
    """With pretrain_branch_heads every branch has a head of one output per pretrain proxy, and
    pretraining fits them: each branch alone ranks the pool by its proxies."""
    from scipy.stats import kendalltau

    pool, net, outputs = _pretrained(mini_matrix, epochs=60, pretrain_branch_heads=True)
    assert [head.out_features for head in net.branch_heads] == [3, 3, 3]
    assert outputs.shape == (len(pool), 1 + 3 * 3)
    params_rank = proxy_ensemble(pool, ["net:params"])
    aggregates_head = outputs[:, 1 + 2 * 3 + 2]  # the aggregates branch's net:params output
    assert kendalltau(aggregates_head, params_rank).statistic > 0.8
    _, plain, _ = _pretrained(mini_matrix, epochs=60)
    assert len(plain.branch_heads) == 0


def test_branch_heads_can_learn_other_proxies_than_the_ensemble(mini_matrix):
    """pretrain_head_proxies gives the branch heads their own proxies (one output each) while
    the score keeps learning the ensemble of pretrain_proxies."""
    from scipy.stats import kendalltau

    heads = ["params", "snip", "net:params", "grad_norm"]
    pool, net, outputs = _pretrained(
        mini_matrix, pretrain_branch_heads=True, pretrain_head_proxies=heads
    )
    assert [head.out_features for head in net.branch_heads] == [4, 4, 4]
    assert outputs.shape == (len(pool), 1 + 3 * 4)
    aggregates_head = outputs[:, 1 + 2 * 4 + 2]  # the aggregates branch's net:params output
    assert kendalltau(aggregates_head, proxy_ensemble(pool, ["net:params"])).statistic > 0.8
    ensemble = proxy_ensemble(pool, FAST["pretrain_proxies"])
    assert kendalltau(outputs[:, 0], ensemble).statistic > 0.5


def test_flow_surrogate_pretext_teaches_the_cell_branch_the_flow(mini_matrix):
    """With pretrain_flow_surrogate the cell branch gets a head of 2 x SURROGATE_DIM outputs that
    pretraining fits to the pool's z-scored flow surrogates."""
    from parzc.predictors.flow_surrogate import SURROGATE_DIM, flow_surrogate

    pool, _, outputs = _pretrained(mini_matrix, pretrain_flow_surrogate=1.0)
    reconstructed = outputs[:, 1:]
    assert reconstructed.shape == (len(pool), 2 * SURROGATE_DIM)
    surrogate = flow_surrogate(pool.graph_ops, pool.graph_adjacency, len(pool.graph_vocabulary))
    target = (surrogate - surrogate.mean(axis=0)) / surrogate.std(axis=0).clip(1e-12)
    explained = 1 - ((reconstructed - target) ** 2).mean() / (target**2).mean()
    assert explained > 0.5, explained


def test_slot_statistics_pretext_teaches_the_cell_branch_the_layers(mini_matrix):
    """With pretrain_slot_statistics the cell branch gets a head of one output per (proxy, slot)
    that pretraining fits to the pool's z-scored signed-log layer statistics; the slots an
    architecture lacks (NaN) are not reconstructed."""
    from parzc.predictors.torch_base import signed_log

    pool, _, outputs = _pretrained(mini_matrix, pretrain_slot_statistics=1.0)
    reconstructed = outputs[:, 1:]
    values = signed_log(pool.slots.astype(np.float64).reshape(len(pool), -1))
    assert reconstructed.shape == values.shape
    present = np.isfinite(values)
    assert (~present).any()  # NB201 networks lack some layers
    counts = present.sum(axis=0).clip(1)
    mean = np.where(present, values, 0.0).sum(axis=0) / counts
    std = np.sqrt((np.where(present, values - mean, 0.0) ** 2).sum(axis=0) / counts)
    target = (values - mean) / np.where(std > 0, std, 1.0)
    error = ((reconstructed - target)[present] ** 2).mean()
    assert 1 - error / (target[present] ** 2).mean() > 0.5


def test_finetuning_can_keep_the_pretraining_objective(mini_matrix):
    """finetune_pretraining_weight > 0 keeps pretraining's loss on the pool while fitting the
    labels: fitted to labels that contradict the proxy ensemble, the model still ranks the pool
    more like the ensemble than a model fine-tuned without it."""
    from scipy.stats import kendalltau

    pool, proxies = mini_matrix.unlabelled(), FAST["pretrain_proxies"]
    train = mini_matrix.subset(np.arange(6))
    train.val_acc = -proxy_ensemble(train, proxies)  # labels against the ensemble
    params = {**FAST, "pretrain_epochs": 40, "epochs": 80, "pretrain_lr": 3e-3, "lr": 3e-3}
    agreement = {}
    for weight in (0.0, 1.0):
        model = create_predictor("fusion", **params, finetune_pretraining_weight=weight)
        model.fit(train, seed=0, pool=pool)
        score = model.predict(pool)[0]
        agreement[weight] = kendalltau(score, proxy_ensemble(pool, proxies)).statistic
    assert agreement[1.0] > agreement[0.0] + 0.2, agreement


def test_reused_pretraining_is_bitwise_the_same(tmp_path, mini_matrix):
    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    fresh = create_predictor("fusion", **FAST)
    fresh.fit(train, seed=1, pool=pool)
    scores, reused = [], []
    for _ in range(2):
        cached = create_predictor("fusion", **FAST, pretrain_cache=str(tmp_path))
        reused.append(cached.fit(train, seed=1, pool=pool)["pretrained_reused"])
        scores.append(cached.predict(mini_matrix)[0])
    assert reused == [0, 1] and len(list(tmp_path.glob("*.pt"))) == 1
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], fresh.predict(mini_matrix)[0])
    # another seed is another key
    other = create_predictor("fusion", **FAST, pretrain_cache=str(tmp_path))
    assert other.fit(train, seed=2, pool=pool)["pretrained_reused"] == 0
    # the default aggregation named keeps the key; another aggregation is another key
    for aggregation, reused in (("mean_rank", 1), ("log_rank", 0)):
        named = create_predictor(
            "fusion", **FAST, pretrain_cache=str(tmp_path), pretrain_aggregation=aggregation
        )
        assert named.fit(train, seed=1, pool=pool)["pretrained_reused"] == reused
    # branch heads are other pretraining; heads on other proxies than the ensemble's, another
    keys = set()
    for heads in (None, ["net:params"]):
        with_heads = create_predictor(
            "fusion",
            **FAST,
            pretrain_cache=str(tmp_path),
            pretrain_branch_heads=True,
            pretrain_head_proxies=heads,
        )
        assert with_heads.fit(train, seed=1, pool=pool)["pretrained_reused"] == 0
        keys.add(with_heads._cached_pretraining(pool, 1000, FAST["pretrain_proxies"]))
    assert len(keys) == 2


def test_members_can_pretrain_on_different_proxy_ensembles(tmp_path, mini_matrix):
    """pretrain_member_proxies gives member k entry k mod its length: each member's pretrained
    weights are those of a fit whose every member learns that entry (the cache is shared), and
    members with different entries rank the pool differently before any label."""
    from scipy.stats import kendalltau

    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    entries = [["net:params"], ["net:nwot"]]
    for entry in entries:  # every member of each single-ensemble fit pretrained and cached
        params = {**FAST, "pretrain_proxies": entry}
        single = create_predictor("fusion", **params, members=3, pretrain_cache=str(tmp_path))
        assert single.fit(train, seed=1, pool=pool)["pretrained_reused"] == 0
    mixed = create_predictor(
        "fusion",
        **FAST,
        members=3,
        pretrain_cache=str(tmp_path),
        pretrain_member_proxies=entries,
    )
    assert mixed.fit(train, seed=1, pool=pool)["pretrained_reused"] == 3
    assert [mixed._member_proxies(k) for k in range(3)] == [*entries, entries[0]]
    params = {**FAST, "pretrain_epochs": 40, "pretrain_lr": 3e-3}
    before = create_predictor("fusion", **params, members=2, pretrain_member_proxies=entries)
    before.fit(train.subset(np.arange(0)), seed=1, pool=pool)  # no labels: pretrained alone
    first, second = (s.mean(axis=0) for s in before._mc_scores(before._inputs(pool, "cpu")))
    assert (
        kendalltau(first, proxy_ensemble(pool, entries[0])).statistic
        > kendalltau(first, proxy_ensemble(pool, entries[1])).statistic
    )
    assert (
        kendalltau(second, proxy_ensemble(pool, entries[1])).statistic
        > kendalltau(second, proxy_ensemble(pool, entries[0])).statistic
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"branches": ["cell", "mixer"]}, "branch"),
        ({"branches": []}, "at least one"),
        ({"target": "log"}, "target transform"),
        ({"tree_target": "log"}, "target transform 'log'"),
        ({"slot_layout": "sorted"}, "slot layout"),
        ({"cell_attention": "global"}, "cell attention"),
        ({"tree_weight": 1.5}, "tree_weight"),
        ({"tree_weight": {0: 0.5, 781: 1.5}}, "tree_weight must lie in"),
        ({"tree_weight": {}}, "tree_weight must lie in"),
        ({"tree_weight": {"many": 0.0}}, "integer label counts"),
        ({"members": 0}, "members"),
        ({"finetune_pretraining_weight": -0.5}, "finetune_pretraining_weight"),
        ({"neighbour_smoothing": 1.0}, "neighbour_smoothing"),
        ({"pretrain_proxies": ["net:zen"]}, "net:zen"),
        ({"pretrain_aggregation": "median"}, "proxy aggregation 'median'"),
        ({"pretrain_head_proxies": ["net:params"]}, "needs pretrain_branch_heads"),
        ({"pretrain_member_proxies": []}, "pretrain_member_proxies"),
        ({"pretrain_member_proxies": [["net:params"], []]}, "pretrain_member_proxies"),
        ({"pretrain_epochs": 0, "pretrain_member_proxies": [["net:params"]]}, "needs pretraining"),
        ({"pretrain_branch_heads": True, "pretrain_head_proxies": []}, "at least one proxy"),
        ({"pretrain_branch_heads": True, "pretrain_head_proxies": ["net:zen"]}, "net:zen"),
        ({"pretrain_flow_surrogate": -1.0}, "pretrain_flow_surrogate"),
        ({"pretrain_flow_surrogate": 1.0, "branches": ["aggregates"]}, "needs the 'cell' branch"),
        ({"pretrain_slot_statistics": -1.0}, "pretrain_slot_statistics must be >= 0"),
        ({"pretrain_slot_statistics": 1.0, "branches": ["slots"]}, "needs the 'cell' branch"),
        ({"probe_weight": 1.5}, "probe_weight must lie in"),
        ({"probe_weight": {0: 0.5}, "pretrain_epochs": 0}, "probe_weight needs pretraining"),
        ({"probe_ridge": 0.0}, "probe_ridge must be > 0"),
        ({"pretrained_share": -0.1}, "pretrained_share must lie in"),
        ({"pretrained_share": 0.2, "pretrain_epochs": 0}, "pretrained_share needs pretraining"),
        ({"finetune_averaging": 1.5}, "finetune_averaging must lie in"),
        ({"finetune_averaging": {"late": 0.5}}, "integer label counts"),
        ({"prior_weight": 0.2}, "prior_weight needs prior_proxies"),
        ({"prior_weight": 1.2, "prior_proxies": ["net:nwot"]}, "prior_weight must lie in"),
        ({"prior_weight": 0.2, "prior_proxies": ["net:zen"]}, "net:zen"),
    ],
)
def test_bad_fusion_parameters_are_named(params, message, mini_matrix):
    with pytest.raises((ValueError, UnknownNameError), match=message):
        create_predictor("fusion", **{**FAST, **params}).fit(mini_matrix, seed=0)


def test_cell_branch_needs_a_space_with_cells(mini_matrix):
    data = mini_matrix.subset(np.arange(len(mini_matrix)))
    data.graph_ops = data.graph_adjacency = None
    with pytest.raises(ValueError, match="cell graphs"):
        create_predictor("fusion", **FAST).fit(data, seed=0)
    create_predictor("fusion", **FAST, branches=["slots", "aggregates"]).fit(data, seed=0)


def test_matrix_without_onehot_or_graphs_round_trips(tmp_path, mini_store):
    data = Store(mini_store).assemble("nb201", "cifar10", PROXIES)
    data.graph_ops = data.graph_adjacency = None
    data.save(tmp_path / "m.npz")
    back = FeatureMatrix.load(tmp_path / "m.npz")
    assert back.onehot is None and back.graph_ops is None
    np.testing.assert_array_equal(back.slots, data.slots)


def test_tree_graph_features_reach_the_trees_and_the_fit_settings(mini_matrix):
    """`tree_graph_features` fits the blend's trees on the path features as well (the trees of
    a `gbdt` with `use_graph_features`), and is a fit setting: a kept fit without it is not
    re-blended into one with it."""
    train, pool = mini_matrix.subset(np.arange(6)), mini_matrix.unlabelled()
    model = create_predictor("fusion", **FAST, tree_weight=0.5, tree_graph_features=True)
    model.fit(train, seed=0, pool=pool)
    trees = create_predictor("gbdt", use_onehot=True, use_graph_features=True)
    trees.fit(train, seed=0)
    np.testing.assert_array_equal(
        model._trees.predict(mini_matrix)[0], trees.predict(mini_matrix)[0]
    )
    plain = create_predictor("fusion", **FAST, tree_weight=0.5)
    assert plain.fit_settings(6) != model.fit_settings(6)
