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
    # output c, the StridedSlice x[:, tf.newaxis, -1, ::-2, 2] (new-axis and shrink masks with
    # a negative stride): tfjs 4.22 gets it wrong on every backend (under Node too): out of
    # range on cpu, wrong values on WASM, a shader that does not compile on WebGL; the
    # fixture's 18 other outputs match on every backend
    ("fixture tfjs_graph/shapes", "cpu"): "Requested out of range element",
    ("fixture tfjs_graph/shapes", "wasm"): "diverges",
    ("fixture tfjs_graph/shapes", "webgl"): "Failed to compile fragment shader",
    ("fixture tfjs_graph/shapes", "mobile"): "Failed to compile fragment shader",
    # fixtures/browser/int_add's x // 7 on int32 values past 2**24: tfjs's WASM and WebGL
    # FloorDiv are off by up to 4 (cpu, webgpu and Node are exact)
    ("fixture browser/int_add", "wasm"): "diverges",
    ("fixture browser/int_add", "webgl"): "diverges",
    ("fixture browser/int_add", "mobile"): "diverges",
}

# Why, for RESULTS.md: the op, and what modelport does about it.
REASONS = {
    "int_add": "int32 FloorDiv (`x // 7`) on values past 2**24: tfjs's WASM and WebGL kernels "
               "are off by up to 4 there (`--per-layer` names the node: FloorDiv), and "
               "`x - x // 7 * 7` by up to 28; cpu, webgpu and tfjs under Node are exact. The "
               "browser check reports those backends (exit 6); the Node check cannot see it.",
    "Einsum": "tfjs-backend-wasm registers no Einsum kernel. modelport reports the wasm backend "
              "as failed (exit 6 under --engine browser); the model runs on cpu, webgl and "
              "webgpu.",
    "_FusedMatMul": "the WASM _FusedMatMul takes a rank-1 bias only; tensorflowjs_converter "
                    "fused a rank-2 bias (an LSTM cell's) into it. Reported per backend; cpu and "
                    "webgl run it.",
    "shapes": "the StridedSlice `x[:, tf.newaxis, -1, ::-2, 2]` (new-axis and shrink masks "
              "with a negative stride): tfjs 4.22 fails it on every backend, under Node too "
              "(out of range on cpu, wrong values on WASM, a WebGL shader that does not "
              "compile); its 18 other outputs match everywhere. modelport's reference computes "
              "it; the check reports the failing backend.",
}
