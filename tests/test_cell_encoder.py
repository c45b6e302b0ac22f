"""The cell-graph encoder's attention relations and flow passes, and FGP's flow surrogate."""

import numpy as np
import pytest
import torch

from parzc.predictors.cell_encoder import (
    CELL_ATTENTION,
    MAX_HOPS,
    GraphEncoder,
    hop_buckets,
    reachability,
    topological_levels,
)
from parzc.predictors.flow_surrogate import SURROGATE_DIM, flow_surrogate
from parzc.spaces import get_space


def _graph(nodes: int, links: list[tuple[int, int]]) -> torch.Tensor:
    adjacency = torch.zeros(1, nodes, nodes)
    for src, dst in links:
        adjacency[0, src, dst] = 1
    return adjacency


# a diamond 0 -> {1, 2} -> 3 and a node 4 fed by 1 only; listed out of topological order
DIAMOND = _graph(5, [(0, 2), (0, 1), (2, 3), (1, 3), (1, 4)])


def test_reachability_and_levels_follow_the_links_in_any_node_order():
    # 3 -> 1 -> 0 -> 2: node indices against the flow
    chain = _graph(4, [(3, 1), (1, 0), (0, 2)])
    assert reachability(chain)[0, 3].tolist() == [True, True, True, False]
    assert topological_levels(chain)[0].tolist() == [2, 1, 3, 0]
    assert topological_levels(DIAMOND)[0].tolist() == [0, 1, 1, 2, 2]


def test_flow_attention_keeps_to_common_paths():
    allowed = CELL_ATTENTION.get("flow")(DIAMOND)[0]
    # 2 and 4 share no path (4 hangs off 1); 0 reaches everything
    assert not allowed[2, 4] and not allowed[4, 2]
    assert allowed[0].all() and allowed[4, 0] and allowed[3, 0]
    assert not allowed[1, 2]  # siblings are not on one path


def test_sibling_attention_gives_each_head_one_relation():
    relations = CELL_ATTENTION.get("siblings")(DIAMOND)[0]
    predecessors, successors, co_children, co_parents = relations
    assert predecessors[3].nonzero().flatten().tolist() == [1, 2, 3]
    assert successors[1].nonzero().flatten().tolist() == [1, 3, 4]
    assert co_children[2].nonzero().flatten().tolist() == [1, 2]  # both fed by 0
    assert co_children[4].nonzero().flatten().tolist() == [3, 4]  # both fed by 1
    assert co_parents[1].nonzero().flatten().tolist() == [1, 2]  # both feed 3


def test_hop_buckets_give_each_relation_its_direction_and_distance():
    chain = _graph(4, [(0, 1), (1, 2)])  # node 3 unrelated
    buckets = hop_buckets(chain, max_hops=2)[0].tolist()
    # 0 itself, k: i reaches j in k links, 2 + k: j reaches i in k links, 5: unrelated
    assert buckets == [[0, 1, 2, 5], [3, 0, 1, 5], [4, 3, 0, 5], [5, 5, 5, 0]]
    assert hop_buckets(chain, max_hops=1)[0, 0, 2] == 3  # beyond max_hops: unrelated


@pytest.mark.parametrize(
    "attention, flow_passes",
    [("links", False), ("hops", False), ("flow", True), ("siblings", False)],
)
def test_graph_encoder_ignores_padding_nodes(attention, flow_passes):
    space = get_space("nb101")
    small = [a for a in space.archs()["arch"] if space.decode(a).num_vertices < 7][0]
    graph = space.cell_graph(small)
    ops = torch.from_numpy(graph.ops.astype(np.int64))[None]
    adjacency = torch.from_numpy(graph.adjacency)[None]
    torch.manual_seed(0)
    vocabulary = len(space.graph_vocabulary)
    options = dict(attention=attention, flow_passes=flow_passes)
    encoder = GraphEncoder(vocabulary, space.graph_nodes, 8, 2, **options).eval()
    with torch.no_grad():
        out = encoder(ops, adjacency, hop_buckets(adjacency, MAX_HOPS))
        n = int((ops > 0).sum())
        trimmed = GraphEncoder(vocabulary, n, 8, 2, **options)
        trimmed.load_state_dict({**encoder.state_dict(), "pos_embed": encoder.pos_embed[:n]})
        cut = adjacency[:, :n, :n]
        alone = trimmed.eval()(ops[:, :n], cut, hop_buckets(cut, MAX_HOPS))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, alone)


def test_flow_passes_carry_a_change_downstream_only():
    """Changing the operation of the last node of a chain leaves its predecessors' states after
    the forward pass as they were; changing the first node changes every later one."""
    from parzc.predictors.cell_encoder import FlowPass

    torch.manual_seed(0)
    flow = FlowPass(4)
    chain = _graph(3, [(0, 1), (1, 2)])
    levels = topological_levels(chain)
    tokens = torch.randn(1, 3, 4)
    with torch.no_grad():
        base = flow(tokens, chain, levels)
        last = tokens.clone()
        last[0, 2] += 1
        first = tokens.clone()
        first[0, 0] += 1
        changed_last, changed_first = flow(last, chain, levels), flow(first, chain, levels)
    torch.testing.assert_close(changed_last[0, :2], base[0, :2])
    assert not torch.allclose(changed_first[0, 1:], base[0, 1:])


def test_flow_surrogate_tells_cells_apart_by_their_flow():
    space = get_space("nb201")
    archs = list(space.archs()["arch"][:200])
    graphs = [space.cell_graph(a) for a in archs]
    ops = np.stack([g.ops for g in graphs]).astype(np.int64)
    adjacency = np.stack([g.adjacency for g in graphs])
    vocabulary = len(space.graph_vocabulary)
    surrogate = flow_surrogate(ops, adjacency, vocabulary)
    assert surrogate.shape == (200, 2 * SURROGATE_DIM) and np.isfinite(surrogate).all()
    np.testing.assert_array_equal(surrogate, flow_surrogate(ops, adjacency, vocabulary))
    # one vector per graph: equal graphs share it, different graphs (mostly) differ
    graph_keys = {(g.ops.tobytes(), g.adjacency.tobytes()) for g in graphs}
    assert len(np.unique(surrogate.round(9), axis=0)) > 0.9 * len(graph_keys)
    # padding nodes carry nothing
    padded_ops = np.pad(ops, ((0, 0), (0, 3)))
    padded_adjacency = np.pad(adjacency, ((0, 0), (0, 3), (0, 3)))
    np.testing.assert_allclose(
        flow_surrogate(padded_ops, padded_adjacency, vocabulary), surrogate, atol=1e-12
    )


def test_parzc_list_names_the_fusion_and_loop_options(capsys):
    from parzc.cli import main

    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    assert "fusion cell attention: flow, hops, links, siblings" in printed
    assert "fusion branches: aggregates, cell, slots" in printed
    assert "loop acquisitions: diverse, greedy, local, ucb" in printed
