"""ONNX <-> TF op renames as data: one row per op that is the same computation on both sides.

Shared by ``onnx_to_tfjs`` (ONNX -> TF.js graph-model) and ``tfjs_to_onnx`` (the reverse); read-only
for both. A row holds only when the ONNX node's attributes listed in ``fixed`` have exactly
those values (absent = ONNX's default); anything else is an op that needs surgery and has a
function in the converter of its direction. Attribute values are plain Python values on both
sides: the converters encode them (TF's AttrValue JSON, ONNX attributes).

``kind`` of an attribute is TF's AttrValue field: ``"i"`` int, ``"f"`` float, ``"b"`` bool
(ONNX stores these as ints 0/1), ``"s"`` string, ``"type"`` a dtype (ONNX's TensorProto
enum, TF's ``DT_*``). ``onnx_default`` is what ONNX means when the attribute is absent, so a
converter always writes the value explicitly on the TF side (tfjs's defaults differ: its
LeakyRelu alpha is 0.2, ONNX's 0.01).

``inputs`` is the number of tensor inputs, the same on both sides and in the same order.
``tf_aliases`` are other TF ops that mean the same (read by ``tfjs_to_onnx`` only; ``onnx_to_tfjs``
always writes ``tf``). ``dtypes`` restricts the row to inputs of those kinds (``"float"``:
float tensors only; ``"bool"``: bool only; None: any), because some TF ops differ on
integers (tfjs's RealDiv on int32 floors, ONNX's Div truncates).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attr:
    """One attribute a row carries over: its ONNX and TF names, TF's AttrValue kind, and the
    value ONNX means when it is absent."""

    onnx: str
    tf: str
    kind: str  # "i" | "f" | "b" | "s" | "type"
    onnx_default: object = None


@dataclass(frozen=True)
class Rename:
    """One ONNX op that is one TF op: names, tensor input count, the attributes carried over,
    and what the row requires (``fixed`` attribute values, ``dtypes``)."""

    onnx: str
    tf: str
    inputs: int
    attrs: tuple[Attr, ...] = ()
    fixed: tuple[tuple[str, object], ...] = ()  # ONNX attributes the row requires
    tf_aliases: tuple[str, ...] = ()
    dtypes: str | None = None  # "float" | "bool" | None (any)
    note: str = ""


# ONNX's SELU constants are TF's (tf.nn.selu hard-codes them; so does tfjs).
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875

RENAMES: tuple[Rename, ...] = (
    # --- unary math -----------------------------------------------------------------------
    Rename("Abs", "Abs", 1),
    Rename("Neg", "Neg", 1),
    Rename("Exp", "Exp", 1),
    Rename("Log", "Log", 1),
    Rename("Sqrt", "Sqrt", 1),
    Rename("Reciprocal", "Reciprocal", 1),
    Rename("Floor", "Floor", 1),
    Rename("Ceil", "Ceil", 1),
    Rename("Round", "Round", 1, note="both round half to even"),
    Rename("Sign", "Sign", 1),
    Rename("Erf", "Erf", 1),
    Rename("Sin", "Sin", 1),
    Rename("Cos", "Cos", 1),
    Rename("Tan", "Tan", 1),
    Rename("Asin", "Asin", 1),
    Rename("Acos", "Acos", 1),
    Rename("Atan", "Atan", 1),
    Rename("Sinh", "Sinh", 1),
    Rename("Cosh", "Cosh", 1),
    Rename("Asinh", "Asinh", 1),
    Rename("Acosh", "Acosh", 1),
    Rename("Atanh", "Atanh", 1),
    Rename("IsNaN", "IsNan", 1),
    Rename("IsInf", "IsInf", 1, fixed=(("detect_negative", 1), ("detect_positive", 1))),
    Rename("Identity", "Identity", 1, tf_aliases=("StopGradient", "Snapshot")),
    # --- activations ----------------------------------------------------------------------
    Rename("Relu", "Relu", 1),
    Rename("Sigmoid", "Sigmoid", 1),
    Rename("Tanh", "Tanh", 1),
    Rename("Softplus", "Softplus", 1),
    Rename("Elu", "Elu", 1, fixed=(("alpha", 1.0),), note="TF's Elu has no alpha"),
    Rename("Selu", "Selu", 1, fixed=(("alpha", SELU_ALPHA), ("gamma", SELU_GAMMA))),
    Rename("LeakyRelu", "LeakyRelu", 1, attrs=(Attr("alpha", "alpha", "f", 0.01),)),
    Rename("PRelu", "Prelu", 2, note="slope broadcasts against x on both sides"),
    # --- binary arithmetic (NumPy broadcasting on both sides) ------------------------------
    Rename("Add", "AddV2", 2, tf_aliases=("Add",)),
    Rename("Sub", "Sub", 2),
    Rename("Mul", "Mul", 2),
    Rename("Div", "RealDiv", 2, dtypes="float", tf_aliases=("Div",),
           note="integer Div truncates in ONNX, floors in tfjs"),
    Rename("Pow", "Pow", 2, dtypes="float"),
    Rename("Max", "Maximum", 2, note="two inputs; ONNX's variadic form is a chain"),
    Rename("Min", "Minimum", 2, note="two inputs; ONNX's variadic form is a chain"),
    Rename("Mod", "FloorMod", 2, fixed=(("fmod", 0),), tf_aliases=("Mod",),
           note="fmod=0: the result takes the divisor's sign, like FloorMod"),
    # --- comparison and logic -------------------------------------------------------------
    Rename("Equal", "Equal", 2),
    Rename("Greater", "Greater", 2),
    Rename("Less", "Less", 2),
    Rename("GreaterOrEqual", "GreaterEqual", 2),
    Rename("LessOrEqual", "LessEqual", 2),
    Rename("Not", "LogicalNot", 1),
    Rename("And", "LogicalAnd", 2),
    Rename("Or", "LogicalOr", 2),
    Rename("BitwiseAnd", "BitwiseAnd", 2),
    Rename("Where", "SelectV2", 3, tf_aliases=("Select",),
           note="SelectV2 broadcasts like ONNX Where; Select (v1) does not"),
    # --- misc -----------------------------------------------------------------------------
    Rename("Cast", "Cast", 1, attrs=(Attr("to", "DstT", "type"),),
           fixed=(("saturate", 1),)),
    Rename("Size", "Size", 1),
    Rename("CumSum", "Cumsum", 2, attrs=(Attr("exclusive", "exclusive", "b", 0),
                                         Attr("reverse", "reverse", "b", 0))),
    Rename("Tile", "Tile", 2),
)

BY_ONNX: dict[str, Rename] = {r.onnx: r for r in RENAMES}
BY_TF: dict[str, Rename] = {name: r for r in RENAMES for name in (r.tf, *r.tf_aliases)}
