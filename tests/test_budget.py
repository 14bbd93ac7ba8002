"""The memory budget (modelport/budget.py, issue 19): sized in bytes before the check
allocates, refused with exit 4 past it, raised with --max-memory / max_memory=."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import modelport
from modelport import budget
from modelport.check.validate import validate
from modelport.cli import main
from modelport.errors import UnsupportedError, UsageError

from .hostile import make_resource

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT / "fixtures" / "keras3" / "mlp_sequential.keras"


def test_sizes_parse():
    assert budget.parse_size("2G") == 2 << 30
    assert budget.parse_size("1.5GiB") == 3 << 29
    assert budget.parse_size("800M") == 800 << 20
    assert budget.parse_size("123456") == 123456
    with pytest.raises(UsageError):
        budget.parse_size("lots")


def test_default_grows_with_the_weights_and_the_user_sets_it():
    small, given = budget.budget(0)
    assert not given and small <= budget.DEFAULT_BYTES
    with budget.max_memory("3G"):
        assert budget.budget(0) == (3 << 30, True)
    assert budget.budget(0) == (small, False)


def test_cli_refuses_past_max_memory_and_says_so(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(KERAS), str(tmp_path / "m.onnx"), "-q",
                                       "--max-memory", "1k"])
    assert result.exit_code == 4, result.output
    assert "memory budget of 1 KiB" in result.output and "--max-memory set it" in result.output
    assert not (tmp_path / "m.onnx").exists()
    bad = CliRunner().invoke(main, ["convert", str(KERAS), str(tmp_path / "m.onnx"),
                                    "--max-memory", "lots"])
    assert bad.exit_code == 2


def test_library_max_memory(tmp_path):
    with pytest.raises(UnsupportedError, match="memory budget"):
        modelport.convert(KERAS, tmp_path / "m.onnx", max_memory=1024)
    assert not (tmp_path / "m.onnx").exists()
    modelport.convert(KERAS, tmp_path / "m.onnx", max_memory="1G")
    with pytest.raises(UnsupportedError, match="memory budget"):
        validate(KERAS, tmp_path / "m.onnx", max_memory=1024)
    assert validate(KERAS, tmp_path / "m.onnx", max_memory="1G").passed


def test_a_raised_budget_lets_a_large_output_be_checked(tmp_path):
    """[2**20] floats: within the default; refused under a 16 MB budget, which says how."""
    model = make_resource._expand(tmp_path, [1 << 20])
    assert validate(model, model).passed
    result = CliRunner().invoke(main, ["validate", str(model), str(model), "--max-memory",
                                       "16M"])
    assert result.exit_code == 4 and "memory budget of 16 MiB" in result.output, result.output


def test_data_propagation_only_where_bounded(tmp_path):
    import onnx

    small = onnx.load(make_resource._expand(tmp_path, [8, 8]))
    assert budget.data_prop_safe(small)
    (tmp_path / "big").mkdir()
    big = onnx.load(make_resource._expand(tmp_path / "big", [1 << 24], copies=4))
    assert not budget.data_prop_safe(big)
    found = list(budget.shape_op_results(big))
    assert len(found) == 4 and all(n == 1 << 24 for _, _, n, _ in found)
    budget.check_shape_ops(big)  # 4 x 64 MB (x2): within the default
    with budget.max_memory("100M"), \
            pytest.raises(UnsupportedError, match="Expand .* makes 16777216 elements"):
        budget.check_shape_ops(big)


def test_npz_declaring_more_than_it_holds_is_refused_before_loading(tmp_path):
    from modelport.errors import FormatError
    from modelport.runtime.engines import read_arrays

    make_resource.npz_huge_header(tmp_path)
    with pytest.raises(FormatError, match=r"declares shape \[268435456, 7\]"):
        read_arrays(tmp_path / "inputs.npz")
    ok = tmp_path / "ok.npz"
    np.savez_compressed(ok, x=np.arange(12, dtype=np.float32))
    assert read_arrays(ok)["x"].tolist() == list(range(12))
