"""Real @tensorflow/tfjs under Node, for the tests (the runners ship in modelport)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport.runtime import tfjs_node
from modelport.runtime.tfjs_node import TfjsError, available  # noqa: F401


def run_layers_model(model_json: Path, inputs: list[tuple[str, np.ndarray]],
                     timeout: float = 120) -> dict:
    return tfjs_node.run_layers(model_json, inputs, timeout)


def run_graph_model(model_json: Path, inputs: list[tuple[str, np.ndarray]], outputs: list[str],
                    timeout: float = 300) -> list[np.ndarray]:
    return tfjs_node.run_graph(model_json, inputs, outputs, timeout)
