"""The parity check, measured by mutation (issue 17, point 8).

Faithful conversions of fixtures made by real Keras (Keras -> ONNX; that ONNX -> TF.js
graph-model; Keras -> TF.js layers-model; the ONNX raised back to ``.h5``) must pass
``modelport.validate``; each of their mutants (tests/mutants.py: a weight x 1.01, a sign flip,
swapped channels, a dropped bias, a transposed kernel, an off-by-one padding) whose output moves
by more than 1e-5 of the output's RMS on the inputs Keras recorded must fail it. The score per
mutation kind (caught / effective) is printed after the module and written to
``mutation_score.json`` in pytest's base temporary folder. ``bench/mutation.py`` is the long run
(every fixture, more mutants).
"""

from __future__ import annotations

import json

import pytest

import modelport

from . import mutants
from .conftest import FIXTURES

CAP = 4  # mutants per kind, model and route
ALL = mutants.ROUTES
# (fixture, routes): conv/BN/pooling, Dense stacks with every activation, depthwise and
# separable convs, zero padding, recurrent layers, an embedding, normalization, nested and
# shared models, several inputs and outputs, a real architecture.
CASES = [
    ("keras3/cnn_bn_pool.h5", ALL),
    ("keras3/mlp_sequential.h5", ALL),
    ("keras3/advanced_activations.h5", ("onnx", "tfjs-graph")),
    ("keras2/mlp_activations.h5", ("onnx", "h5")),
    ("keras2/separable_depthwise.h5", ("onnx", "tfjs-graph")),
    ("keras3/upsampling_padding.h5", ("onnx", "h5")),
    ("keras3/recurrent.h5", ("onnx", "tfjs-layers")),
    ("keras2/gru_reset_after.h5", ("onnx",)),
    ("keras3/embedding_conv1d.h5", ("onnx", "tfjs-layers")),
    ("keras3/layernorm.h5", ("onnx",)),
    ("keras2/nested_shared.h5", ("onnx",)),
    ("keras2/multi_io.h5", ("onnx",)),
    ("keras2/conv1d_causal.h5", ("onnx",)),
    ("keras3/chunked_attributes.h5", ("onnx",)),
    ("applications/MobileNetV2.keras", ("onnx",)),
]
# the same real architecture on the other routes: about 20 s more
SLOW_CASES = [("applications/MobileNetV2.keras", ("tfjs-graph", "tfjs-layers", "h5"))]


def _params(cases, *marks):
    return [pytest.param(fixture, route, id=f"{fixture.rsplit('.', 1)[0]}-{route}",
                         marks=marks)
            for fixture, routes in cases for route in routes]


PARAMS = _params(CASES) + _params(SLOW_CASES, pytest.mark.slow)
OUTCOMES: list[mutants.Outcome] = []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("mutation")


@pytest.fixture(scope="module", autouse=True)
def mutation_score(request, tmp_path_factory):
    """After the module: the score per kind and per route, printed past pytest's capture and
    written to mutation_score.json."""
    yield
    if not OUTCOMES:
        return
    text = (f"\nmutation score of the parity check (caught / effective, {CAP} per kind):\n"
            f"{mutants.table(OUTCOMES)}\n\n"
            f"{mutants.table(OUTCOMES, key=lambda o: o.route, title='route')}\n")
    path = tmp_path_factory.getbasetemp() / "mutation_score.json"
    path.write_text(json.dumps({"per_kind": mutants.scores(OUTCOMES),
                                "per_route": mutants.scores(OUTCOMES, lambda o: o.route)},
                               indent=1))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(text + f"(written to {path})")


def _faithful(fixture: str, route: str, workdir):
    return mutants.faithful(route, FIXTURES / fixture,
                            workdir / fixture.replace("/", "_").replace(".", "_"))


@pytest.mark.parametrize(("fixture", "route"), PARAMS)
def test_faithful_conversion_passes(fixture, route, workdir):
    source, result = _faithful(fixture, route, workdir)
    report = modelport.validate(source, result)
    assert report.passed, [o for o in report.outputs if not o.passed]


@pytest.mark.parametrize(("fixture", "route"), PARAMS)
def test_effective_mutants_fail_the_check(fixture, route, workdir):
    source, result = _faithful(fixture, route, workdir)
    npz = (FIXTURES / fixture).with_suffix(".npz")
    outcomes = mutants.measure(fixture, route, source, result, mutants.recorded_inputs(npz),
                               workdir / f"mutants-{fixture.replace('/', '_')}-{route}",
                               cap=CAP)
    OUTCOMES.extend(outcomes)
    assert any(o.effective for o in outcomes), "no effective mutant: this case measures nothing"
    escaped = [o for o in outcomes if o.effective and not o.caught]
    assert not escaped, "effective mutants the check passed:\n" + "\n".join(
        f"  {o.mutant.label}: moves the output by {o.moved:.1e} of its RMS on the recorded "
        f"inputs" + (f" [{o.error}]" if o.error else "") for o in escaped)
