"""The forms TensorFlow (and tf2onnx) give Keras layers, rewritten as the ONNX forms the raising
knows, before the layout pass. Each rewrite is an identity on the values and lives in its own
module: ``reverse`` (``go_backwards``), ``conv1d`` (``Conv1D`` via a 2-D convolution, causal
padding), ``repeats`` (nearest ``UpSampling2D``), ``index_wrap`` (``Embedding``),
``layer_norm_tf`` (``LayerNormalization``), ``loops`` (``GRU`` / ``SimpleRNN`` while loops),
``tensordot_rows`` (a Dense's row merge as ``Reshape([1, -1, K]) -> Squeeze``),
``pad_max_pool`` (a max pool's pads as a ``-inf`` ``Pad``), ``one_step`` (a cell run for one
step on a matrix). First,
``reshape_batch`` sizes each ``Reshape`` to ``[batch, ..., -1, ...]`` (Keras's ``Reshape``):
the others need the shapes after it.
"""

from __future__ import annotations

import onnx_ir as ir

from ..onnx_normalize import reinfer
from .conv1d import rewrite_conv1d
from .index_wrap import drop_index_wraps
from .layer_norm_tf import rewrite_batchnorm_layer_norms, rewrite_tf_layer_norms
from .loops import rewrite_recurrent_loops
from .one_step import (
    rewrite_one_step_inputs,
    rewrite_permuted_inputs,
    rewrite_stacked_states,
    rewrite_state_slices,
)
from .pad_max_pool import fold_padded_max_pools
from .repeats import rewrite_repeats
from .reshape_batch import fix_batch_reshapes
from .reverse import rewrite_full_reversals
from .tensordot_rows import rewrite_tensordot_rows


def rewrite_tf_forms(model: ir.Model) -> int:
    """Apply every rewrite; shapes are inferred again where one applied. How many applied."""
    if fix_batch_reshapes(model.graph):
        reinfer(model)
    done = rewrite_full_reversals(model.graph)
    done += rewrite_one_step_inputs(model.graph)
    done += rewrite_permuted_inputs(model.graph)
    done += rewrite_state_slices(model.graph)
    done += rewrite_stacked_states(model.graph)
    done += rewrite_conv1d(model.graph)
    done += rewrite_repeats(model.graph)
    done += rewrite_tensordot_rows(model.graph)
    done += drop_index_wraps(model)
    done += rewrite_tf_layer_norms(model)
    done += rewrite_batchnorm_layer_norms(model)
    done += rewrite_recurrent_loops(model)
    done += fold_padded_max_pools(model.graph)
    if done:
        reinfer(model)
    return done
