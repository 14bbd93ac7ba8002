"""ONNX models with dynamic sizes stay dynamic in TF.js graph-models (issue 18, point 3).

Each model is converted once, with symbolic dimensions, and run at two input sizes both by the
NumPy TF executor and by real tfjs under Node (one Node process for both sizes), against
onnxruntime: a detector-neck-like net (Conv, a Resize to another feature map's run-time size,
Concat, a Resize by a constant factor, a ConvTranspose), every Resize mode and coordinate rule
with run-time sizes, ConvTranspose variants without static spatial sizes, and run-time Slice
bounds and GatherElements indices.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.formats import tfjs_graph
from modelport.runtime import tfjs_reference

ATOL, RTOL = 1e-4, 1e-3


@pytest.fixture()
def tfjs():
    """Real tfjs where it is installed (required under CI); elsewhere None, and the NumPy TF
    executor's comparison still runs."""
    from modelport.runtime import tfjs_node

    from .conftest import REQUIRE_TOOLS, require_tool

    reason = tfjs_node.available()
    if reason is None:
        return tfjs_node
    if REQUIRE_TOOLS:
        require_tool(reason)
    return None


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def _w(rng, name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _f32(name, values):
    return numpy_helper.from_array(np.asarray(values, np.float32), name)


def _ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)


def _onnx_reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(model).run(None, feeds))


def _run_everywhere(model: onnx.ModelProto, feed_sets: list[dict], tmp_path, tfjs=None,
                    reference=_ort):
    """Convert once; each feed set through the NumPy TF executor and (if given) real tfjs,
    against ``reference`` (onnxruntime unless said otherwise)."""
    graph = to_tfjs.convert(ir.from_proto(model))
    wants = [reference(model, feeds) for feeds in feed_sets]
    for feeds, want in zip(feed_sets, wants):
        got = tfjs_reference.run(graph, [feeds[i.key] for i in graph.inputs])
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL)
    if tfjs is not None:
        from modelport.runtime import tfjs_node

        path = tfjs_graph.write(graph, tmp_path / "tfjs")
        jobs = [tfjs_node.GraphJob(path, [(i.tensor, feeds[i.key]) for i in graph.inputs],
                                   [o.tensor for o in graph.outputs]) for feeds in feed_sets]
        for result, want in zip(tfjs_node.run_graph_batch(jobs), wants):
            assert result.error is None, result.error
            assert result.outputs is not None
            for g, w in zip(result.outputs, want):
                assert g.shape == w.shape
                np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL)
    return graph


def _images(*shapes, seed=0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(s).astype(np.float32)} for s in shapes]


def _ops(graph) -> set[str]:
    return {n.op for n in graph.nodes}


X_DYN = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])


def _out(name, rank=4):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * rank)


# --- a detector neck --------------------------------------------------------------------------

def neck() -> onnx.ModelProto:
    """Conv stride 2 twice; the deeper map resized to the shallower one's run-time size
    (sizes = Concat(Shape(f2)[0:2], Shape(r1)[2:4]), as torch exports F.interpolate(size=));
    Concat; a linear x2 Resize by constant scales; a ConvTranspose stride 2."""
    rng = np.random.default_rng(0)
    inits = [_w(rng, "w1", (8, 3, 3, 3)), _w(rng, "w2", (8, 8, 3, 3)),
             _w(rng, "w3", (4, 16, 1, 1)), _w(rng, "wt", (4, 4, 2, 2)),
             _w(rng, "bt", (4,)), _f32("sc", [1, 1, 2, 2]),
             _i64("z", [0]), _i64("two", [2]), _i64("four", [4])]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["f1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["f1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["f2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Shape", ["r1"], ["s1"]),
        helper.make_node("Slice", ["s1", "two", "four", "z"], ["hw"]),
        helper.make_node("Shape", ["f2"], ["s2"]),
        helper.make_node("Slice", ["s2", "z", "two", "z"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["size"], axis=0),
        helper.make_node("Resize", ["f2", "", "", "size"], ["up"], mode="nearest"),
        helper.make_node("Concat", ["r1", "up"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["y"]),
        helper.make_node("Resize", ["y", "", "sc"], ["y2"], mode="linear"),
        helper.make_node("ConvTranspose", ["y", "wt", "bt"], ["y3"], strides=[2, 2]),
    ]
    return _model(nodes, [X_DYN], [_out("y"), _out("y2"), _out("y3")], inits)


def test_detector_neck_runs_at_two_sizes(tmp_path, tfjs):
    graph = _run_everywhere(neck(), _images((1, 3, 32, 32), (2, 3, 24, 40)), tmp_path, tfjs)
    assert graph.inputs[0].shape == [None, 3, None, None] or graph.inputs[0].shape[1:3] == \
        [None, None]  # (channels-last or not, the sizes stay open)


# --- Resize with run-time sizes ----------------------------------------------------------------

RESIZE_CASES = [
    ("nearest", "asymmetric", "floor"),
    ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "half_pixel", "round_prefer_ceil"),
    ("nearest", "asymmetric", "round_prefer_floor"),
    ("nearest", "align_corners", "round_prefer_ceil"),
    ("nearest", "tf_half_pixel_for_nn", "ceil"),
    ("nearest", "pytorch_half_pixel", "floor"),
    ("linear", "half_pixel", None),
    ("linear", "pytorch_half_pixel", None),
    ("linear", "align_corners", None),
    ("linear", "asymmetric", None),
    ("linear", "half_pixel_symmetric", None),
    ("cubic", "half_pixel", None),
    ("cubic", "pytorch_half_pixel", None),
    ("cubic", "asymmetric", None),
    ("cubic", "align_corners", None),
]


def _resize_model(mode, coord, nearest, how, **extra) -> onnx.ModelProto:
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, **extra}
    if nearest:
        attrs["nearest_mode"] = nearest
    inits, nodes = [], []
    inputs = [X_DYN]
    if how == "like":  # resized to the size of a second, independent input
        inputs.append(helper.make_tensor_value_info("like", TensorProto.FLOAT,
                                                    [1, 1, "H2", "W2"]))
        inits += [_i64("z", [0]), _i64("two", [2]), _i64("four", [4])]
        nodes += [helper.make_node("Shape", ["x"], ["sx"]),
                  helper.make_node("Slice", ["sx", "z", "two", "z"], ["nc"]),
                  helper.make_node("Shape", ["like"], ["sl"]),
                  helper.make_node("Slice", ["sl", "two", "four", "z"], ["hw"]),
                  helper.make_node("Concat", ["nc", "hw"], ["size"], axis=0),
                  helper.make_node("Resize", ["x", "", "", "size"], ["y"], **attrs)]
    elif how == "x3":  # a constant integer factor on dynamic sizes
        inits.append(_f32("sc", [1, 1, 3, 2]))
        nodes.append(helper.make_node("Resize", ["x", "", "sc"], ["y"], **attrs))
    elif how == "x1.5":  # a constant factor that is not an integer
        inits.append(_f32("sc", [1, 1, 1.5, 0.75]))
        nodes.append(helper.make_node("Resize", ["x", "", "sc"], ["y"], **attrs))
    else:  # constant sizes on a dynamic input (N = 1 is not known to be kept: resized too)
        inits.append(_i64("size", [1, 3, 7, 9]))
        nodes.append(helper.make_node("Resize", ["x", "", "", "size"], ["y"], **attrs))
    return _model(nodes, inputs, [_out("y")], inits)


@pytest.mark.parametrize("how", ["like", "x3", "x1.5", "const"])
@pytest.mark.parametrize("mode,coord,nearest", RESIZE_CASES)
def test_resize_with_run_time_sizes(mode, coord, nearest, how, tmp_path, tfjs):
    # align_corners with a non-integer scale: ONNX's definition (its reference evaluator and
    # node tests) divides by in * scale - 1, unfloored; onnxruntime by the floored output
    # length - 1. modelport follows ONNX, as for static sizes, and is compared with ONNX's own.
    spec = coord == "align_corners" and how == "x1.5"
    model = _resize_model(mode, coord, nearest, how)
    rng = np.random.default_rng(1)
    sizes = [((1, 3, 6, 5), (1, 1, 9, 14)), ((1, 3, 11, 8), (1, 1, 4, 3))]
    feeds = []
    for xs, ls in sizes:
        f = {"x": rng.standard_normal(xs).astype(np.float32)}
        if how == "like":
            f["like"] = rng.standard_normal(ls).astype(np.float32)
        feeds.append(f)
    _run_everywhere(model, feeds, tmp_path, tfjs, reference=_onnx_reference if spec else _ort)


@pytest.mark.parametrize("case,kernel", [
    (("nearest", "asymmetric", "floor", "like"), "ResizeNearestNeighbor"),
    (("linear", "half_pixel", None, "like"), "ResizeBilinear"),
    (("linear", "align_corners", None, "like"), "ResizeBilinear"),
    (("nearest", "half_pixel", "round_prefer_floor", "x3"), "ResizeNearestNeighbor"),
    (("linear", "pytorch_half_pixel", None, "x3"), "ResizeBilinear"),
    (("linear", "pytorch_half_pixel", None, "like"), None),  # out may be 1: ONNX reads 0
    (("nearest", "half_pixel", "round_prefer_floor", "like"), None),
    (("linear", "half_pixel", None, "x1.5"), None),
])
def test_tfjs_kernels_only_where_exact_for_every_size(case, kernel):
    graph = to_tfjs.convert(ir.from_proto(_resize_model(*case)))
    ops = _ops(graph)
    if kernel is None:
        assert not ops & {"ResizeNearestNeighbor", "ResizeBilinear"}
        assert "GatherV2" in ops
    else:
        assert kernel in ops


def test_resize_keeps_batch_and_channels_it_can_trace():
    """sizes = Concat(Shape(x)[0:2], ...) leaves N and C alone: no per-axis work for them."""
    graph = to_tfjs.convert(ir.from_proto(_resize_model("nearest", "half_pixel",
                                                        "round_prefer_floor", "like")))
    assert sum(n.op == "Range" for n in graph.nodes) == 2  # H and W only


@pytest.mark.parametrize("how", ["like", "x1.5"])
def test_cubic_excluding_outside_taps(how, tmp_path, tfjs):
    model = _resize_model("cubic", "half_pixel", None, how, exclude_outside=1,
                          cubic_coeff_a=-0.5)
    rng = np.random.default_rng(7)
    feeds = []
    for xs, ls in (((1, 3, 6, 5), (1, 1, 9, 14)), ((1, 3, 11, 8), (1, 1, 4, 3))):
        f = {"x": rng.standard_normal(xs).astype(np.float32)}
        if how == "like":
            f["like"] = rng.standard_normal(ls).astype(np.float32)
        feeds.append(f)
    _run_everywhere(model, feeds, tmp_path, tfjs)


# --- ConvTranspose without static spatial sizes -----------------------------------------------

@pytest.mark.parametrize("attrs,wshape", [
    ({"strides": [2, 2]}, (3, 4, 3, 3)),
    ({"strides": [2, 2], "pads": [1, 0, 1, 0], "output_padding": [1, 1]}, (3, 4, 3, 3)),
    ({"strides": [2, 3], "auto_pad": "SAME_UPPER"}, (3, 4, 3, 3)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (3, 4, 4, 3)),
    ({"strides": [1, 1], "dilations": [2, 2], "pads": [1, 1, 1, 1]}, (3, 4, 3, 3)),
    ({"strides": [2, 2], "group": 3}, (3, 2, 2, 2)),
])
def test_conv_transpose_with_run_time_sizes(attrs, wshape, tmp_path, tfjs):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)]
    m = wshape[1] * attrs.get("group", 1)
    model = _model(nodes, [X_DYN], [_out("y")], [_w(rng, "w", wshape), _w(rng, "b", (m,))])
    _run_everywhere(model, _images((1, 3, 5, 7), (2, 3, 8, 4)), tmp_path, tfjs)


def test_conv_transpose_1d_with_run_time_length(tmp_path, tfjs):
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "L"])
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2], pads=[1, 0])]
    model = _model(nodes, [x], [_out("y", 3)], [_w(rng, "w", (3, 2, 4))])
    _run_everywhere(model, _images((1, 3, 6), (3, 3, 11)), tmp_path, tfjs)


# --- pools padded SAME_UPPER on run-time sizes (PP-OCRv6's MaxPool k=2 s=1) ---------------------

@pytest.mark.parametrize("op,attrs,rank", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [1, 1]}, 4),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 1]}, 4),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2]}, 4),
    ("MaxPool", {"kernel_shape": [4], "strides": [3]}, 3),
])
def test_same_upper_pool_with_run_time_sizes(op, attrs, rank, tmp_path, tfjs):
    """TF's SAME padding is SAME_UPPER's (odd padding at the end; max pools skip it, averages
    excluding it divide by the taps inside), so these pools convert without static sizes;
    odd and even sizes pad differently."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"][:rank])
    nodes = [helper.make_node(op, ["x"], ["y"], auto_pad="SAME_UPPER", **attrs)]
    model = _model(nodes, [x], [_out("y", rank)])
    shapes = [(1, 3, 5, 7), (2, 3, 8, 6)] if rank == 4 else [(1, 3, 7), (2, 3, 12)]
    graph = _run_everywhere(model, _images(*shapes), tmp_path, tfjs)
    assert "PadV2" not in _ops(graph)


# --- Slice bounds and GatherElements indices known only at run time ----------------------------

@pytest.mark.parametrize("steps", [[1, 1], [-1, 2], [2, -1]])
def test_slice_with_run_time_starts_and_ends(steps, tmp_path, tfjs):
    """starts/ends are graph inputs (any values: negative, beyond the ends): tfjs's
    StridedSlice normalises them as ONNX does."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", 6])
    starts = helper.make_tensor_value_info("starts", TensorProto.INT64, [2])
    ends = helper.make_tensor_value_info("ends", TensorProto.INT64, [2])
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])]
    model = _model(nodes, [x, starts, ends], [_out("y", 3)],
                   [_i64("axes", [1, -1]), _i64("steps", steps)])
    rng = np.random.default_rng(4)
    feed_sets = []
    for shape, s, e in [((2, 7, 6), [1, -5], [-1, 100]), ((1, 9, 6), [-100, 5], [4, -100]),
                        ((3, 4, 6), [10, 0], [-10, 6])]:
        feed_sets.append({"x": rng.standard_normal(shape).astype(np.float32),
                          "starts": np.asarray(s, np.int64), "ends": np.asarray(e, np.int64)})
    _run_everywhere(model, feed_sets, tmp_path, tfjs)


def test_position_ids_sliced_to_the_sequence(tmp_path, tfjs):
    """position_ids[:, :seq] and rotate_half (x[..., :d/2], x[..., d/2:]) as exporters write
    them: Slice ends from Shape at run time."""
    rng = np.random.default_rng(5)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", 8])
    inits = [_w(rng, "table", (16, 8)), _i64("pos", np.arange(16)[None]),
             _i64("zero", [0]), _i64("one", [1]), _i64("last", [-1]), _i64("two", [2]),
             _i64("big", [2**62])]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one_s"], ["seq"], axis=0),
        helper.make_node("Unsqueeze", ["seq", "zero"], ["seq1"]),
        helper.make_node("Slice", ["pos", "zero", "seq1", "one"], ["ids"]),
        helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
        helper.make_node("Add", ["x", "emb"], ["h"]),
        helper.make_node("Gather", ["shape", "two_s"], ["d"], axis=0),
        helper.make_node("Div", ["d", "two_s64"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "zero"], ["half1"]),
        helper.make_node("Slice", ["h", "zero", "half1", "last"], ["a"]),
        helper.make_node("Slice", ["h", "half1", "big", "last"], ["b"]),
        helper.make_node("Neg", ["b"], ["nb"]),
        helper.make_node("Concat", ["nb", "a"], ["y"], axis=-1),
    ]
    inits += [numpy_helper.from_array(np.asarray(1, np.int64), "one_s"),
              numpy_helper.from_array(np.asarray(2, np.int64), "two_s"),
              numpy_helper.from_array(np.asarray(2, np.int64), "two_s64")]
    model = _model(nodes, [x], [_out("y", 3)], inits)
    feeds = [{"x": rng.standard_normal(s).astype(np.float32)} for s in ((1, 5, 8), (3, 11, 8))]
    _run_everywhere(model, feeds, tmp_path, tfjs)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_with_run_time_index_shape(axis, tmp_path, tfjs):
    """RoBERTa's token_type_ids buffer: GatherElements whose indices' shape is dynamic."""
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["B", "S", 5])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, ["B", "T", 5])
    nodes = [helper.make_node("GatherElements", ["data", "idx"], ["y"], axis=axis)]
    model = _model(nodes, [data, idx], [_out("y", 3)])
    rng = np.random.default_rng(6)
    feed_sets = []
    for b, s, t in ((2, 6, 4), (1, 9, 3)):
        d = rng.standard_normal((b, s, 5)).astype(np.float32)
        shape = [b, t, 5]
        limit = d.shape[axis]
        if axis == 0:
            shape[0] = 1
        feed_sets.append({"data": d, "idx": rng.integers(-limit, limit, shape).astype(np.int64)})
    _run_everywhere(model, feed_sets, tmp_path, tfjs)


def test_the_noise_estimate_does_not_move_integral_shape_arithmetic():
    """The parity check runs the NumPy TF executor in float64 with random rounding; a size
    cast to float is exact in float32 and must not be moved (a Range over it would grow by
    one element: a YOLO head's anchors, made by arange over each level's size)."""
    from modelport.runtime.precision import exact

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L"])
    inits = [numpy_helper.from_array(np.asarray(1, np.int64), "one"),
             _f32("start", 0.0), _f32("step", 1.0)]
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["n"], axis=0),
             helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
             helper.make_node("Range", ["start", "nf", "step"], ["y"])]
    model = _model(nodes, [x], [_out("y", 1)], inits)
    graph = to_tfjs.convert(ir.from_proto(model))
    feed = np.zeros((2, 7), np.float32)
    for seed in range(20):
        with exact(jitter=True, seed=seed):
            got, = tfjs_reference.run(graph, [feed])
        assert got.shape == (7,)


@pytest.mark.parametrize("mode", ["constant", "reflect"])
@pytest.mark.parametrize("axes", [None, [1, -1]])
def test_pad_with_run_time_pads(mode, axes, tmp_path, tfjs):
    """Pads computed at run time (a graph input here: any values, negative ones crop)."""
    n = 3 if axes is None else 2
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "H", "W"])
    pads = helper.make_tensor_value_info("pads", TensorProto.INT64, [2 * n])
    inputs = ["x", "pads", "value"] + (["axes"] if axes is not None else [])
    inits = [_f32("value", 1.5)] + ([_i64("axes", axes)] if axes is not None else [])
    nodes = [helper.make_node("Pad", inputs, ["y"], mode=mode)]
    model = _model(nodes, [x, pads], [_out("y", 3)], inits, opset=18)
    rng = np.random.default_rng(8)
    values = ([0, 2, 1, 0, 1, 3], [0, -1, 1, 0, 2, -1]) if n == 3 else ([2, 1, 1, 3],
                                                                        [-1, 1, 2, -1])
    feeds = [{"x": rng.standard_normal(s).astype(np.float32), "pads": np.asarray(p, np.int64)}
             for s, p in zip(((2, 5, 6), (1, 7, 4)), values)]
    _run_everywhere(model, feeds, tmp_path, tfjs)


def test_a_shared_dimension_name_is_not_taken_as_an_equal_size(tmp_path, tfjs):
    """Two inputs both say "H" and "W" but differ at run time (onnxruntime runs it): the
    Resize to the second one's size must still resize."""
    model = _resize_model("nearest", "asymmetric", "floor", "like")
    model.graph.input[1].CopyFrom(helper.make_tensor_value_info(
        "like", TensorProto.FLOAT, [1, 1, "H", "W"]))
    rng = np.random.default_rng(9)
    feeds = [{"x": rng.standard_normal((1, 3, 6, 5)).astype(np.float32),
              "like": rng.standard_normal((1, 1, 9, 4)).astype(np.float32)}]
    _run_everywhere(model, feeds, tmp_path, tfjs)
