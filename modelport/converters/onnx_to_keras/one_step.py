"""A recurrent op run for one time step on a batch-first matrix, in the form the raising knows.

An ``LSTMCell``/``GRUCell`` exported by PyTorch (Silero VAD's decoder, streaming models that
carry their state between calls) is an ONNX ``LSTM``/``GRU``/``RNN`` over a sequence of one:
``X = Unsqueeze(x, axes=[0])`` turns the ``[B, F]`` matrix into the time-major ``[1, B, F]``,
and the initial states are ``Unsqueeze(h, axes=[0])`` too. The same values are the batch-first
``[B, 1, F]`` with time and batch swapped, ``Transpose(Unsqueeze(x, axes=[1]), [1, 0, 2])``,
which the recurrent views (``recurrent_views.py``) follow, so X is rewritten so before raising;
Keras's layer then runs one step from the given states.

Two more forms PyTorch writes are put in the ones the views follow, values unchanged:
* X = ``Transpose(features, perm=[2, 0, 1])`` of a ``[B, C, T]`` feature map (a CRNN's or
  Silero v4's ``x.permute(2, 0, 1)``) is ``Transpose([1, 0, 2])`` of the batch-first
  ``Transpose(features, [0, 2, 1])``;
* an initial state ``Slice(state, [k], [k + 1], axes=[0])`` of a stacked ``[L, B, H]`` state
  (one layer's) is ``Unsqueeze(Gather(state, k, axis=0), [0])``: the direction axis over the
  batch-first ``[B, H]``;
* a final state ``Y_h``/``Y_c`` of one direction read as it is (stacked with the other
  layers' by a Concat on axis 0) is ``Unsqueeze(Squeeze(Y_h, [0]), [0])``.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input

STANDARD = ("", "ai.onnx")
RECURRENT = {"LSTM", "GRU", "RNN"}


def _axes(node: ir.Node) -> list[int] | None:
    if "axes" in node.attributes:
        return [int(a) for a in node.attributes["axes"].value]
    c = const_array(optional_input(node, 1))
    return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]


def _const(graph: ir.Graph, name: str, values) -> ir.Value:
    array = np.asarray(values, np.int64)
    value = ir.Value(name=name, shape=ir.Shape(array.shape),
                     type=ir.TensorType(ir.DataType.INT64), const_value=ir.Tensor(array))
    graph.register_initializer(value)
    return value


def _swap_into(graph: ir.Graph, node: ir.Node, x: ir.Value, rows: ir.Node, old: ir.Node,
               base: str) -> None:
    """Make ``node``'s X the time/batch swap of ``rows`` (the batch-first view of ``x``),
    inserted before it; ``old``, which computed ``x``, goes where nothing else reads it."""
    swap = ir.node("Transpose", [rows.outputs[0]], attributes={"perm": [1, 0, 2]},
                   name=f"{base}/time_major")
    swap.outputs[0].type, swap.outputs[0].shape = x.type, x.shape
    graph.insert_before(node, [rows, swap])
    node.replace_input_with(0, swap.outputs[0])
    if not list(x.uses()) and not x.is_graph_output():
        graph.remove(old, safe=True)


def rewrite_permuted_inputs(graph: ir.Graph) -> int:
    """Rewrite each recurrent X that is ``Transpose(features, [2, 0, 1])`` as the swap of the
    batch-first view (see the module); how many."""
    done = 0
    for node in list(graph):
        if node.op_type not in RECURRENT or node.domain not in STANDARD:
            continue
        x = optional_input(node, 0)
        perm = x.producer() if x is not None else None
        if x is None or perm is None or perm.op_type != "Transpose" or \
                perm.domain not in STANDARD or "perm" not in perm.attributes or \
                [int(p) for p in perm.attributes["perm"].value] != [2, 0, 1]:
            continue
        features = optional_input(perm, 0)
        if features is None or features.shape is None or len(features.shape) != 3:
            continue
        b, c, t = list(features.shape)
        base = perm.name or "permuted"
        rows = ir.node("Transpose", [features], attributes={"perm": [0, 2, 1]},
                       name=f"{base}/batch_first")
        rows.outputs[0].type, rows.outputs[0].shape = x.type, ir.Shape([b, t, c])
        _swap_into(graph, node, x, rows, perm, base)
        done += 1
    return done


def rewrite_state_slices(graph: ir.Graph) -> int:
    """Rewrite each recurrent initial state that is one index of axis 0 of a stacked state
    (``Slice(state, [k], [k + 1], axes=[0])``) as ``Unsqueeze(Gather(state, k), [0])``; how
    many."""
    done = 0
    for node in list(graph):
        if node.op_type not in RECURRENT or node.domain not in STANDARD:
            continue
        for slot in (5, 6):
            state = optional_input(node, slot)
            cut = state.producer() if state is not None else None
            if state is None or cut is None or cut.op_type != "Slice" or \
                    cut.domain not in STANDARD:
                continue
            index = _one_index(cut)
            stacked = optional_input(cut, 0)
            if index is None or stacked is None or stacked.shape is None or \
                    len(stacked.shape) != 3 or state.shape is None:
                continue
            base = cut.name or "state"
            pick = ir.node("Gather", [stacked, _const(graph, f"{base}/layer", index)],
                           attributes={"axis": 0}, name=f"{base}/layer_state")
            pick.outputs[0].type = state.type
            pick.outputs[0].shape = ir.Shape(list(stacked.shape)[1:])
            lift = ir.node("Unsqueeze", [pick.outputs[0],
                                         _const(graph, f"{base}/direction_axis", [0])],
                           name=f"{base}/direction")
            lift.outputs[0].type, lift.outputs[0].shape = state.type, state.shape
            graph.insert_before(node, [pick, lift])
            node.replace_input_with(slot, lift.outputs[0])
            if not list(state.uses()) and not state.is_graph_output():
                graph.remove(cut, safe=True)
            done += 1
    return done


def rewrite_stacked_states(graph: ir.Graph) -> int:
    """Put ``Unsqueeze(Squeeze(., [0]), [0])`` between a one-direction recurrent op's final
    state and each reader other than a Squeeze of axis 0 (see the module); how many."""
    done = 0
    for node in list(graph):
        if node.op_type not in RECURRENT or node.domain not in STANDARD or \
                str(node.attributes["direction"].value if "direction" in node.attributes
                    else "forward") == "bidirectional" or \
                ("layout" in node.attributes and int(node.attributes["layout"].value) != 0):
            continue
        for state in list(node.outputs)[1:]:
            if state is None or not state.name or state.shape is None or \
                    len(state.shape) != 3:
                continue
            readers = [(u.node, u.idx) for u in state.uses()
                       if not (u.node.op_type == "Squeeze" and _axes(u.node) == [0])]
            if not readers:
                continue
            base = state.name
            axis = _const(graph, f"{base}/direction_axis", [0])
            drop = ir.node("Squeeze", [state, axis], name=f"{base}/one_direction")
            drop.outputs[0].type = state.type
            drop.outputs[0].shape = ir.Shape(list(state.shape)[1:])
            back = ir.node("Unsqueeze", [drop.outputs[0], axis], name=f"{base}/stacked")
            back.outputs[0].type, back.outputs[0].shape = state.type, state.shape
            graph.insert_after(node, [drop, back])
            for reader, idx in readers:
                reader.replace_input_with(idx, back.outputs[0])
            done += 1
    return done


def _one_index(cut: ir.Node) -> int | None:
    """k where the Slice keeps exactly index k >= 0 of axis 0 (step 1), else None."""
    parts = [const_array(optional_input(cut, i)) for i in range(1, 5)]
    starts, ends, axes, steps = parts
    if starts is None or ends is None or starts.size != 1 or ends.size != 1:
        return None
    if (axes is not None and (axes.size != 1 or int(axes.reshape(-1)[0]) != 0)) or \
            (steps is not None and int(steps.reshape(-1)[0]) != 1):
        return None
    k = int(starts.reshape(-1)[0])
    return k if k >= 0 and int(ends.reshape(-1)[0]) == k + 1 else None


def rewrite_one_step_inputs(graph: ir.Graph) -> int:
    """Rewrite each time-major recurrent X that is ``Unsqueeze(matrix, axes=[0])`` as the
    swapped batch-first view (see the module); how many."""
    done = 0
    for node in list(graph):
        if node.op_type not in RECURRENT or node.domain not in STANDARD:
            continue
        layout = node.attributes.get("layout")
        if layout is not None and int(layout.value) != 0:
            continue
        x = optional_input(node, 0)
        unsq = x.producer() if x is not None else None
        if x is None or unsq is None or unsq.op_type != "Unsqueeze" or \
                unsq.domain not in STANDARD or _axes(unsq) != [0]:
            continue
        matrix = optional_input(unsq, 0)
        if matrix is None or matrix.shape is None or len(matrix.shape) != 2 or \
                x.shape is None:
            continue
        base = unsq.name or "one_step"
        axes = ir.Value(name=f"{base}/batch_first_axes", shape=ir.Shape([1]),
                        type=ir.TensorType(ir.DataType.INT64),
                        const_value=ir.Tensor(np.array([1], np.int64)))
        graph.register_initializer(axes)
        rows = ir.node("Unsqueeze", [matrix, axes], name=f"{base}/batch_first")
        rows.outputs[0].type = x.type
        rows.outputs[0].shape = ir.Shape([matrix.shape[0], 1, matrix.shape[1]])
        _swap_into(graph, node, x, rows, unsq, base)
        done += 1
    return done


