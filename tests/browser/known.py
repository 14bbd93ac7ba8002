"""Where real tfjs 4.22 fails in the browser on a fixture, by (model, backend): a piece of its
error message (or "diverges"). These are tfjs's own gaps, found by the browser check; each is
asserted to still fail the same way, so that a fix in tfjs (or a change in what modelport
writes) shows up as a test to update rather than passing unseen."""

KNOWN = {
    # tfjs-backend-wasm registers no Einsum kernel (tfjs's kernel registry for 'wasm')
    ("fixture tfjs_graph/attention", "wasm"): "Kernel 'Einsum' not registered",
    # the WASM _FusedMatMul takes a rank-1 bias only; the LSTM cell's fused bias is rank 2
    ("fixture tfjs_graph/lstm_cell", "wasm"): "_FusedMatMul only supports rank-1 bias",
    ("fixture tfjs_graph/lstm_groups", "wasm"): "_FusedMatMul only supports rank-1 bias",
    # a graph of shape ops (reflect/symmetric MirrorPad, crop-and-resize, slicing) that this
    # tfjs fails in the browser on every backend: out of range on cpu, a shader that does not
    # compile on WebGL, wrong values on WASM
    ("fixture tfjs_graph/shapes", "cpu"): "Requested out of range element",
    ("fixture tfjs_graph/shapes", "wasm"): "diverges",
    ("fixture tfjs_graph/shapes", "webgl"): "Failed to compile fragment shader",
    ("fixture tfjs_graph/shapes", "mobile"): "Failed to compile fragment shader",
}
