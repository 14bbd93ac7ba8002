"""Nearest upsampling written as repeats, made one ``Resize`` again.

Keras 3's ``UpSampling2D(interpolation="nearest")`` on TensorFlow is ``ops.repeat`` on each
spatial axis, which TF computes as ``ExpandDims -> Tile -> Reshape``; tf2onnx writes that chain
(``Unsqueeze``, ``Tile``, ``Reshape``, with the Transposes its layout pass moved in between).
No single node of it is a Keras layer, but the whole chain is pure data movement, so what it
computes is decided by running it: a chain of ``Unsqueeze`` / ``Tile`` / ``Transpose`` /
``Reshape`` (each read only by the next) from a rank-4 value to a rank-4 value is run in NumPy
on a seeded input, and where its result equals repeating the input's two spatial axes by
integer factors (input and output each NCHW or NHWC) bit for bit, it is replaced by a nearest
``Resize`` (``asymmetric`` / ``floor``: a repeat) between the Transposes the layouts need. The
``Resize`` rule then raises it as the ``UpSampling2D`` it came from.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import remove_unread, replace_value
from .initializers import add_initializer

STANDARD = ("", "ai.onnx")
MOVES = {"Unsqueeze", "Tile", "Transpose", "Reshape"}
MAX_CHAIN = 12
BATCH = 2  # the batch of the seeded trial input
LAYOUTS = {"NCHW": (2, 3), "NHWC": (1, 2)}  # spatial axes
TO_NCHW: dict[str, list[int] | None] = {"NCHW": None, "NHWC": [0, 3, 1, 2]}
FROM_NCHW: dict[str, list[int] | None] = {"NCHW": None, "NHWC": [0, 2, 3, 1]}


def _only_use(v: ir.Value) -> ir.Node | None:
    uses = list(v.uses())
    return uses[0].node if len(uses) == 1 and not v.is_graph_output() else None


def _dims(v: ir.Value) -> list[int] | None:
    """``v``'s shape with the batch (axis 0) made ``BATCH``; None where another is unknown."""
    if v.shape is None or not len(v.shape):
        return None
    dims = [d if isinstance(d, int) else None for d in v.shape]
    if any(d is None for d in dims[1:]):
        return None
    return [BATCH] + [int(d) for d in dims[1:]]  # type: ignore[arg-type]


def _read_by(v: ir.Value, node: ir.Node) -> bool:
    """``v`` is read by ``node`` only, but for the ``Shape``s that TF computes the next
    Reshape's target from (the chain's Reshapes use the inferred shapes instead)."""
    users = [u.node for u in v.uses()]
    return not v.is_graph_output() and node in users and \
        all(u is node or (u.op_type == "Shape" and u.domain in STANDARD) for u in users)


def _chain_before(last: ir.Node) -> list[ir.Node]:
    """The data-movement nodes leading into ``last``, each read only by the next, in order."""
    chain = [last]
    node = last
    while len(chain) < MAX_CHAIN:
        x = optional_input(node, 0)
        p = x.producer() if x is not None else None
        if p is None or x is None or p.op_type not in MOVES or p.domain not in STANDARD or \
                not _read_by(x, node):
            break
        chain.insert(0, p)
        node = p
    return chain


def _run(chain: list[ir.Node], x: np.ndarray) -> np.ndarray | None:
    """The chain on ``x`` (None where a node's operands are not constants it can use)."""
    for node in chain:
        out = node.outputs[0]
        if node.op_type == "Unsqueeze":
            given = const_array(optional_input(node, 1))
            attr = node.attributes.get("axes")
            axes = [int(a) for a in given.reshape(-1)] if given is not None else \
                [int(a) for a in attr.value] if attr is not None else None
            if axes is None:
                return None
            rank = x.ndim + len(axes)
            for a in sorted(a % rank for a in axes):
                x = np.expand_dims(x, a)
        elif node.op_type == "Tile":
            reps = const_array(optional_input(node, 1))
            if reps is None or reps.reshape(-1)[0] != 1:
                return None
            x = np.tile(x, [int(r) for r in reps.reshape(-1)])
        elif node.op_type == "Transpose":
            perm = node.attributes.get("perm")
            x = np.transpose(x, [int(p) for p in perm.value] if perm is not None else None)
        else:  # Reshape: to the inferred shape (the batch kept first)
            dims = _dims(out)
            if dims is None or int(np.prod(dims)) != x.size:
                return None
            x = x.reshape(dims)
    return x


def _upsampling(x: np.ndarray, y: np.ndarray) -> tuple[str, str, int, int] | None:
    """(input layout, output layout, factor on H, factor on W) when ``y`` is ``x`` repeated."""
    for lin, (hi, wi) in LAYOUTS.items():
        for lout, (ho, wo) in LAYOUTS.items():
            sh, sw = y.shape[ho] // x.shape[hi], y.shape[wo] // x.shape[wi]
            if sh < 1 or sw < 1 or (sh, sw) == (1, 1) or y.shape[ho] != sh * x.shape[hi] or \
                    y.shape[wo] != sw * x.shape[wi]:
                continue
            want = np.repeat(np.repeat(x, sh, axis=hi), sw, axis=wi)
            if lin != lout:
                want = np.transpose(want, [0, 2, 3, 1] if lin == "NCHW" else [0, 3, 1, 2])
            if want.shape == y.shape and np.array_equal(want, y):
                return lin, lout, sh, sw
    return None


def rewrite_repeats(graph: ir.Graph) -> int:
    """Replace each repeat chain that is a nearest upsampling by a Resize; how many."""
    done = 0
    # from the last Reshape back, so that the longest chain (both axes) is tried first
    for node in reversed(list(graph)):
        if node.graph is not graph or node.op_type != "Reshape" or node.domain not in STANDARD:
            continue
        y = node.outputs[0]
        if _dims(y) is None or len(_dims(y) or []) != 4:
            continue
        chain = _chain_before(node)
        for start in range(len(chain)):
            sub = chain[start:]
            x = optional_input(sub[0], 0)
            if x is None or not any(n.op_type == "Tile" for n in sub):
                continue
            dims = _dims(x)
            if dims is None or len(dims) != 4 or x.dtype != ir.DataType.FLOAT:
                continue
            trial = np.arange(int(np.prod(dims)), dtype=np.float32).reshape(dims)
            result = _run(sub, trial)
            found = _upsampling(trial, result) if result is not None and \
                result.ndim == 4 else None
            if found is not None:
                _replace(graph, sub, x, *found)
                done += 1
                break
    return done


def _replace(graph: ir.Graph, chain: list[ir.Node], x: ir.Value, lin: str, lout: str,
             sh: int, sw: int) -> None:
    last = chain[-1]
    base = last.name or "upsampling"
    nodes: list[ir.Node] = []
    src = x
    shape = list(x.shape) if x.shape is not None else []
    to_nchw, from_nchw = TO_NCHW[lin], FROM_NCHW[lout]
    if to_nchw is not None:
        t = ir.node("Transpose", [src], {"perm": to_nchw}, name=f"{base}/to_nchw")
        shape = [shape[p] for p in to_nchw]
        t.outputs[0].type, t.outputs[0].shape = x.type, ir.Shape(shape)
        nodes.append(t)
        src = t.outputs[0]
    scales = add_initializer(graph, f"{base}/scales", np.array([1, 1, sh, sw], np.float32))
    resize = ir.node("Resize", [src, None, scales],
                     {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                      "nearest_mode": "floor"}, name=f"{base}/Resize")
    shape = [shape[0], shape[1], shape[2] * sh, shape[3] * sw]
    resize.outputs[0].type, resize.outputs[0].shape = x.type, ir.Shape(shape)
    nodes.append(resize)
    out = resize.outputs[0]
    if from_nchw is not None:
        t = ir.node("Transpose", [out], {"perm": from_nchw}, name=f"{base}/from_nchw")
        t.outputs[0].type = x.type
        t.outputs[0].shape = ir.Shape([shape[p] for p in from_nchw])
        nodes.append(t)
        out = t.outputs[0]
    graph.insert_before(chain[0], nodes)
    y = last.outputs[0]
    replace_value(y, out, always_rename=True)
    remove_unread(graph)  # the chain, and the Shapes its Reshapes' targets were computed from
