"""ONNX's own node tests, converted to TF.js graph-models and run in real @tensorflow/tfjs.

The case table is the ONNX package's backend node tests (``onnx.backend.test.case.node``: one
model per case with inputs and expected outputs). onnx 1.23's ``python -m
onnx.backend.test.cmd_tools generate-data`` writes only the model tests, so a session fixture
writes the node cases in the same layout (``<case>/model.onnx``,
``test_data_set_0/input_*.pb``, ``output_*.pb``) once, into a cache folder in the system temp
folder keyed by the onnx version, and reads them from there.

A case belongs to the op of its model's one node; a model of several nodes (``_expanded``
cases: the op's function body inlined) to the op its name tests (``test_<op>_...``). For every op in
the mapping table (``onnx_to_tfjs.core.RULES``) there is one test: each of its cases must convert,
run in real tfjs (all models in a few Node processes, see ``tfjs_node.run_graph_batch``) and
match the expected outputs within ``TOL``, or be listed in ``LISTED`` with a reason — listed as
``refused`` (the converter must raise UnsupportedError) or ``differs`` (converts, tfjs's result
differs; the test fails if it starts to pass, like ``xfail(strict=True)``). No case is skipped.
The pass table by op is printed at the end of the session (``-s``) and written to
``onnx_node_suite.txt`` in pytest's base temp folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import numpy_helper

from modelport.converters.onnx_to_tfjs.driver import RULES
from modelport.errors import ModelportError, UnsupportedError
from modelport.runtime import tfjs_node

# float32 outputs: |got - want| <= atol + rtol * |want|; integers and bools exactly.
TOL = {"atol": 1e-4, "rtol": 1e-3}
# Looser tolerances by case, with the reason: none needed so far.
LOOSE: dict[str, tuple[dict, str]] = {}



def _listed(kind: str, reason: str, *cases: str) -> dict[str, tuple[str, str]]:
    return dict.fromkeys(cases, (kind, reason))


# case -> ("refused" | "differs", reason). Every listed case is asserted to behave so:
# "refused" = UnsupportedError at conversion; "differs" = converts, tfjs's result differs from
# ONNX's expected output (a listed "differs" case that starts to pass fails the test).
LISTED: dict[str, tuple[str, str]] = {
    **_listed('differs', "reduction over a zero-size axis: tfjs's Max is not ONNX's identity element (-inf)",
              'test_reduce_log_sum_exp_empty_set', 'test_reduce_max_empty_set'),
    **_listed('differs', "reduction over a zero-size axis: tfjs's Min is not ONNX's identity element (+inf)",
              'test_reduce_min_empty_set'),
    **_listed('differs', "tfjs's FloorMod is x - floor(x/y)*y: NaN for an infinite divisor where ONNX (NumPy's mod) gives the dividend or ±inf",
              'test_mod_float_edge_cases_fmod_0_float32'),
    **_listed('refused', 'a parameter input (axes, pads, scales, starts, k, ...) is a run-time value; tfjs needs it when the model is converted (the [const] variant runs)',
              'test_constant_pad_axes', 'test_constant_pad_negative_axes', 'test_edge_pad',
              'test_reduce_l1_default_axes_keepdims_example',
              'test_reduce_l1_default_axes_keepdims_example_expanded',
              'test_reduce_l1_default_axes_keepdims_random',
              'test_reduce_l1_default_axes_keepdims_random_expanded',
              'test_reduce_l2_default_axes_keepdims_example',
              'test_reduce_l2_default_axes_keepdims_example_expanded',
              'test_reduce_l2_default_axes_keepdims_random',
              'test_reduce_l2_default_axes_keepdims_random_expanded',
              'test_reduce_log_sum_default', 'test_reduce_log_sum_default_expanded',
              'test_reduce_log_sum_exp_default_axes_keepdims_example',
              'test_reduce_log_sum_exp_default_axes_keepdims_example_expanded',
              'test_reduce_log_sum_exp_default_axes_keepdims_random',
              'test_reduce_log_sum_exp_default_axes_keepdims_random_expanded',
              'test_reduce_mean_default_axes_keepdims_example',
              'test_reduce_mean_default_axes_keepdims_random',
              'test_reduce_sum_default_axes_keepdims_example',
              'test_reduce_sum_default_axes_keepdims_random',
              'test_reduce_sum_empty_axes_input_noop',
              'test_reduce_sum_empty_axes_input_noop_example',
              'test_reduce_sum_square_default_axes_keepdims_example',
              'test_reduce_sum_square_default_axes_keepdims_example_expanded',
              'test_reduce_sum_square_default_axes_keepdims_random',
              'test_reduce_sum_square_default_axes_keepdims_random_expanded',
              'test_resize_downsample_sizes_nearest_not_larger',
              'test_resize_downsample_sizes_nearest_not_smaller',
              'test_resize_upsample_sizes_nearest_not_larger',
              'test_resize_upsample_sizes_nearest_not_smaller', 'test_slice',
              'test_slice_default_steps', 'test_slice_end_out_of_bounds', 'test_slice_neg',
              'test_slice_neg_steps', 'test_slice_negative_axes',
              'test_slice_start_out_of_bounds', 'test_squeeze', 'test_squeeze_negative_axes',
              'test_unsqueeze_axis_0', 'test_unsqueeze_axis_1', 'test_unsqueeze_axis_2',
              'test_unsqueeze_negative_axes', 'test_unsqueeze_three_axes',
              'test_unsqueeze_two_axes', 'test_unsqueeze_unsorted_axes', 'test_wrap_pad'),
    **_listed('refused', 'tfjs has no float16 tensors',
              'test_cast_FLOAT16_to_DOUBLE', 'test_cast_FLOAT16_to_FLOAT',
              'test_cast_FLOAT16_to_FLOAT4E2M1', 'test_cast_FLOAT16_to_FLOAT8E4M3FN',
              'test_cast_FLOAT16_to_FLOAT8E4M3FNUZ', 'test_cast_FLOAT16_to_FLOAT8E5M2',
              'test_cast_FLOAT16_to_FLOAT8E5M2FNUZ', 'test_cast_FLOAT16_to_INT2',
              'test_cast_FLOAT16_to_INT4', 'test_cast_FLOAT16_to_UINT2',
              'test_cast_FLOAT16_to_UINT4', 'test_cast_FLOAT_to_FLOAT16',
              'test_cast_e8m0_FLOAT16_to_FLOAT8E8M0',
              'test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FN',
              'test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ',
              'test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2',
              'test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ',
              'test_castlike_FLOAT16_to_DOUBLE', 'test_castlike_FLOAT16_to_DOUBLE_expanded',
              'test_castlike_FLOAT16_to_FLOAT', 'test_castlike_FLOAT16_to_FLOAT4E2M1',
              'test_castlike_FLOAT16_to_FLOAT4E2M1_expanded',
              'test_castlike_FLOAT16_to_FLOAT8E4M3FN', 'test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ',
              'test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ_expanded',
              'test_castlike_FLOAT16_to_FLOAT8E4M3FN_expanded',
              'test_castlike_FLOAT16_to_FLOAT8E5M2', 'test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ',
              'test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ_expanded',
              'test_castlike_FLOAT16_to_FLOAT8E5M2_expanded',
              'test_castlike_FLOAT16_to_FLOAT_expanded', 'test_castlike_FLOAT16_to_INT2',
              'test_castlike_FLOAT16_to_INT2_expanded', 'test_castlike_FLOAT16_to_INT4',
              'test_castlike_FLOAT16_to_INT4_expanded', 'test_castlike_FLOAT16_to_UINT2',
              'test_castlike_FLOAT16_to_UINT2_expanded', 'test_castlike_FLOAT16_to_UINT4',
              'test_castlike_FLOAT16_to_UINT4_expanded', 'test_castlike_FLOAT_to_FLOAT16',
              'test_castlike_FLOAT_to_FLOAT16_expanded',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ_expanded',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN_expanded',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ_expanded',
              'test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2_expanded', 'test_celu_float16',
              'test_celu_float16_expanded', 'test_isinf_float16', 'test_isnan_float16',
              'test_max_float16', 'test_min_float16', 'test_mod_float16_mixed_sign_fmod_0',
              'test_mod_float_edge_cases_fmod_0_float16', 'test_mod_mixed_sign_float16',
              'test_range_float16_type_positive_delta'),
    **_listed('refused', 'tfjs has no double',
              'test_cast_DOUBLE_to_FLOAT', 'test_cast_DOUBLE_to_FLOAT16',
              'test_cast_FLOAT_to_DOUBLE', 'test_castlike_DOUBLE_to_FLOAT',
              'test_castlike_DOUBLE_to_FLOAT16', 'test_castlike_DOUBLE_to_FLOAT16_expanded',
              'test_castlike_DOUBLE_to_FLOAT_expanded', 'test_castlike_FLOAT_to_DOUBLE',
              'test_castlike_FLOAT_to_DOUBLE_expanded', 'test_cumsum_1d',
              'test_cumsum_1d_exclusive', 'test_cumsum_1d_reverse',
              'test_cumsum_1d_reverse_exclusive', 'test_cumsum_2d_axis_0',
              'test_cumsum_2d_axis_1', 'test_cumsum_2d_negative_axis', 'test_einsum_batch_matmul',
              'test_einsum_scalar', 'test_einsum_sum', 'test_einsum_transpose',
              'test_eyelike_with_dtype', 'test_max_float64', 'test_min_float64',
              'test_mod_float64_mixed_sign_fmod_0', 'test_mod_float_edge_cases_fmod_0_float64',
              'test_mod_mixed_sign_float64',
              'test_reduce_log_sum_exp_default_axes_keepdims_example[const]',
              'test_reduce_log_sum_exp_default_axes_keepdims_example_expanded[const]',
              'test_reduce_log_sum_exp_default_axes_keepdims_random[const]',
              'test_reduce_log_sum_exp_default_axes_keepdims_random_expanded[const]',
              'test_reduce_log_sum_exp_do_not_keepdims_example',
              'test_reduce_log_sum_exp_do_not_keepdims_example_expanded',
              'test_reduce_log_sum_exp_do_not_keepdims_random',
              'test_reduce_log_sum_exp_do_not_keepdims_random_expanded',
              'test_reduce_log_sum_exp_keepdims_example',
              'test_reduce_log_sum_exp_keepdims_example_expanded',
              'test_reduce_log_sum_exp_keepdims_random',
              'test_reduce_log_sum_exp_keepdims_random_expanded',
              'test_reduce_log_sum_exp_negative_axes_keepdims_example',
              'test_reduce_log_sum_exp_negative_axes_keepdims_example_expanded',
              'test_reduce_log_sum_exp_negative_axes_keepdims_random',
              'test_reduce_log_sum_exp_negative_axes_keepdims_random_expanded'),
    **_listed('refused', 'tfjs has no uint64 tensors',
              'test_add_uint64', 'test_div_uint64', 'test_equal_uint64',
              'test_greater_equal_uint64', 'test_greater_equal_uint64_expanded',
              'test_greater_uint64', 'test_less_equal_uint64', 'test_less_equal_uint64_expanded',
              'test_less_uint64', 'test_max_uint64', 'test_min_uint64', 'test_mod_uint64',
              'test_mul_uint64', 'test_pow_types_float32_uint64', 'test_sub_uint64',
              'test_top_k_uint64'),
    **_listed('refused', 'tfjs has no uint32 tensors',
              'test_add_uint32', 'test_div_uint32', 'test_equal_uint32',
              'test_greater_equal_uint32', 'test_greater_equal_uint32_expanded',
              'test_greater_uint32', 'test_less_equal_uint32', 'test_less_equal_uint32_expanded',
              'test_less_uint32', 'test_max_uint32', 'test_min_uint32', 'test_mod_uint32',
              'test_mul_uint32', 'test_pow_types_float32_uint32', 'test_sub_uint32'),
    **_listed('refused', 'tfjs has no bfloat16 tensors',
              'test_cast_BFLOAT16_to_FLOAT', 'test_cast_FLOAT_to_BFLOAT16',
              'test_castlike_BFLOAT16_to_FLOAT', 'test_castlike_BFLOAT16_to_FLOAT_expanded',
              'test_castlike_FLOAT_to_BFLOAT16', 'test_castlike_FLOAT_to_BFLOAT16_expanded',
              'test_celu_bfloat16', 'test_celu_bfloat16_expanded',
              'test_einsum_batch_matmul_bfloat16', 'test_einsum_sum_bfloat16',
              'test_einsum_transpose_bfloat16', 'test_onehot_with_bfloat16_values',
              'test_range_bfloat16_type_positive_delta', 'test_reversesequence_bfloat16'),
    **_listed('refused', 'tfjs has no float8e4m3fn tensors',
              'test_cast_FLOAT8E4M3FN_to_FLOAT', 'test_cast_FLOAT8E4M3FN_to_FLOAT16',
              'test_cast_FLOAT_to_FLOAT8E4M3FN', 'test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN',
              'test_castlike_FLOAT8E4M3FN_to_FLOAT', 'test_castlike_FLOAT8E4M3FN_to_FLOAT16',
              'test_castlike_FLOAT8E4M3FN_to_FLOAT16_expanded',
              'test_castlike_FLOAT8E4M3FN_to_FLOAT_expanded',
              'test_castlike_FLOAT_to_FLOAT8E4M3FN',
              'test_castlike_FLOAT_to_FLOAT8E4M3FN_expanded',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN_expanded'),
    **_listed('refused', 'tfjs has no float8e4m3fnuz tensors',
              'test_cast_FLOAT8E4M3FNUZ_to_FLOAT', 'test_cast_FLOAT8E4M3FNUZ_to_FLOAT16',
              'test_cast_FLOAT_to_FLOAT8E4M3FNUZ',
              'test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ',
              'test_castlike_FLOAT8E4M3FNUZ_to_FLOAT', 'test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16',
              'test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16_expanded',
              'test_castlike_FLOAT8E4M3FNUZ_to_FLOAT_expanded',
              'test_castlike_FLOAT_to_FLOAT8E4M3FNUZ',
              'test_castlike_FLOAT_to_FLOAT8E4M3FNUZ_expanded',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ_expanded'),
    **_listed('refused', 'tfjs has no float8e5m2 tensors',
              'test_cast_FLOAT8E5M2_to_FLOAT', 'test_cast_FLOAT8E5M2_to_FLOAT16',
              'test_cast_FLOAT_to_FLOAT8E5M2', 'test_cast_no_saturate_FLOAT_to_FLOAT8E5M2',
              'test_castlike_FLOAT8E5M2_to_FLOAT', 'test_castlike_FLOAT8E5M2_to_FLOAT16',
              'test_castlike_FLOAT8E5M2_to_FLOAT16_expanded',
              'test_castlike_FLOAT8E5M2_to_FLOAT_expanded', 'test_castlike_FLOAT_to_FLOAT8E5M2',
              'test_castlike_FLOAT_to_FLOAT8E5M2_expanded',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2_expanded'),
    **_listed('refused', 'tfjs has no float8e5m2fnuz tensors',
              'test_cast_FLOAT8E5M2FNUZ_to_FLOAT', 'test_cast_FLOAT8E5M2FNUZ_to_FLOAT16',
              'test_cast_FLOAT_to_FLOAT8E5M2FNUZ',
              'test_cast_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ',
              'test_castlike_FLOAT8E5M2FNUZ_to_FLOAT', 'test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16',
              'test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16_expanded',
              'test_castlike_FLOAT8E5M2FNUZ_to_FLOAT_expanded',
              'test_castlike_FLOAT_to_FLOAT8E5M2FNUZ',
              'test_castlike_FLOAT_to_FLOAT8E5M2FNUZ_expanded',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ',
              'test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ_expanded'),
    **_listed('refused', 'tfjs has no int2 tensors',
              'test_cast_FLOAT_to_INT2', 'test_cast_INT2_to_FLOAT', 'test_cast_INT2_to_FLOAT16',
              'test_cast_INT2_to_INT8', 'test_castlike_FLOAT_to_INT2',
              'test_castlike_FLOAT_to_INT2_expanded', 'test_castlike_INT2_to_FLOAT',
              'test_castlike_INT2_to_FLOAT16', 'test_castlike_INT2_to_FLOAT16_expanded',
              'test_castlike_INT2_to_FLOAT_expanded', 'test_castlike_INT2_to_INT8',
              'test_castlike_INT2_to_INT8_expanded'),
    **_listed('refused', 'tfjs has no int4 tensors',
              'test_cast_FLOAT_to_INT4', 'test_cast_INT4_to_FLOAT', 'test_cast_INT4_to_FLOAT16',
              'test_cast_INT4_to_INT8', 'test_castlike_FLOAT_to_INT4',
              'test_castlike_FLOAT_to_INT4_expanded', 'test_castlike_INT4_to_FLOAT',
              'test_castlike_INT4_to_FLOAT16', 'test_castlike_INT4_to_FLOAT16_expanded',
              'test_castlike_INT4_to_FLOAT_expanded', 'test_castlike_INT4_to_INT8',
              'test_castlike_INT4_to_INT8_expanded'),
    **_listed('refused', 'tfjs has no uint2 tensors',
              'test_cast_FLOAT_to_UINT2', 'test_cast_UINT2_to_FLOAT',
              'test_cast_UINT2_to_FLOAT16', 'test_cast_UINT2_to_UINT8',
              'test_castlike_FLOAT_to_UINT2', 'test_castlike_FLOAT_to_UINT2_expanded',
              'test_castlike_UINT2_to_FLOAT', 'test_castlike_UINT2_to_FLOAT16',
              'test_castlike_UINT2_to_FLOAT16_expanded', 'test_castlike_UINT2_to_FLOAT_expanded',
              'test_castlike_UINT2_to_UINT8', 'test_castlike_UINT2_to_UINT8_expanded'),
    **_listed('refused', 'tfjs has no uint4 tensors',
              'test_cast_FLOAT_to_UINT4', 'test_cast_UINT4_to_FLOAT',
              'test_cast_UINT4_to_FLOAT16', 'test_cast_UINT4_to_UINT8',
              'test_castlike_FLOAT_to_UINT4', 'test_castlike_FLOAT_to_UINT4_expanded',
              'test_castlike_UINT4_to_FLOAT', 'test_castlike_UINT4_to_FLOAT16',
              'test_castlike_UINT4_to_FLOAT16_expanded', 'test_castlike_UINT4_to_FLOAT_expanded',
              'test_castlike_UINT4_to_UINT8', 'test_castlike_UINT4_to_UINT8_expanded'),
    **_listed('refused', 'tfjs has no float4e2m1 tensors',
              'test_cast_FLOAT4E2M1_to_FLOAT', 'test_cast_FLOAT4E2M1_to_FLOAT16',
              'test_cast_FLOAT_to_FLOAT4E2M1', 'test_castlike_FLOAT4E2M1_to_FLOAT',
              'test_castlike_FLOAT4E2M1_to_FLOAT16',
              'test_castlike_FLOAT4E2M1_to_FLOAT16_expanded',
              'test_castlike_FLOAT4E2M1_to_FLOAT_expanded', 'test_castlike_FLOAT_to_FLOAT4E2M1',
              'test_castlike_FLOAT_to_FLOAT4E2M1_expanded'),
    **_listed('refused', 'training_mode is (or may be) true',
              'test_training_dropout', 'test_training_dropout_default',
              'test_training_dropout_default_mask', 'test_training_dropout_mask',
              'test_training_dropout_zero_ratio', 'test_training_dropout_zero_ratio_mask'),
    **_listed('refused', 'antialias=1',
              'test_resize_downsample_scales_cubic_antialias',
              'test_resize_downsample_scales_linear_antialias',
              'test_resize_downsample_sizes_cubic_antialias',
              'test_resize_downsample_sizes_linear_antialias'),
    **_listed('refused', "coordinate_transformation_mode='tf_crop_and_resize'",
              'test_resize_tf_crop_and_resize', 'test_resize_tf_crop_and_resize_axes_2_3',
              'test_resize_tf_crop_and_resize_axes_3_2',
              'test_resize_tf_crop_and_resize_extrapolation_value'),
    **_listed('refused', 'the expanded function body has a Loop (no TF mapping for control flow)',
              'test_range_bfloat16_type_positive_delta_expanded',
              'test_range_float16_type_positive_delta_expanded',
              'test_range_float_type_positive_delta_expanded',
              'test_range_int32_type_negative_delta_expanded'),
    **_listed('refused', "reduction='max'",
              'test_scatter_elements_with_reduction_max', 'test_scatternd_max',
              'test_scatternd_max_with_element_indices'),
    **_listed('refused', "reduction='min'",
              'test_scatter_elements_with_reduction_min', 'test_scatternd_min',
              'test_scatternd_min_with_element_indices'),
    **_listed('refused', 'tfjs has no float8e8m0 tensors',
              'test_cast_e8m0_FLOAT8E8M0_to_FLOAT', 'test_cast_e8m0_FLOAT8E8M0_to_FLOAT16',
              'test_cast_e8m0_FLOAT_to_FLOAT8E8M0'),
    **_listed('refused', "reduction='add'",
              'test_scatter_elements_with_duplicate_indices', 'test_scatternd_add'),
    **_listed('refused', "reduction='mul'",
              'test_scatter_elements_with_reduction_mul', 'test_scatternd_multiply'),
    **_listed('refused', 'sequence or optional inputs/outputs (tfjs has no such values)',
              'test_identity_opt', 'test_identity_sequence', 'test_if_opt', 'test_if_seq',
              'test_loop13_seq', 'test_loop16_seq_none'),
    **_listed('refused', "the Indices output is used (tfjs has no MaxPoolWithArgmax for ONNX's layout)",
              'test_maxpool_with_argmax_2d_precomputed_pads',
              'test_maxpool_with_argmax_2d_precomputed_strides'),
    **_listed('refused', 'training_mode=1',
              'test_batchnorm_epsilon_training_mode', 'test_batchnorm_example_training_mode'),
    **_listed('refused', '3-D ConvTranspose (tfjs has no Conv3DBackpropInput)',
              'test_convtranspose_3d'),
    **_listed('refused', 'batch_dims > 0',
              'test_gathernd_example_int32_batch_dim1'),
    **_listed('refused', 'dilated ConvTranspose with a run-time weight',
              'test_convtranspose_dilations'),
    **_listed('refused', "implicit output (no '->')",
              'test_einsum_inner_prod'),
    **_listed('refused', 'pooling of non-float tensors',
              'test_maxpool_2d_uint8'),
    **_listed('refused', "tfjs's einsum has no ellipsis",
              'test_einsum_batch_diagonal'),
    **_listed('refused', 'blocked (de)quantization (block_size) is not mapped',
              'test_dequantizelinear_blocked', 'test_quantizelinear_blocked_asymmetric',
              'test_quantizelinear_blocked_symmetric'),
    **_listed('refused', 'float8, float4 and 2-/4-bit integer (de)quantization: tfjs has no such tensors',
              'test_dequantizelinear_e4m3fn', 'test_dequantizelinear_e4m3fn_float16',
              'test_dequantizelinear_e4m3fn_zero_point', 'test_dequantizelinear_e5m2',
              'test_dequantizelinear_float4e2m1', 'test_dequantizelinear_int2',
              'test_dequantizelinear_int4', 'test_dequantizelinear_uint2',
              'test_dequantizelinear_uint4', 'test_quantizelinear_e4m3fn',
              'test_quantizelinear_e5m2', 'test_quantizelinear_float4e2m1',
              'test_quantizelinear_int2', 'test_quantizelinear_int4', 'test_quantizelinear_uint2',
              'test_quantizelinear_uint4'),
}


CHUNK = 150  # models per Node process

# ONNX's node tests feed parameters (axes, pads, scales, starts, k, ...) as graph inputs; real
# models hold them as constants, and tfjs needs many of them when the model is converted. A
# case refused for that is listed, and its variant with every input but the first frozen to
# its test value (``<case>[const]``) runs too and must pass.
RUN_TIME = "computed at run time"
FROZEN = "[const]"


# --- the case table ---------------------------------------------------------------------------

def _cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"modelport-onnx-node-{onnx.__version__}"


def generate(root: Path) -> None:
    """Write ONNX's node test cases as generate-data would (model + one data set each)."""
    import onnx.backend.test.case.node as node_cases

    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=root.parent))
    for case in node_cases.collect_testcases(None):
        folder = tmp / case.name
        data = folder / "test_data_set_0"
        data.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(case.model.SerializeToString())
        if not case.data_sets:
            continue
        inputs, outputs = case.data_sets[0]
        for kind, arrays, infos in (("input", inputs, case.model.graph.input),
                                    ("output", outputs, case.model.graph.output)):
            for j, (array, info) in enumerate(zip(arrays, infos)):
                if not info.type.HasField("tensor_type"):
                    break  # sequences, maps, optionals: no tensor file (tfjs has none either)
                proto = array if isinstance(array, onnx.TensorProto) else \
                    numpy_helper.from_array(np.asarray(array), info.name)
                (data / f"{kind}_{j}.pb").write_bytes(proto.SerializeToString())
    (tmp / "COMPLETE").write_text(onnx.__version__)
    import shutil

    if root.exists() and not (root / "COMPLETE").exists():
        shutil.rmtree(root, ignore_errors=True)  # an interrupted generation
    try:
        os.replace(tmp, root)
    except OSError:  # another session finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "COMPLETE").exists():
            raise


def case_root() -> Path:
    root = _cache_dir()
    if not (root / "COMPLETE").exists():
        generate(root)
    return root


_OPS_BY_LOWER: dict[str, str] = {}
# Case names that spell their op otherwise.
ALIASES = {"batchnorm": "BatchNormalization", "basic_conv": "Conv",
           "instancenorm": "InstanceNormalization", "mvn": "MeanVarianceNormalization",
           "rms_normalization": "RMSNormalization", "training_dropout": "Dropout",
           "greater_equal": "GreaterOrEqual", "less_equal": "LessOrEqual",
           "gathernd": "GatherND", "scatternd": "ScatterND"}


def op_of(name: str) -> str | None:
    """The ONNX op a case tests, from its name: the longest op name that prefixes it."""
    if not _OPS_BY_LOWER:
        for schema in onnx.defs.get_all_schemas_with_history():
            if schema.domain in ("", "ai.onnx"):
                _OPS_BY_LOWER[re.sub(r"(?<!^)(?=[A-Z])", "_", schema.name).lower()] = schema.name
                _OPS_BY_LOWER[schema.name.lower()] = schema.name
        _OPS_BY_LOWER.update(ALIASES)
    stem = name[len("test_"):]
    best = None
    for key, op in _OPS_BY_LOWER.items():
        if re.match(re.escape(key) + r"($|_|\d)", stem) and (best is None or len(key) > len(best[0])):
            best = (key, op)
    return best[1] if best else None


@dataclass
class Outcome:
    case: str
    op: str
    kind: str  # "pass" | "refused" | "differs" | "error"
    detail: str = ""
    extra: dict = field(default_factory=dict)


def _load(folder: Path):
    model = onnx.load(str(folder / "model.onnx"))
    data = folder / "test_data_set_0"
    # (IR < 4 models also list their initializers as graph inputs: those are no inputs)
    inits = {t.name for t in model.graph.initializer}
    n_in = sum(1 for i in model.graph.input if i.name not in inits)
    ins = [numpy_helper.to_array(onnx.load_tensor(str(data / f"input_{j}.pb")))
           for j in range(n_in) if (data / f"input_{j}.pb").exists()]
    outs = [numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{j}.pb")))
            for j in range(len(model.graph.output)) if (data / f"output_{j}.pb").exists()]
    return model, ins, outs


def compare(got: np.ndarray, want: np.ndarray, tol: dict) -> str | None:
    """None when ``got`` (tfjs) matches ``want`` (ONNX's expected output), else how not."""
    got = np.asarray(got)
    if tuple(got.shape) != tuple(want.shape):
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    if want.dtype == np.bool_ or want.dtype.kind in "iu":
        if not np.array_equal(got.astype(np.int64), want.astype(np.int64)):
            bad = int(np.count_nonzero(got.astype(np.int64) != want.astype(np.int64)))
            return f"{bad} of {want.size} values differ"
        return None
    if want.dtype.kind in "OSU":
        return None if np.array_equal(got.astype(str), want.astype(str)) else "strings differ"
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        return "NaN positions differ"
    finite = ~np.isnan(w)
    same_inf = (g == w) | ~finite
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same inf
        err = np.abs(g - w)
    bad = finite & ~same_inf & (err > tol["atol"] + tol["rtol"] * np.abs(w))
    if bad.any():
        return (f"{int(bad.sum())} of {want.size} values beyond atol {tol['atol']} rtol "
                f"{tol['rtol']} (max abs err {float(np.nanmax(np.where(bad, err, 0))):.3g})")
    return None


def _convert_all(root: Path, work: Path, cases: list[tuple[str, str]]):
    from modelport.converters.onnx_to_tfjs import driver as to_tfjs
    from modelport.formats import onnx as onnx_format
    from modelport.formats import tfjs_graph

    outcomes, jobs = {}, []
    todo = [(name, op, None) for name, op in cases]
    while todo:
        name, op, frozen = todo.pop(0)
        folder = root / name
        try:
            model, ins, outs = _load(folder)
            inits = {t.name for t in model.graph.initializer}
            n_in = sum(1 for i in model.graph.input if i.name not in inits)
            if len(ins) != n_in or len(outs) != len(model.graph.output):
                raise UnsupportedError("inputs or outputs that are not tensors")
            if frozen:
                model, ins = _freeze(model, ins)
                name = frozen
            graph = to_tfjs.convert(ir.from_proto(model) if frozen else
                                    onnx_format.read(folder / "model.onnx"))
            dst = tfjs_graph.write(graph, work / name.replace(FROZEN, "_const"))
        except UnsupportedError as e:
            outcomes[name] = Outcome(name, op, "refused", e.message)
            if not frozen and RUN_TIME in e.message and len(ins) > 1:
                todo.append((name, op, name + FROZEN))
            continue
        except ModelportError as e:
            outcomes[name] = Outcome(name, op, "error", f"{type(e).__name__}: {e.message}")
            continue
        except Exception as e:  # noqa: BLE001 - a converter crash is this case's failure
            outcomes[name] = Outcome(name, op, "error", f"crash {type(e).__name__}: {e}")
            continue
        feeds = [(info.tensor, _feed(a)) for info, a in zip(graph.inputs, ins)]
        jobs.append((name, op, dst, feeds, [o.tensor for o in graph.outputs], outs))
    return outcomes, jobs


def _freeze(model: onnx.ModelProto, ins: list[np.ndarray]):
    """The case with every input but the first made an initializer holding its test value."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for info, array in list(zip(model.graph.input, ins))[1:]:
        model.graph.initializer.append(numpy_helper.from_array(array, info.name))
    keep = model.graph.input[0]
    del model.graph.input[:]
    model.graph.input.append(keep)
    return model, ins[:1]


def _feed(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "iu":
        return array.astype(np.int32)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array


def _run_chunk(chunk) -> list:
    """Each job's outputs, or tfjs's error (a crash of the Node process is charged to the job
    that was running, see ``tfjs_node.run_graph_batch``)."""
    results = tfjs_node.run_graph_batch([tfjs_node.GraphJob(dst, feeds, outs, budget_s=60)
                                         for _, _, dst, feeds, outs, _ in chunk])
    return [r.error if r.error is not None else r.outputs for r in results]


def run_suite(root: Path, work: Path, cases: list[tuple[str, str]]) -> dict[str, Outcome]:
    outcomes, jobs = _convert_all(root, work, cases)
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [r for rs in pool.map(_run_chunk, chunks) for r in rs]
    for (name, op, _, _, _, want), got in zip(jobs, results):
        if isinstance(got, Exception):
            outcomes[name] = Outcome(name, op, "differs", f"tfjs: {got.message}")
            continue
        tol = LOOSE[name][0] if name in LOOSE else TOL
        problems = [f"output {i}: {why}" for i, (g, w) in enumerate(zip(got, want))
                    if (why := compare(g, w, tol))]
        outcomes[name] = Outcome(name, op, "differs" if problems else "pass",
                                 "; ".join(problems))
    return outcomes


def all_cases(root: Path) -> list[tuple[str, str]]:
    out = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and folder.name.startswith("test_"):
            model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
            nodes = model.graph.node
            # a one-node model tests that node's op; others (expanded functions) by name
            op = nodes[0].op_type if len(nodes) == 1 and nodes[0].domain in ("", "ai.onnx") \
                else op_of(folder.name)
            if op in RULES:
                out.append((folder.name, op))
    return out


# --- fixtures and tests ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def suite(tmp_path_factory, tfjs) -> dict[str, Outcome]:
    # ``tfjs`` (conftest): without node and @tensorflow/tfjs this fails under CI.
    root = case_root()
    work = tmp_path_factory.mktemp("onnx_node_tfjs")
    outcomes = run_suite(root, work, all_cases(root))
    table = pass_table(outcomes)
    path = tmp_path_factory.getbasetemp() / "onnx_node_suite.txt"
    path.write_text(table)
    print("\n" + table + f"\n(written to {path})")
    return outcomes


def pass_table(outcomes: dict[str, Outcome]) -> str:
    by_op: dict[str, list[Outcome]] = {}
    for o in outcomes.values():
        by_op.setdefault(o.op, []).append(o)
    lines = [f"{'op':28} {'cases':>5} {'passed':>6} {'listed':>6} {'unexpected':>10}"]
    totals = [0, 0, 0, 0]
    for op in sorted(by_op):
        group = by_op[op]
        passed = sum(1 for o in group if o.kind == "pass" and o.case not in LISTED)
        listed = sum(1 for o in group if o.case in LISTED and o.kind == LISTED[o.case][0])
        bad = len(group) - passed - listed
        for i, v in enumerate((len(group), passed, listed, bad)):
            totals[i] += v
        lines.append(f"{op:28} {len(group):5d} {passed:6d} {listed:6d} {bad:10d}")
    lines.append(f"{'total':28} {totals[0]:5d} {totals[1]:6d} {totals[2]:6d} {totals[3]:10d}")
    return "ONNX node tests -> TF.js graph-model -> real tfjs\n" + "\n".join(lines)


def _ops_with_cases() -> list[str]:
    return sorted(RULES)


@pytest.mark.parametrize("op", _ops_with_cases())
def test_node_cases(op: str, suite: dict[str, Outcome]) -> None:
    mine = [o for o in suite.values() if o.op == op]
    failures = []
    for o in mine:
        if o.case in LISTED:
            kind, reason = LISTED[o.case]
            if o.kind != kind:
                failures.append(f"{o.case}: listed as {kind} ({reason}) but {o.kind}: "
                                f"{o.detail}")
        elif o.kind != "pass":
            failures.append(f"{o.case}: {o.kind}: {o.detail}")
    assert not failures, "\n".join(failures)
    assert mine or op in NO_NODE_TESTS, f"ONNX ships no node test for {op}"


# Ops in the mapping table for which ONNX's suite has no case of its own.
NO_NODE_TESTS: dict[str, str] = {
    "GlobalLpPool": "tests/test_onnx_to_tfjs.py checks it against onnxruntime",
    "DynamicQuantizeLSTM": "onnxruntime's contrib op: tests/interop/test_onnx_quantized_tfjs.py "
                           "checks it against onnxruntime",
}


def test_listed_cases_exist(suite: dict[str, Outcome]) -> None:
    """A listed case that no longer exists (renamed upstream) must leave the table."""
    assert not set(LISTED) - set(suite), sorted(set(LISTED) - set(suite))
