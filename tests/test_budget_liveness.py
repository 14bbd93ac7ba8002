"""The parity check sizes a graph's values by what is alive at once (``budget.live_peak``), not
their sum; a Fill past the reference's budget still has a rank in the TF.js -> ONNX probe."""

from __future__ import annotations

from onnx import TensorProto, helper

from modelport import budget


def _chain(n: int):
    """x -> Relu -> Relu -> ... (n nodes), each value 1 KiB."""
    nodes = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"]) for i in range(n)]
    return helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [256])],
        [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, [256])])


def test_a_chain_holds_two_values_at_once_not_all():
    sizes = {f"v{i}": 1024 for i in range(1, 101)}
    assert budget.live_peak(_chain(100), sizes) == 2 * 1024  # not 100 KiB


def test_a_skip_connection_keeps_its_value_alive():
    g = _chain(3)
    g.node.append(helper.make_node("Add", ["v1", "v3"], ["y"]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [256]))
    sizes = {"v1": 1000, "v2": 100, "v3": 10, "y": 1}
    # v1 lives to the Add: at v3 it, v2 and v3 are all alive
    assert budget.live_peak(g, sizes) == 1110


def test_outer_scope_values_live_until_their_subgraph_node():
    body = helper.make_graph([helper.make_node("Identity", ["v1"], ["o"])], "body", [],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, [256])])
    g = _chain(3)
    g.node.append(helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body))
    sizes = {"v1": 1000, "v2": 100, "v3": 10, "y": 1}
    assert budget.live_peak(g, sizes) == 1110
