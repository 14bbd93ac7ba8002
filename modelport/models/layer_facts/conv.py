"""Convolutions: plain, transposed, depthwise and separable, in 1 to 3 spatial dimensions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .base import TensorSpec, TfjsRule, declarer
from .helpers import bias, channels, ints, kernel_dims, leaf, per_axis, window

declare = declarer(__name__)


def _conv_window(cfg: dict, n: int) -> Callable[[int, int], int]:
    return window(cfg, ints(cfg["kernel_size"], n), ints(cfg.get("strides", 1), n),
                  ints(cfg.get("dilation_rate", 1), n))


def conv_shape(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    """Output spec of an ``n``-D convolution (also one step of a ConvLSTM)."""
    # groups splits the channels but never changes the output's: filters is the output width.
    return per_axis(cfg, inputs, n, _conv_window(cfg, n), lambda c: int(cfg["filters"]))


def _depthwise_conv(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    multiplier = int(cfg.get("depth_multiplier", 1))
    return per_axis(cfg, inputs, n, _conv_window(cfg, n),
                    lambda c: None if c is None else c * multiplier)


def _conv_transpose(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    s, d = ints(cfg.get("strides", 1), n), ints(cfg.get("dilation_rate", 1), n)
    k = [(ki - 1) * di + 1 for ki, di in zip(ints(cfg["kernel_size"], n), d)]
    pads = None if cfg.get("output_padding") is None else ints(cfg["output_padding"], n)
    same = str(cfg.get("padding", "valid")).lower() == "same"

    def size(x: int, i: int) -> int:
        # Keras's deconv length; "same" with output_padding uses k % 2 (not k - 1 - 2 (k // 2)).
        if same:
            return x * s[i] if pads is None else (x - 1) * s[i] + k[i] % 2 + pads[i]
        return (x - 1) * s[i] + k[i] + (max(k[i], s[i]) - k[i] if pads is None else pads[i])
    return per_axis(cfg, inputs, n, size, lambda c: int(cfg["filters"]))


# --- variable shapes ----------------------------------------------------------------------------

def _conv_variables(config: dict, spec: TensorSpec, rank: int) -> dict[str, tuple]:
    filters, groups = int(config["filters"]), int(config.get("groups", 1) or 1)
    ch = channels(config, spec)
    per_group = ch // groups if ch is not None else None
    return {"kernel": kernel_dims(config["kernel_size"], rank) + (per_group, filters),
            "bias": (filters,)}


def _conv_transpose_variables(config: dict, spec: TensorSpec, rank: int) -> dict[str, tuple]:
    filters = int(config["filters"])
    return {"kernel": kernel_dims(config["kernel_size"], rank) + (filters, channels(config, spec)),
            "bias": (filters,)}


def _depthwise_variables(config: dict, spec: TensorSpec, rank: int) -> dict[str, tuple]:
    multiplier, ch = int(config.get("depth_multiplier", 1)), channels(config, spec)
    kernel = kernel_dims(config["kernel_size"], rank) + (ch, multiplier)
    # Keras 3 names the depthwise kernel "kernel", Keras 2 "depthwise_kernel"
    return {"depthwise_kernel": kernel, "kernel": kernel,
            "bias": (ch * multiplier if ch is not None else None,)}


def _separable_variables(config: dict, spec: TensorSpec, rank: int) -> dict[str, tuple]:
    multiplier, ch = int(config.get("depth_multiplier", 1)), channels(config, spec)
    filters = int(config["filters"])
    mid = ch * multiplier if ch is not None else None
    return {"depthwise_kernel": kernel_dims(config["kernel_size"], rank) + (ch, multiplier),
            "pointwise_kernel": (1,) * rank + (mid, filters), "bias": (filters,)}


# --- what tfjs-layers and Keras 2 make of them --------------------------------------------------

_GROUPED = TfjsRule(lambda c: c.get("groups", 1) not in (1, None),
                    "tfjs-layers has no grouped convolutions")
_CAUSAL = TfjsRule(lambda c: c.get("padding") == "causal",
                   "tfjs-layers 4.22 rejects Conv1D(padding='causal') (modelport rewrites it "
                   "exactly where the number of steps is static and the data channels_last)")
_TRANSPOSED = (
    _GROUPED,
    TfjsRule(lambda c: c.get("output_padding") is not None, "tfjs-layers ignores output_padding"),
    TfjsRule(lambda c: any(d != 1 for d in _tuple(c.get("dilation_rate", 1))),
             "tfjs-layers has no dilated transposed convolutions"))
# Keras 2 writes groups on every convolution; Keras 3 has it on plain ones only.
_NO_GROUPS = {"groups": 1}
# Keras 2 writes a separable convolution's unused kernel_* settings; Keras 3 and TF.js reject them.
_SEPARABLE_KERAS2 = {**_NO_GROUPS, "kernel_initializer": None, "kernel_regularizer": None,
                     "kernel_constraint": None}


def _tuple(value: object) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _kernel_and_bias(c: dict) -> list[str]:
    return ["kernel"] + bias(c)


def _conv_class(name: str, n: int, *, tfjs: bool, tfjs_blockers: tuple = ()) -> None:
    declare(name, shape=partial(conv_shape, n=n), variables=leaf(_kernel_and_bias),
            variable_shapes=partial(_conv_variables, rank=n), tfjs=tfjs,
            tfjs_blockers=tfjs_blockers)


def _transpose_class(name: str, n: int, *, tfjs: bool, tfjs_blockers: tuple = ()) -> None:
    declare(name, shape=partial(_conv_transpose, n=n), variables=leaf(_kernel_and_bias),
            variable_shapes=partial(_conv_transpose_variables, rank=n), tfjs=tfjs,
            tfjs_blockers=tfjs_blockers, keras2_only=_NO_GROUPS)


def _depthwise_class(name: str, n: int, *, tfjs: bool, tfjs_blockers: tuple = ()) -> None:
    declare(name, shape=partial(_depthwise_conv, n=n),
            variables=leaf(lambda c: ["depthwise_kernel"] + bias(c)),
            variable_shapes=partial(_depthwise_variables, rank=n), tfjs=tfjs,
            tfjs_blockers=tfjs_blockers, keras2_only=_NO_GROUPS)


def _separable_class(name: str, n: int, *, tfjs: bool, tfjs_blockers: tuple = ()) -> None:
    declare(name, shape=partial(conv_shape, n=n),
            variables=leaf(lambda c: ["depthwise_kernel", "pointwise_kernel"] + bias(c)),
            variable_shapes=partial(_separable_variables, rank=n), tfjs=tfjs,
            tfjs_blockers=tfjs_blockers, keras2_only=_SEPARABLE_KERAS2)


_conv_class("Conv1D", 1, tfjs=True, tfjs_blockers=(_CAUSAL, _GROUPED))
_conv_class("Conv2D", 2, tfjs=True, tfjs_blockers=(_GROUPED,))
_conv_class("Conv3D", 3, tfjs=True, tfjs_blockers=(_GROUPED,))
_transpose_class("Conv1DTranspose", 1, tfjs=False)
_transpose_class("Conv2DTranspose", 2, tfjs=True, tfjs_blockers=_TRANSPOSED)
_transpose_class("Conv3DTranspose", 3, tfjs=True, tfjs_blockers=_TRANSPOSED)
_depthwise_class("DepthwiseConv1D", 1, tfjs=False)
_depthwise_class("DepthwiseConv2D", 2, tfjs=True, tfjs_blockers=(_GROUPED,))
_separable_class("SeparableConv1D", 1, tfjs=False)
_separable_class("SeparableConv2D", 2, tfjs=True, tfjs_blockers=(_GROUPED,))
