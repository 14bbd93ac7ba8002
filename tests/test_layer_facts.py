"""Every table keyed by Keras layer class agrees with the facts declared for it, and every class
has its test rows.

A class's facts live in one place (``modelport/models/layer_facts/<family>.py``); its ONNX
lowering (``converters/keras_to_onnx/<family>.py``, ``LOWERINGS``) and its NumPy reference
(``runtime/keras_reference/<family>.py``, ``REGISTRY``) are registered with their routes. These
tests fail when one of them names a class the others lack, or when a class has no real-Keras
fixture (``fixtures/layers/cases.json``, made by ``fixtures/make_layer_cases.py``), so that a
half-added layer is found here rather than by a user. The per-table case checks live beside
their tables: ``test_keras_shapes``, ``test_weight_shapes``, ``test_keras_to_onnx``,
``test_keras_reference`` (``test_every_*_has_a_case``).
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

import modelport
from modelport.converters.keras_to_onnx import LOWERINGS, OPERATIONS
from modelport.models import keras_shapes
from modelport.models.layer_facts import FACTS, SHAPE_RULES, LayerFacts
from modelport.runtime.keras_reference import GRAPH_CLASSES, REGISTRY

from .conftest import ALL_CASES, FIXTURES

# Classes with a shape rule and no ONNX lowering, and why.
NOT_LOWERED = {
    "Lambda": "its computation is Python code stored in the file, which modelport never runs",
    "ConvLSTM1D": "no lowering yet; the NumPy reference computes it",
    "ConvLSTM3D": "no lowering yet; the NumPy reference computes it",
}
# Classes with a shape rule and no fixtures/layers case, and what tests them with real Keras.
NO_LAYER_FIXTURE = {
    "Lambda": "fixtures/keras2 and keras3 lambda_layer: refused by name on every route",
    "ConvLSTM1D": "built in Keras 3 by test_keras_shapes and test_keras_reference",
    "ConvLSTM3D": "built in Keras 3 by test_keras_shapes and test_keras_reference",
}
# Classes whose variables modelport reads and writes but which it does not compute.
VARIABLES_ONLY = {"LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTMCell", "EinsumDense"}


def _family(fn: object) -> str:
    """The module (family) a registered function or ``partial`` was defined in."""
    return str(getattr(fn, "func", fn).__module__).rsplit(".", 1)[-1]


def _layer_fixture_classes() -> set[str]:
    cases = json.loads((FIXTURES / "layers" / "cases.json").read_text())
    return {entry["class"] for entry in cases.values()}


def test_every_class_with_facts_has_its_rules():
    incomplete = {name: facts for name, facts in FACTS.items()
                  if facts.variables is None or (facts.shape is None) != (name in VARIABLES_ONLY)}
    assert not incomplete, ("a class needs a shape rule and its variables (variables only: "
                            f"list it in VARIABLES_ONLY): {sorted(incomplete)}")
    assert not VARIABLES_ONLY - set(FACTS), sorted(VARIABLES_ONLY - set(FACTS))


def test_every_lowering_has_facts():
    missing = [name for name in LOWERINGS if name not in SHAPE_RULES]
    assert not missing, f"lowered classes without facts (models/layer_facts/): {missing}"


def test_every_keras_operation_lowering_has_a_shape_rule():
    missing = [name for name in OPERATIONS if name not in keras_shapes.OPERATIONS]
    assert not missing, f"lowered keras.ops operations without a shape rule: {missing}"


def test_every_reference_class_has_facts():
    missing = [name for name in REGISTRY
               if name not in SHAPE_RULES and name not in keras_shapes.OPERATIONS]
    assert not missing, f"classes the reference computes without facts: {missing}"


def test_every_class_with_facts_has_a_reference():
    missing = sorted(set(SHAPE_RULES) - set(REGISTRY) - GRAPH_CLASSES)
    assert not missing, f"classes with facts the NumPy reference cannot compute: {missing}"


def test_every_class_with_facts_is_lowered_or_says_why_not():
    unlowered = set(SHAPE_RULES) - set(LOWERINGS)
    assert sorted(unlowered - set(NOT_LOWERED)) == [], "lower them, or say why in NOT_LOWERED"
    assert sorted(set(NOT_LOWERED) - unlowered) == [], "lowered now: take them off NOT_LOWERED"


def test_facts_lowering_and_reference_of_a_class_are_one_family():
    differ = {}
    for name in SHAPE_RULES:
        families = {"facts": FACTS[name].family}
        if name in LOWERINGS:
            families["lowering"] = _family(LOWERINGS[name])
        if name in REGISTRY:
            families["reference"] = _family(REGISTRY[name])
        if len(set(families.values())) != 1:
            differ[name] = families
    assert not differ, f"each class's three modules share its family's name: {differ}"


def test_every_class_has_a_real_keras_fixture():
    fixtures = _layer_fixture_classes()
    without = set(SHAPE_RULES) - fixtures
    assert sorted(without - set(NO_LAYER_FIXTURE)) == [], \
        "add its rows to fixtures/make_layer_cases.py and run it (see CONTRIBUTING.md)"
    assert sorted(set(NO_LAYER_FIXTURE) - without) == [], "has a fixture: take it off the list"
    unknown = sorted(fixtures - set(SHAPE_RULES))
    assert not unknown, f"fixtures/layers cases of classes without facts: {unknown}"


def _keras2_facts(facts: LayerFacts) -> tuple:
    return (tuple(facts.keras2_names.items()), tuple(facts.keras2_only.items()),
            facts.from_keras2, facts.keras3_missing, facts.keras3_blockers)


@pytest.fixture(scope="module")
def keras2_classes() -> set[str]:
    """Classes (wrapped ones included) in the files Keras 2 and TF.js wrote."""
    found = set()
    for case in ALL_CASES:
        if case.generation not in ("keras2", "tfjs"):
            continue
        for layer in modelport.load(case.path).iter_layers():
            found.add(layer.class_name)
            for key in ("layer", "backward_layer"):
                inner = layer.config.get(key)
                if isinstance(inner, dict) and "class_name" in inner:
                    found.add(inner["class_name"])
    return found


def test_every_keras2_fact_is_seen_in_a_keras2_file(keras2_classes):
    """A Keras 2 dialect fact (renamed keys, Keras 2-only keys, classes Keras 3 lacks) is read
    from a file tf_keras or TF.js wrote, for at least one class that has it."""
    by_facts: dict[tuple, set[str]] = defaultdict(set)
    for name, facts in FACTS.items():
        key = _keras2_facts(facts)
        if any(key):
            by_facts[key].add(name)
    unseen = [sorted(names) for names in by_facts.values() if not names & keras2_classes]
    assert not unseen, f"Keras 2 facts no Keras 2 fixture exercises: {unseen}"
