"""TF.js files modelport ships for users' pages and Node scripts.

``modelport_layers.js`` registers the TF.js twins of ``modelport.keras_layers`` (layers that
modelport writes where tfjs-layers has none); ``LAYERS_JS`` is its path, to copy next to a
converted model.
"""

from pathlib import Path

LAYERS_JS = Path(__file__).with_name("modelport_layers.js")
