"""``inspect``'s verdict per target: a dry run of ``convert``.

For each target the route is found as ``convert`` finds it, its steps run through the same code
(``core.plan``: lowering, op mapping, raising, with the same pinned shapes), and the target's
writer checks run on the result (the tfjs-layers and Keras config checks, the TF.js dtype
checks) — but nothing is written and nothing runs. Where the route has a parity check (and
``validate`` is on), the check's memory budget is sized as the check sizes it before it runs
(``check.validate.check_budget``: the same inputs, the same liveness sizing), so a route the
check would refuse (exit 4, naming --max-memory and --no-validate) is not "yes". So ``inspect``
says "yes" where ``convert`` writes a file and its check can start, and otherwise gives the error
``convert`` gives.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..check.options import CheckOptions
from ..errors import ModelportError
from ..formats import sniff
from ..formats.loading import load
from ..models import LayersModel, TfjsGraph
from . import core, routes
from .options import ConvertOptions, check_applies

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """One target's dry run: ``error`` is what ``convert`` would raise (None: it converts);
    ``through``: the format the route goes through, where it goes through one."""

    error: ModelportError | None
    through: str | None = None
    result: object = field(default=None, repr=False, compare=False)  # the model it would write

    @property
    def ok(self) -> bool:
        """Whether ``convert`` writes the target."""
        return self.error is None


def dry_run(path: str | os.PathLike[str], to: str, options: ConvertOptions | None = None
            ) -> Verdict:
    """What ``convert path x --to <to>`` does, without writing ``x`` or running a model: its
    steps and its writer's checks, and where ``options.validate`` (the default) and the route
    has a parity check, the check's memory budget on the inputs the check would choose (the
    budget in force: ``budget.max_memory``)."""
    options = options or ConvertOptions()
    validate = options.validate
    options = ConvertOptions(to=to, quantize=options.quantize, opset=options.opset,
                             inputs_layout=options.inputs_layout, validate=False,
                             input_shapes=options.input_shapes, batch=options.batch,
                             outputs=options.outputs, input_values=options.input_values)
    src = Path(path)
    through = None
    try:
        src_format = sniff.sniff(src)
        target = sniff.TARGETS[to]
        route = routes.find(src_format, target)
        through = _through(route)
        check_applies(route, src_format, options, CheckOptions())
        parity = route.checked(validate).parity
        route = route.checked(False)
        # each target gets its own copy: the steps may change the model they are given
        model = load(src, format=src_format, scan_values=False)
        job = core._Job(src, src.with_name(f"{src.stem}.dry-run"), options, CheckOptions(),
                        _quiet)
        planned = None
        if route.read_back and not route.steps:
            result = model
        else:
            # as convert: a graph-model source keeps its weights where the check runs it
            planned = core.plan(route, model, job,
                                release=not parity and route.source == routes.GRAPH)
            result = planned[0]
        _writable(result, target, options)
        if parity and planned is not None:
            shaped = planned[2]
            _check_budget(shaped.checked, result, shaped.job.check, planned[1])
    except ModelportError as e:
        e.with_file(src)
        return Verdict(e, through)
    except Exception as e:  # convert would end in exit 70: inspect says so
        log.debug("dry run of %s -> %s", src, to, exc_info=True)
        return Verdict(ModelportError(f"internal error ({type(e).__name__}: {e}); convert "
                                      "would fail the same way", file=src), through)
    return Verdict(None, through, result)


def _quiet(_: str) -> None:
    pass


def _check_budget(source: object, target: object, check: CheckOptions,
                  raised: object) -> None:
    """The parity check's memory budget on ``source`` and the model ``convert`` would write
    (``check.validate.check_budget``); its refusal is convert's. A failure of the sizing itself
    gives no verdict (the check sizes the same way and lets the run report)."""
    from ..check.validate import check_budget

    try:
        check_budget(source, target, check, raised)  # type: ignore[arg-type]
    except ModelportError:
        raise
    except Exception:  # no sizing, no refusal: convert would go on and run it
        log.debug("sizing the check's budget", exc_info=True)


def _through(route: routes.Route) -> str | None:
    """The intermediate format of a route that goes through one (Keras -> graph-model: ONNX)."""
    steps = route.steps
    if len(steps) > 1 and steps[0] in (routes.Step.LOWER, routes.Step.TF_TO_ONNX):
        return "ONNX"
    return None


def _writable(model: object, target: str, options: ConvertOptions) -> None:
    """The checks ``target``'s writer makes before it writes (``formats``), on ``model``."""
    if isinstance(model, TfjsGraph):
        from ..formats import tfjs_graph

        tfjs_graph.check_writable(model)
        return
    if not isinstance(model, LayersModel):
        return  # ONNX: onnx.write checks the graph as it writes it
    from ..models import keras_dialect

    if target == sniff.TFJS_LAYERS:
        from ..formats import tfjs_layers

        tfjs_layers.check_writable_all(model, options.rules)
    elif target == sniff.KERAS_H5:
        from ..formats import keras_h5

        keras_h5.checked_config(model)
    elif target == sniff.KERAS_V3:
        from ..formats import keras_v3

        keras_dialect.model_to_config(model, keras_dialect.KERAS3, modules=True)
        keras_v3.check_writable(model)
