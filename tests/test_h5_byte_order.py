"""HDF5 keeps the byte order its writer used; a big-endian ``.h5`` (written on a big-endian
machine, or by a tool that chose it) is read into the machine's own order, so every route
takes it. Made from a real Keras file with each weight rewritten big-endian by h5py."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort

from modelport import api
from modelport.models import LayersModel

from .conftest import FIXTURES, assert_close


def _big_endian_copy(tmp_path):
    import h5py

    path = tmp_path / "big.h5"
    shutil.copyfile(FIXTURES / "keras3" / "cnn_bn_pool.h5", path)
    with h5py.File(path, "a") as f:
        names: list[str] = []
        f["model_weights"].visititems(
            lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            group = f["model_weights"]
            values = group[name][()]
            del group[name]
            group.create_dataset(name, data=values.astype(values.dtype.newbyteorder(">")))
        assert all(group[n].dtype.byteorder == ">" for n in names)
    return path


def test_big_endian_weights_are_read_in_native_order_and_convert(tmp_path):
    path = _big_endian_copy(tmp_path)
    model: LayersModel = api.load(path)
    original = api.load(FIXTURES / "keras3" / "cnn_bn_pool.h5")
    for (_, got), (_, want) in zip(sorted(_weights(model)), sorted(_weights(original))):
        assert got.dtype.isnative and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    report = api.convert(path, tmp_path / "m.onnx")
    assert report.parity.passed, report.parity
    data = np.load(FIXTURES / "keras3" / "cnn_bn_pool.npz")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    (y,) = session.run(None, {session.get_inputs()[0].name: data["input:input_layer_2"]})
    assert_close(y, data["output:dense_5"], what="big-endian .h5 -> .onnx vs Keras")


def _weights(model: LayersModel):
    return [(f"{layer.name}/{w.path}", np.asarray(w.array))
            for layer in model.iter_layers() for w in layer.weights]
