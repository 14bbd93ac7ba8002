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
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EngineRunError, UnsupportedError

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
        # a 0-d input may come as a NumPy scalar, which onnxruntime refuses ("Unable to
        # handle object of type numpy.float32"): it is the same array
        feeds = {name: np.asarray(a) for name, a in feeds.items()}
        try:
            return list(self.session.run(outputs, feeds))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            # exit 4, documented: the model cannot run here (a kernel's own check, an arena
            # that cannot grow), which says nothing of the conversion
            raise EngineRunError(f"onnxruntime failed to run the model: {reason(e)}",
                                 hint="--no-validate writes the result without the "
                                      "check") from None


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
        try:
            s = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime's load errors share no useful base
            lowered = _at_supported_ir(model, reason(e), options)
            if lowered is None:
                raise _load_error(ort, e) from None
            try:
                s = ort.InferenceSession(lowered, sess_options=options, providers=providers)
            except Exception as again:  # noqa: BLE001 - as above
                raise _load_error(ort, again) from None
    finally:
        ort.set_default_logger_severity(3)
    used = s.get_providers()[0]
    if device == "cuda" and used != "CUDAExecutionProvider":
        raise UnsupportedError("--device cuda was requested but onnxruntime's CUDA provider "
                               "cannot run here (no GPU, or CUDA/cuDNN libraries missing)",
                               hint="use --device auto or cpu")
    return Session(s, used, tf32=False)


_SOURCE_LOCATION = re.compile(r"\s*/\S+\.(?:cc|cpp|h):\d+\s+(?:[\w:~<>]+\([^()]*\)\s*)?")
_STATUS = re.compile(r"^\[ONNXRuntimeError\] : \d+ : (\w+) : ")
MAX_REASON = 2000  # characters of onnxruntime's message kept (all of it, in practice)


def reason(e: BaseException) -> str:
    """onnxruntime's message in full, on one line, without the C++ source location and
    function signature it carries (which pushed the reason itself out of a cut-off line)."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    text = _STATUS.sub(r"\1: ", text)
    text = _SOURCE_LOCATION.sub(" ", text).strip()
    return text[:MAX_REASON] or type(e).__name__


def _load_error(ort, e: BaseException) -> UnsupportedError:
    return UnsupportedError(
        f"onnxruntime {ort.__version__} cannot load the model: {reason(e)}",
        hint="the check runs ONNX models in onnxruntime; --no-validate writes the result "
             "without it")


_IR_REFUSED = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")


def _at_supported_ir(model: bytes | str | os.PathLike, why: str, options: Any) -> bytes | None:
    """The model re-stamped with the newest IR version onnxruntime reads, when that is the one
    thing it refused and the model's opsets belong to that IR version (onnx >= 1.23 writes IR
    14 by default for any opset, which onnxruntime 1.31 refuses; the file is the same model).
    None where lowering cannot help. A model with external data reads it from its own folder."""
    found = _IR_REFUSED.search(why)
    if found is None:
        return None
    import onnx

    from ..models.onnx_model import ir_version_for

    supported = int(found.group(2))
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else \
            onnx.load(os.fspath(model), load_external_data=False)
        opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                    default=1)
        if ir_version_for(opset) > supported:
            return None
    except Exception:  # noqa: BLE001 - unreadable or an unknown opset: the load error stands
        return None
    proto.ir_version = supported
    try:
        data = proto.SerializeToString()
    except Exception:  # noqa: BLE001 - over protobuf's 2 GB in one message: the load error stands
        return None
    if not isinstance(model, bytes):
        # tensors in an external data file are found next to the model, not in the cwd
        options.add_session_config_entry(
            "session.model_external_initializers_file_folder_path",
            os.path.dirname(os.path.abspath(os.fspath(model))))
    return data
