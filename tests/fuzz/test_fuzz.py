"""Property: whatever a mutated model file holds, modelport answers with one of its own errors
(``ModelportError``) or a result, never another exception (see ``harness.py`` for the
mutations). Bounded for CI: the whole module runs in well under a minute; under ``CI=true`` the
examples are derandomized so a run is reproducible. ``bench/fuzz.py`` is the long run.
"""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import harness

IN_CI = os.environ.get("CI", "").lower() == "true"
EXAMPLES = 300  # per target: 2-8 s each here (2 shared cores)

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=IN_CI, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

def _check(target: str, seed: int, scratch: Path) -> None:
    error = harness.run_one(target, seed, scratch)
    if error is not None:
        where = "".join(traceback.format_exception(error)[-6:])
        pytest.fail(f"{target} seed {seed}: {type(error).__name__}: {error}\n{where}"
                    f"replay: python bench/fuzz.py --target {target} --seed {seed} "
                    "--iterations 1 --traceback")


@pytest.fixture(autouse=True)
def _quiet_warnings():
    # NaN/Inf weights are a common mutation; their warnings are expected, not interesting
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("target", sorted(harness.TARGETS))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_model_gives_modelport_error_or_result(target, seed, tmp_path):
    _check(target, seed, tmp_path)


@pytest.mark.parametrize("target,seed", [
    ("tfjs-graph", 101235),  # a dict as a signature dtype: TypeError in _signature (fixed)
    ("tfjs-graph", 3008124),
    ("tfjs-graph", 4991),  # a list as the signature: AttributeError in read (fixed)
    ("keras-h5", 1122),  # a weight with a null dataspace: TypeError when written (fixed)
    # found once conversions were exercised too (fixed):
    ("onnx", 342),  # a node name that is not UTF-8: SerdeError when written
    ("onnx", 1162),  # Gemm with a rank-1 B: IndexError raising it to Dense
    ("tfjs-graph", 575),  # LogSoftmax without inputs: IndexError mapping it
    ("tfjs-graph", 2217),  # _FusedMatMul fusing BiasAdd without its bias input
    ("keras-h5", 138),  # a dict as an InputLayer dtype: TypeError lowering it
    ("tfjs-layers", 311269),  # a negative input dimension: ValueError making inputs
    ("keras-h5", 313795),  # a 10**40 input dimension: SerdeError writing the ONNX shape
    ("keras-h5", 401835),  # input_layers missing, its InputLayers read: KeyError lowering
    ("tfjs-graph", 409358),  # fused_ops whose base64 is not UTF-8: UnicodeDecodeError
    ("keras-h5", 502510),  # a fixed batch of 2**31: MemoryError making parity inputs
    # found once PyTorch-exported ONNX files and the other graph-models were seeds (fixed):
    ("onnx-pytorch", 637),  # data type 65: ValueError in onnx_ir
    ("onnx-pytorch", 23137),  # declared shapes contradict the ops: InferenceError converting
    ("onnx-pytorch", 562),  # a Transpose perm longer than its input: IndexError in layout
    ("onnx-pytorch", 10442),  # a Conv weight of rank 1: ValueError transposing it
    ("onnx-pytorch", 14302),  # a Reshape to a 2**39 dimension: OverflowError into int32
    ("tfjs-graph-fixtures", 12319),  # MirrorPad to 560 GiB: MemoryError in the reference
    ("onnx-pytorch", 20858),  # a Pad with 6 pads on rank 4: IndexError in both converters
    ("onnx-pytorch", 23062),  # a Pad mode that is not UTF-8: UnicodeDecodeError
    ("onnx-pytorch", 42016),  # AveragePool pads of the wrong size: IndexError (now told by
    #                           ONNX's full check, which a crash in conversion consults)
    ("tfjs-graph-fixtures", 48341),  # a 10**40 stride: SerdeError writing the ONNX attribute
    ("tfjs-graph-fixtures", 50137),  # a fused BiasAdd without its bias: IndexError
    ("tfjs-graph-fixtures", 39916801),  # a Pack without inputs: IndexError mapping it
    ("tfjs-graph", 685328),  # a signature dimension of 2**63: a 2**63-row probe input
    ("onnx-pytorch", 839476),  # a Conv with group 0: ZeroDivisionError mapping it to TF.js
    ("tfjs-graph-fixtures", 745551),  # Pad by 8388608 channels: the check's runs took 24 GB
    #                                   until the OOM killer stopped them
])
def test_past_findings_stay_fixed(target, seed, tmp_path):
    _check(target, seed, tmp_path)


def test_targets_cover_every_format():
    assert set(harness.TARGETS) == {"keras-h5", "keras-v3", "tfjs-layers", "tfjs-graph",
                                    "tfjs-graph-fixtures", "onnx", "onnx-pytorch"}
    assert all(p.is_file() for p in harness._pytorch_seeds())
