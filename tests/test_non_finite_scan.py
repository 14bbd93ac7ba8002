"""A conversion scans its source for NaN/Inf on a worker thread while it works: the same
warnings as ``load`` gives, once each, before ``convert`` returns."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

import modelport
from modelport.formats import checks
from tests.conftest import FIXTURES
from tests.hostile import make_hostile


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "NaN" in r.getMessage()]


@pytest.mark.parametrize("make,suffix", [(make_hostile.h5_nan_weights, ".onnx"),
                                         (make_hostile.h5_nan_weights, "_tfjs"),
                                         (make_hostile.onnx_nan_weights, "_graph")])
def test_convert_warns_once_as_load_does(tmp_path, caplog, make, suffix):
    src = make(tmp_path)
    with caplog.at_level(logging.WARNING):
        modelport.load(src)
    loaded = _warnings(caplog)
    assert loaded
    caplog.clear()
    threads = []
    real = checks.BackgroundScan._run

    def run(self):
        threads.append(threading.current_thread())
        real(self)

    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as mp:
        mp.setattr(checks.BackgroundScan, "_run", run)
        dst = tmp_path / f"out{suffix}"
        modelport.convert(src, dst, to="tfjs-graph" if suffix == "_graph" else None,
                          validate=False)
    assert _warnings(caplog) == loaded  # the same words, once, and not from the reader too
    assert threads and threads[0] is not threading.main_thread()
    assert not threads[0].is_alive()  # finished before convert returned


def test_background_scan_lets_each_array_go_and_reports_errors():
    arrays = [("a", np.array([1.0, np.nan], np.float32)), ("b", np.ones(3, np.float32)),
              ("c", np.array([np.inf, -np.inf], np.float64))]
    scan = checks.BackgroundScan(arrays, file="m.h5")
    assert scan.result() == [("a", 1, 0), ("c", 0, 2)]
    assert scan._todo == []

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("unreadable")

    scan = checks.BackgroundScan([("x", Broken())], file="m.h5")
    with pytest.raises(RuntimeError, match="unreadable"):
        scan.result()


def test_load_still_scans_by_default(tmp_path, caplog):
    src = FIXTURES / "keras2" / "advanced_activations.h5"
    with caplog.at_level(logging.WARNING):
        modelport.load(src)
    assert _warnings(caplog) == []  # a clean model: nothing to say
    nan = make_hostile.h5_nan_weights(tmp_path)
    with caplog.at_level(logging.WARNING):
        modelport.load(nan, scan_values=False)
    assert _warnings(caplog) == []  # left to the caller
    with caplog.at_level(logging.WARNING):
        modelport.load(nan)
    assert len(_warnings(caplog)) == 1 and "1 NaN and 1 Inf" in _warnings(caplog)[0]


@pytest.mark.parametrize("to", [None, "tfjs-graph"])
def test_external_data_is_loaded_on_the_converting_thread_only(tmp_path, monkeypatch, to):
    """An external-data tensor maps its file on first use, once (onnx_ir asserts it): the scan
    thread must never be the one to load it, or it races the conversion doing the same (a
    3 GB model failed so, now and then, before the scan got arrays)."""
    import onnx_ir as ir

    from modelport.formats import onnx as onnx_format
    from tests.test_large_models import _small_model

    model, _ = _small_model()
    src = onnx_format.write(model, tmp_path / "m.onnx", external=True)
    loads = []
    real = ir.ExternalTensor._load

    def load(self):
        loads.append(threading.current_thread())
        return real(self)

    monkeypatch.setattr(ir.ExternalTensor, "_load", load)
    dst = tmp_path / ("out.onnx" if to is None else "out_graph")
    modelport.convert(src, dst, to=to, validate=False)
    assert loads and all(t is threading.main_thread() for t in loads), loads


def test_a_cancelled_scan_stops_after_the_weight_in_hand(monkeypatch):
    started, go, seen = threading.Event(), threading.Event(), []
    real = checks.count_non_finite

    def slow(array):
        seen.append(array.size)
        started.set()
        go.wait(5)
        return real(array)

    monkeypatch.setattr(checks, "count_non_finite", slow)
    scan = checks.BackgroundScan([(f"w{i}", np.ones(i + 1, np.float32)) for i in range(50)],
                                 file="m.h5")
    assert started.wait(5)
    scan.cancel()
    go.set()
    assert scan.result() == [] and seen == [1] and scan._todo == []


def test_a_failed_conversion_cancels_its_scan(tmp_path, monkeypatch):
    from modelport.api import core

    made = []
    real = checks.BackgroundScan

    def record(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    def fail(*args, **kwargs):
        raise RuntimeError("conversion broke")

    monkeypatch.setattr(core, "BackgroundScan", record)
    monkeypatch.setattr(core, "_run", fail)
    with pytest.raises(RuntimeError, match="conversion broke"):
        modelport.convert(FIXTURES / "keras2" / "advanced_activations.h5", tmp_path / "o.onnx")
    assert made and made[0]._cancelled.is_set() and not made[0]._thread.is_alive()
