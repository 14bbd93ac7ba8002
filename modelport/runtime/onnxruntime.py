"""onnxruntime sessions: CUDA when asked for or available, CPU otherwise, and say which ran.

The CUDA execution provider runs matmuls and convolutions in TF32 by default (about 5e-4
relative error against the CPU); parity runs turn it off (``use_tf32=0``, error ~5e-6), or the
check would judge TF32's rounding, not the model. They also pin cuDNN's convolutions to implicit
GEMM (``cudnn_conv_algo_search=DEFAULT``): the exhaustive search, the provider's default, may
pick FFT or Winograd algorithms, whose float32 error is far above a GEMM's, and which one it
picks changes from run to run, so the check's noise estimate (a float32 GEMM-like computation
against float64) would not describe it. ``onnxruntime-gpu`` lists the CUDA provider as available
even where CUDA libraries are missing, so availability is judged from a real session.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelportError, UnsupportedError

DEVICES = ("auto", "cpu", "cuda")
CUDA_OPTIONS = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}


@dataclass
class Session:
    """An onnxruntime InferenceSession and the execution provider that really runs it."""

    session: Any
    provider: str  # the provider that actually runs: CUDAExecutionProvider | CPUExecutionProvider
    tf32: bool = False

    @property
    def input_names(self) -> list[str]:
        """The session's input names, in order."""
        return [i.name for i in self.session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        """The session's output names, in order."""
        return [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
            ) -> list[np.ndarray]:
        """The outputs named ``outputs`` (default: all) for ``feeds``; an onnxruntime failure is a
        ModelportError with its first line."""
        try:
            return list(self.session.run(outputs, feeds))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelportError(f"onnxruntime failed to run the model: "
                                 f"{str(e).splitlines()[0][:300]}") from None


def _ort():
    os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    return onnxruntime


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """Whether a CUDA session can really be created here (not just listed)."""
    ort = _ort()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    # Where CUDA libraries are missing onnxruntime logs an error while falling back; the probe
    # expects that, so it is silenced here and the answer is the provider that really runs.
    ort.set_default_logger_severity(4)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        s = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                 providers=[("CUDAExecutionProvider", CUDA_OPTIONS)])
    except Exception:  # noqa: BLE001 - any failure to start CUDA means it is not usable
        return False
    finally:
        ort.set_default_logger_severity(3)
    del onnx
    return s.get_providers()[0] == "CUDAExecutionProvider"


def session(model: bytes | str | os.PathLike, *, device: str = "auto") -> Session:
    """A session on ``device``: ``cuda`` fails clearly if CUDA cannot run; ``auto`` prefers it."""
    if device not in DEVICES:
        raise UnsupportedError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    ort = _ort()
    options = ort.SessionOptions()
    # a kernel that fails logs its error before raising it; run() reports it once, in one line
    options.log_severity_level = 4
    # Prepacking copies every MatMul/Gemm weight into a second, kernel-friendly layout: a
    # parity check runs a batch or two, so the copy buys nothing and doubles the weights in
    # memory (a 2.1 GB model: 4.1 GB peak with it, 2.1 GB without).
    options.add_session_config_entry("session.disable_prepacking", "1")
    want_cuda = device == "cuda" or (device == "auto" and cuda_usable())
    providers: list = ["CPUExecutionProvider"]
    if want_cuda:
        providers = [("CUDAExecutionProvider", CUDA_OPTIONS), "CPUExecutionProvider"]
    source = model if isinstance(model, bytes) else os.fspath(model)
    if want_cuda:
        ort.set_default_logger_severity(4)  # a failed CUDA load is reported below, in one line
    try:
        s = ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime's load errors share no useful base
        raise ModelportError(f"onnxruntime cannot load the model: "
                             f"{str(e).splitlines()[0][:300]}") from None
    finally:
        ort.set_default_logger_severity(3)
    used = s.get_providers()[0]
    if device == "cuda" and used != "CUDAExecutionProvider":
        raise UnsupportedError("--device cuda was requested but onnxruntime's CUDA provider "
                               "cannot run here (no GPU, or CUDA/cuDNN libraries missing)",
                               hint="use --device auto or cpu")
    return Session(s, used, tf32=False)
