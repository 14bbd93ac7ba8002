"""Record the outputs of wild-corpus ``.h5`` files that Keras 3 cannot load, in the framework
that wrote them (tf_keras, Keras 2), so the harness still compares against the source's own
framework. Run once in a side environment with tensorflow and tf_keras (never a test
dependency); the small ``reference/<id>.npz`` files it writes are committed.

    TF_USE_LEGACY_KERAS=1 /path/to/tf-env/bin/python tests/wild/make_reference.py

Each file holds ``input:<name>`` (seeded, valid for the model: integer token ids below an
Embedding's ``input_dim``, else uniform [0, 1)) and ``output:<i>``, 4 rows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fetch  # noqa: E402

NEEDS_KERAS2 = ["ethnicolr-census2010-ln", "ethnicolr-wiki-name"]


def main() -> int:
    """Write reference/<id>.npz for each model Keras 3 cannot load."""
    import tf_keras

    corpus = {m["id"]: m for m in fetch.load_corpus()["models"]}
    rng = np.random.default_rng(0)
    for mid in NEEDS_KERAS2:
        model = tf_keras.models.load_model(str(fetch.model_entry(corpus[mid])), compile=False)
        first = model.layers[1] if len(model.layers) > 1 else None
        arrays = {}
        for t in model.inputs:
            shape = [4 if d is None else d for d in t.shape]
            if first is not None and hasattr(first, "input_dim"):
                arrays[t.name.split(":")[0]] = rng.integers(
                    0, first.input_dim, size=shape).astype(np.float32)
            else:
                arrays[t.name.split(":")[0]] = rng.uniform(0, 1, size=shape).astype(np.float32)
        outs = model.predict(list(arrays.values()), verbose=0)
        outs = outs if isinstance(outs, list) else [outs]
        np.savez(HERE / "reference" / f"{mid}.npz",
                 **{f"input:{k}": v for k, v in arrays.items()},
                 **{f"output:{i}": np.asarray(o) for i, o in enumerate(outs)})
        print(mid, {k: v.shape for k, v in arrays.items()}, [o.shape for o in outs],
              f"tf_keras {tf_keras.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
