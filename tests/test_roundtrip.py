"""Lossless routes: every fixture through every format and back keeps structure and weight bits."""

from __future__ import annotations

import pytest

import modelport
from modelport.check.readback import compare
from modelport.models import tfjs_support

from .conftest import ALL_CASES
from .expectations import KERAS3_REFUSED, TFJS_REFUSED, refusal

# (route name, target sequence, which sources): each hop writes, then reads back.
ROUTES = {
    "h5>tfjs>h5": (["tfjs", "x.h5"], "h5"),
    "keras>tfjs>keras": (["tfjs", "x.keras"], "keras"),
    "h5>keras>h5": (["x.keras", "x.h5"], "h5"),
    "keras>h5>keras": (["x.h5", "x.keras"], "keras"),
    "tfjs>h5>tfjs": (["x.h5", "tfjs"], "tfjs"),
    "tfjs>keras>tfjs": (["x.keras", "tfjs"], "tfjs"),
}


def _params():
    out = []
    for route, (hops, kind) in ROUTES.items():
        for case in ALL_CASES:
            if case.kind == kind:
                out.append(pytest.param(case, hops, id=f"{route}:{case.id}"))
    return out


def _refused(case, hops):
    for hop in hops:
        table = TFJS_REFUSED if hop == "tfjs" else KERAS3_REFUSED
        reason = refusal(table, case)
        if reason:
            return reason
    return None


@pytest.mark.parametrize("case,hops", _params())
def test_round_trip_is_lossless(case, hops, tmp_path):
    original = modelport.load(case.path)
    current = original
    reason = _refused(case, hops)
    if reason:
        with pytest.raises(modelport.UnsupportedError, match=reason.replace("(", r"\(")
                           .replace(")", r"\)").replace("+", r"\+").replace("*", r"\*")):
            for i, hop in enumerate(hops):
                current = modelport.load(modelport.save(current, tmp_path / f"{i}{hop}"))
        return
    for i, hop in enumerate(hops):
        written = modelport.save(current, tmp_path / f"{i}{hop}")
        current = modelport.load(written)
        if hop == "tfjs":
            # The equivalent rewrites tfjs needs (tfjs_support.prepare) are part of the expected
            # result; test_tfjs_layers proves each one computes the same numbers in real tfjs.
            original = tfjs_support.prepare(original)
        check = compare(original, current)
        assert check.first_difference is None, f"after {hop}: {check.first_difference}"
        assert check.weights_compared == sum(1 for _ in original.all_weights())
        assert check.weights_differing == 0
