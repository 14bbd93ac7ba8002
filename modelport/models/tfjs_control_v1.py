"""TF1 control flow lifted to control flow v2: ``Switch``/``Merge`` conds become
``StatelessIf`` and ``Enter``/``Merge``/``Switch``/``LoopCond``/``NextIteration``/``Exit``
frames become ``StatelessWhile``, with their branches, condition and body as library functions.

``tensorflowjs_converter`` writes TF1 frames by default (it lowers TF2's functional ops unless
``--control_flow_v2`` is given): tfjs runs them, and so must the NumPy TF reference and the
ONNX conversion, which both understand v2. The lift follows the shapes TF's lowering
(``lower_if_op``/``lower_while_op``) produces:

* a cond: ``Switch(x, pred)`` for every value a branch reads (and ``Switch(pred, pred)`` whose
  outputs' Identities are the branch pivots), the branches reading output 1 (then) or 0
  (else), and one ``Merge(then_value, else_value)`` per result. Each branch is the set of
  nodes between its Switch outputs and the Merges' inputs.
* a loop (one ``frame_name``): per loop value ``Enter -> Merge(Enter, NextIteration) ->
  Switch(Merge, LoopCond)``, output 0 to ``Exit``, output 1 into the body, whose result feeds
  ``NextIteration``; the condition is what ``LoopCond`` reads, computed from the Merges.
  ``Enter(is_constant=true)`` values are loop invariants (passed through the body).

Innermost constructs are lifted first, so nesting works. Control inputs inside a lifted region
order nothing once it is a function and are dropped. A shape the lift does not recognise is an
UnsupportedError naming the node and the ``--control_flow_v2`` route.
"""

from __future__ import annotations

import base64

from ..errors import UnsupportedError
from .tfjs_graph import TfFunction, TfjsGraph, TfNode, attr_type, input_name

V1_OPS = frozenset({"Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond",
                    "RefSwitch", "RefMerge", "RefEnter", "RefExit", "RefNextIteration"})
HINT = ("convert the model again with tensorflowjs_converter --control_flow_v2=true (its "
        "StatelessIf/StatelessWhile are mapped directly)")
BOOL_OUT = {"Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual", "LogicalAnd",
            "LogicalOr", "LogicalNot", "IsNan", "IsInf", "IsFinite", "LoopCond", "All", "Any"}


def has_v1(graph: TfjsGraph) -> bool:
    """Whether ``graph``'s main body holds TF1 control flow."""
    return any(n.op in V1_OPS for n in graph.nodes)


def lift(graph: TfjsGraph) -> TfjsGraph:
    """``graph`` with its TF1 conds and loops as v2 ops and library functions (``graph``
    itself where it has none)."""
    if not has_v1(graph):
        return graph
    lifter = _Lifter(graph)
    lifter.run()
    # a signature output read at a node the lift removed (an Exit, a cond's Merge) keeps its
    # name: an Identity of what replaced it
    for info in graph.outputs:
        name = input_name(info.tensor)[0]
        ref = lifter.renamed.get(_ref(info.tensor))
        if name not in lifter.nodes and ref is not None:
            lifter.nodes[name] = TfNode(name, "Identity", [ref], {})
    return TfjsGraph(list(lifter.nodes.values()), graph.weights, graph.inputs, graph.outputs,
                     versions=graph.versions, extra=graph.extra,
                     quantization=graph.quantization, source=graph.source,
                     functions=lifter.functions)


def _ref(ref: str) -> str:
    """``name`` -> ``name:0``; ``name:k`` kept."""
    name, k = input_name(ref)
    return f"{name}:{k}"


def _data(node: TfNode) -> list[str]:
    """The node's data inputs (TF lists control inputs, ``^name``, after them)."""
    return [r for r in node.inputs if not r.startswith("^")]


def _fail(node: TfNode, why: str) -> UnsupportedError:
    return UnsupportedError(f"TF1 control flow at {node.op} node {node.name!r}: {why}",
                            hint=HINT, layer=node.name)


class _Lifter:
    def __init__(self, graph: TfjsGraph) -> None:
        self.nodes: dict[str, TfNode] = {n.name: n for n in graph.nodes}
        self.functions = dict(graph.functions)
        self.used: set[str] = set(self.nodes) | set(self.functions)
        self.renamed: dict[str, str] = {}  # refs of removed nodes -> what computes them now

    # --- names, types, regions -------------------------------------------------------------
    def unique(self, base: str) -> str:
        base = base.replace("/", "_").replace(":", "_")
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def dtype(self, ref: str) -> str:
        name, k = input_name(ref)
        node = self.nodes.get(name)
        if node is None:
            return "float32"
        if node.op in ("Merge", "RefMerge") and k == 1:
            return "int32"
        if node.op in BOOL_OUT:
            return "bool"
        for attr in ("T", "dtype", "DstT", "out_type"):
            found = attr_type(node, attr)
            if found is not None:
                return found
        return "float32"

    def region(self, outputs: list[str], boundary: set[str]) -> list[str]:
        """Names of the nodes the ``outputs`` refs depend on (data inputs only), stopping at
        the ``boundary`` refs; in graph order."""
        found: set[str] = set()
        stack = [_ref(r) for r in outputs if _ref(r) not in boundary]
        while stack:
            name = input_name(stack.pop())[0]
            if name in found or name not in self.nodes:
                continue
            found.add(name)
            stack.extend(_ref(r) for r in self.nodes[name].inputs
                         if not r.startswith("^") and _ref(r) not in boundary)
        return [n for n in self.nodes if n in found]

    def captures(self, region: list[str], boundary: set[str]) -> list[str]:
        """Refs the region reads from outside it that are not boundary refs."""
        inside = set(region)
        out: list[str] = []
        for name in region:
            for r in self.nodes[name].inputs:
                if r.startswith("^"):
                    continue
                ref = _ref(r)
                if input_name(ref)[0] not in inside and ref not in boundary and ref not in out:
                    out.append(ref)
        return out

    def function(self, hint: str, region: list[str], args: list[tuple[str, str]],
                 outputs: list[str]) -> str:
        """A library function of ``region``; ``args``: (ref, dtype) read as arguments."""
        name = self.unique(hint)
        names = {ref: self.unique(f"{name}_arg{i}") for i, (ref, _) in enumerate(args)}
        nodes = []
        for node_name in region:
            node = self.nodes[node_name]
            if node.op in V1_OPS:
                raise _fail(node, "nested inside another construct in a way not lifted")
            inputs = [names.get(_ref(r), r) for r in node.inputs if not r.startswith("^")]
            nodes.append(TfNode(node.name, node.op, inputs, node.attrs, node.device))
        outs = [(f"out_{k}", self.dtype(r)) for k, r in enumerate(outputs)]
        ret = {f"out_{k}": names.get(_ref(r), _ref(r)) for k, r in enumerate(outputs)}
        self.functions[name] = TfFunction(name, [(names[r], t) for r, t in args], outs,
                                          nodes, ret)
        return name

    def replace(self, old: dict[str, str], removed: set[str]) -> None:
        """Rewire reads of ``old`` refs, drop ``removed`` nodes (and Identities left reading
        them: pivots, loop controls), and control inputs on any of them."""
        for ref, new in list(self.renamed.items()):  # a later lift may move the new ref too
            self.renamed[ref] = old.get(new, new)
        self.renamed.update(old)
        for name in removed:
            self.nodes.pop(name, None)
        while True:
            gone = [n for n in self.nodes.values() if n.op in ("Identity", "Const") and any(
                not r.startswith("^") and input_name(r)[0] in removed and _ref(r) not in old
                for r in n.inputs)]
            if not gone:
                break
            for n in gone:
                removed.add(n.name)
                self.nodes.pop(n.name)
        for node in list(self.nodes.values()):
            inputs = []
            for r in node.inputs:
                if r.startswith("^"):
                    if input_name(r)[0] not in removed:
                        inputs.append(r)
                    continue
                ref = _ref(r)
                if ref in old:
                    inputs.append(old[ref])
                elif input_name(ref)[0] in removed:
                    raise _fail(node, f"reads {r!r}, which is inside a lifted construct")
                else:
                    inputs.append(r)
            if inputs != node.inputs:
                self.nodes[node.name] = TfNode(node.name, node.op, inputs, node.attrs,
                                               node.device)

    # --- the passes --------------------------------------------------------------------------
    def run(self) -> None:
        while self._lift_one_cond() or self._lift_one_loop():
            pass
        left = [n for n in self.nodes.values() if n.op in V1_OPS]
        if left:
            raise _fail(left[0], "a shape of TF1 control flow that is not lifted")

    def _loop_switch(self, node: TfNode) -> bool:
        pred = self.nodes.get(input_name(node.inputs[1])[0]) if len(node.inputs) > 1 else None
        return pred is not None and pred.op == "LoopCond"

    def _sides(self, ref: str, then_refs: set[str], else_refs: set[str]) -> set[int]:
        """Which outputs of the group's Switches ``ref`` depends on (1 then, 0 else), through
        data and control inputs."""
        sides: set[int] = set()
        seen: set[str] = set()
        stack = [_ref(ref)]
        while stack:
            r = stack.pop()
            if r in then_refs:
                sides.add(1)
                continue
            if r in else_refs:
                sides.add(0)
                continue
            name = input_name(r)[0]
            if name in seen or name not in self.nodes:
                continue
            seen.add(name)
            stack.extend(_ref(i[1:]) if i.startswith("^") else _ref(i)
                         for i in self.nodes[name].inputs)
        return sides

    def _lift_one_cond(self) -> bool:
        groups: dict[str, list[TfNode]] = {}
        for node in self.nodes.values():
            # (control inputs, which grappler adds to a lowered If's switch_pred, order
            # nothing once the branches are functions)
            if node.op in ("Switch", "RefSwitch") and len(_data(node)) == 2 \
                    and not self._loop_switch(node):
                groups.setdefault(_ref(node.inputs[1]), []).append(node)
        return any(self._lift_cond(pred, switches) for pred, switches in groups.items())

    def _lift_cond(self, pred: str, switches: list[TfNode]) -> bool:
        then_refs = {f"{s.name}:1" for s in switches}
        else_refs = {f"{s.name}:0" for s in switches}
        merges = []
        for node in self.nodes.values():
            data = [r for r in node.inputs if not r.startswith("^")]
            if node.op not in ("Merge", "RefMerge") or len(data) != 2:
                continue
            a = self._sides(data[0], then_refs, else_refs)
            b = self._sides(data[1], then_refs, else_refs)
            if {frozenset(a), frozenset(b)} == {frozenset({1}), frozenset({0})}:
                merges.append((node, data[0] if a == {1} else data[1],
                               data[1] if a == {1} else data[0]))
        if not merges:
            return False
        boundary = then_refs | else_refs
        then_region = self.region([t for _, t, _ in merges], boundary)
        else_region = self.region([e for _, _, e in merges], boundary)
        if any(self.nodes[n].op in V1_OPS for n in then_region + else_region):
            return False  # a construct nested inside: lifted first
        captured = list(self.captures(then_region + else_region, boundary))
        args_then = [(f"{s.name}:1", self.dtype(f"{s.name}:0")) for s in switches] + \
            [(r, self.dtype(r)) for r in captured]
        args_else = [(f"{s.name}:0", self.dtype(f"{s.name}:0")) for s in switches] + \
            [(r, self.dtype(r)) for r in captured]
        base = merges[0][0].name.rsplit("/", 1)[0] if "/" in merges[0][0].name \
            else merges[0][0].name
        then_fn = self.function(f"{base}_then", then_region, args_then, [t for _, t, _ in merges])
        else_fn = self.function(f"{base}_else", else_region, args_else,
                                [e for _, _, e in merges])
        if_name = self.unique(f"{base}/If")
        node = TfNode(if_name, "StatelessIf",
                      [pred, *(s.inputs[0] for s in switches), *captured],
                      {"then_branch": {"func": {"name": then_fn}},
                       "else_branch": {"func": {"name": else_fn}}})
        old = {f"{m.name}:0": f"{if_name}:{k}" for k, (m, _, _) in enumerate(merges)}
        for m, _, _ in merges:
            if any(_ref(r) == f"{m.name}:1" for n in self.nodes.values() for r in n.inputs):
                raise _fail(m, "its value_index output is read")
        removed = {s.name for s in switches} | {m.name for m, _, _ in merges} | \
            set(then_region) | set(else_region)
        self.nodes[if_name] = node
        self.replace(old, removed)
        return True

    def _lift_one_loop(self) -> bool:
        frames: dict[str, list[TfNode]] = {}
        for node in self.nodes.values():
            if node.op in ("Enter", "RefEnter"):
                raw = (node.attrs.get("frame_name") or {}).get("s", "")
                frame = base64.b64decode(raw).decode("utf8", "replace") if raw else ""
                frames.setdefault(frame, []).append(node)
        return any(self._lift_loop(frame, enters) for frame, enters in frames.items())

    def _lift_loop(self, frame: str, enters: list[TfNode]) -> bool:
        readers: dict[str, list[TfNode]] = {}
        for node in self.nodes.values():
            for r in node.inputs:
                if not r.startswith("^"):
                    readers.setdefault(_ref(r), []).append(node)
        variables, invariants = [], []
        for enter in enters:
            merges = [n for n in readers.get(f"{enter.name}:0", []) if n.op in ("Merge",
                                                                                 "RefMerge")]
            if merges:
                variables.append((enter, merges[0]))
            else:
                invariants.append(enter)
        if not variables:
            raise _fail(enters[0], "a frame without loop variables")
        parts = []
        loop_cond: TfNode | None = None
        for enter, merge in variables:
            switch = next((n for n in readers.get(f"{merge.name}:0", [])
                           if n.op in ("Switch", "RefSwitch")), None)
            if switch is None or len(merge.inputs) != 2:
                raise _fail(merge, "a loop Merge without its Switch")
            next_it = self.nodes.get(input_name(merge.inputs[1])[0])
            if next_it is None or next_it.op not in ("NextIteration", "RefNextIteration"):
                raise _fail(merge, "a loop Merge without its NextIteration")
            loop_cond = self.nodes[input_name(switch.inputs[1])[0]]
            exits = [n for n in readers.get(f"{switch.name}:0", []) if n.op in ("Exit",
                                                                                "RefExit")]
            parts.append((enter, merge, switch, next_it, exits))
        assert loop_cond is not None
        inv_refs = [f"{e.name}:0" for e in invariants]
        cond_boundary = {f"{m.name}:0" for _, m, _, _, _ in parts} | set(inv_refs)
        body_boundary = {f"{s.name}:1" for _, _, s, _, _ in parts} | set(inv_refs)
        cond_region = self.region([loop_cond.inputs[0]], cond_boundary)
        body_outs = [n.inputs[0] for _, _, _, n, _ in parts]
        body_region = self.region(body_outs, body_boundary)
        if any(self.nodes[n].op in V1_OPS for n in cond_region + body_region):
            return False  # an inner loop or cond: lifted first
        captured = self.captures(cond_region + body_region, cond_boundary | body_boundary)
        dtypes = [self.dtype(f"{m.name}:0") for _, m, _, _, _ in parts] + \
            [self.dtype(r) for r in inv_refs] + [self.dtype(r) for r in captured]
        cond_args = [f"{m.name}:0" for _, m, _, _, _ in parts] + inv_refs + captured
        body_args = [f"{s.name}:1" for _, _, s, _, _ in parts] + inv_refs + captured
        base = frame.replace("/", "_") or "while"
        cond_fn = self.function(f"{base}_cond", cond_region, list(zip(cond_args, dtypes)),
                                [loop_cond.inputs[0]])
        body_fn = self.function(f"{base}_body", body_region, list(zip(body_args, dtypes)),
                                body_outs + inv_refs + captured)
        name = self.unique(f"{frame or 'while'}/While")
        starts = [e.inputs[0] for e, _, _, _, _ in parts] + \
            [e.inputs[0] for e in invariants] + captured
        self.nodes[name] = TfNode(name, "StatelessWhile", starts,
                                  {"cond": {"func": {"name": cond_fn}},
                                   "body": {"func": {"name": body_fn}}})
        old = {f"{x.name}:0": f"{name}:{k}" for k, (_, _, _, _, exits) in enumerate(parts)
               for x in exits}
        removed = set(cond_region) | set(body_region) | {loop_cond.name} | \
            {e.name for e in enters}
        for enter, merge, switch, next_it, exits in parts:
            removed |= {enter.name, merge.name, switch.name, next_it.name} | \
                {x.name for x in exits}
        self.replace(old, removed)
        return True
