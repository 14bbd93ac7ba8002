"""Which fixtures a target refuses, and why: data, so that a new refusal fails loudly.

Keys are (fixture name, generation or "*"); values are a substring of the reason modelport must
give. Every (fixture, target) pair not listed here must convert.
"""

TFJS_REFUSED = {
    ("gru_reset_after", "*"): "reset_after=True",
    ("lambda_layer", "*"): "no Lambda layer",
}

KERAS3_REFUSED = {
    ("hard_sigmoid", "keras2"): "Keras 2's hard_sigmoid",
    ("thresholded_relu", "keras2"): "no ThresholdedReLU",
    ("lambda_layer", "keras2"): "bytecode",
    ("tfjs_gru_hard_sigmoid", "tfjs"): "Keras 2's hard_sigmoid",
}


def refusal(table: dict, case) -> str | None:
    return table.get((case.name, case.generation)) or table.get((case.name, "*"))

