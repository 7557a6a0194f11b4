"""The scheduler's state machine, driven by hypothesis through any completion order."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.execution.state import DagState
from orchestra.priority import critical_path_priorities, slack
from orchestra.testing.strategies import dag_shapes


def weights_for(shape: dict[str, tuple[str, ...]], data: st.DataObject) -> dict[str, float]:
    return {n: data.draw(st.integers(1, 9), label=f"w{n}") * 1.0 for n in shape}


@given(dag_shapes(max_nodes=15), st.data())
def test_every_node_runs_once_after_its_dependencies(
    shape: dict[str, tuple[str, ...]], data: st.DataObject
) -> None:
    """Whatever order nodes finish in, each is dispatched once, only after its dependencies."""
    state = DagState()
    for node, deps in shape.items():
        state.add(node, deps)
    dispatched: list[str] = []
    while not state.finished:
        while (node := state.pop()) is not None:
            assert all(dep in state.done for dep in shape[node])
            dispatched.append(node)
        done = data.draw(st.sampled_from(sorted(state.running)))
        state.finish(done)
    assert sorted(dispatched) == sorted(shape)
    assert state.done == set(shape)


@given(dag_shapes(max_nodes=15), st.data())
def test_ready_nodes_pop_in_priority_then_id_order(
    shape: dict[str, tuple[str, ...]], data: st.DataObject
) -> None:
    """Among ready nodes, the longest remaining critical path goes first; ties by task id."""
    weights = weights_for(shape, data)
    state = DagState()
    for node, deps in shape.items():
        state.add(node, deps, weights[node])
    priority = critical_path_priorities({n: set(d) for n, d in shape.items()}, weights)
    while not state.finished:
        ready = sorted(state.ready, key=lambda n: (-priority[n], n))
        popped = list(iter(state.pop, None))
        assert popped == ready
        for node in popped:
            state.finish(node)


@given(dag_shapes(max_nodes=12), st.data())
def test_dag_can_grow_while_running(shape: dict[str, tuple[str, ...]], data: st.DataObject) -> None:
    """Nodes added mid-run are dispatched like the rest, and at once if their deps are done."""
    nodes = list(shape)
    split = data.draw(st.integers(1, len(nodes)))
    state = DagState()
    for node in nodes[:split]:
        state.add(node, shape[node])
    pending = nodes[split:]
    dispatched: list[str] = []
    while not state.finished or pending:
        if pending and data.draw(st.booleans()):
            node = pending.pop(0)
            state.add(node, shape[node])
            continue
        while (node := state.pop()) is not None:
            assert all(dep in state.done for dep in shape[node])
            dispatched.append(node)
        if state.running:
            state.finish(data.draw(st.sampled_from(sorted(state.running))))
        elif pending:
            node = pending.pop(0)
            state.add(node, shape[node])
    assert sorted(dispatched) == sorted(nodes)


@given(dag_shapes(min_nodes=2, max_nodes=12), st.data())
def test_failure_blocks_only_descendants(
    shape: dict[str, tuple[str, ...]], data: st.DataObject
) -> None:
    """After a node fails its descendants never become ready; every other node still can."""
    state = DagState()
    for node, deps in shape.items():
        state.add(node, deps)
    victim = data.draw(st.sampled_from(sorted(shape)))
    while not state.finished:
        while (node := state.pop()) is not None:
            pass
        node = sorted(state.running)[0]
        if node == victim:
            state.fail(node)
        else:
            state.finish(node)
    graph = nx.DiGraph([(d, n) for n, deps in shape.items() for d in deps])
    graph.add_nodes_from(shape)
    blocked = nx.descendants(graph, victim)
    assert set(state.waiting()) == blocked
    assert state.done == set(shape) - blocked - {victim}


def test_add_rejects_unknown_dependencies_and_duplicates() -> None:
    """Dependencies must be known first (which also rules out cycles); ids are unique."""
    state = DagState()
    state.add("a")
    with pytest.raises(ValueError, match="unknown node"):
        state.add("b", ["zz"])
    with pytest.raises(ValueError, match="added already"):
        state.add("a")


@given(dag_shapes(max_nodes=12), st.data())
def test_priorities_match_networkx_longest_path(
    shape: dict[str, tuple[str, ...]], data: st.DataObject
) -> None:
    """A node's priority is the heaviest path from it to a sink, as networkx computes it."""
    weights = weights_for(shape, data)
    deps = {n: set(d) for n, d in shape.items()}
    priority = critical_path_priorities(deps, weights)
    graph = nx.DiGraph([(d, n) for n, ds in shape.items() for d in ds])
    graph.add_nodes_from(shape)
    for node in shape:
        sub = graph.subgraph(nx.descendants(graph, node) | {node})
        best = (
            max(
                sum(weights[n] for n in path)
                for sink in sub
                if sub.out_degree(sink) == 0
                for path in nx.all_simple_paths(sub, node, sink)
            )
            if sub.out_degree(node)
            else weights[node]
        )
        assert priority[node] == pytest.approx(best)
    gaps = slack(deps, weights)
    assert min(gaps.values()) == pytest.approx(0.0)
    assert all(g >= -1e-9 for g in gaps.values())
