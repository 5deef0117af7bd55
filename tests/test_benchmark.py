"""training_benchmark and inference_benchmark: numbers and files, not speed."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

# Runs the train module with TensorFlow made unimportable, as on the JAX-only GPU machines.
_WITHOUT_TENSORFLOW = """
import importlib.abc, runpy, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["unet_industrial.train", *sys.argv[1:]]
try:
    runpy.run_module("unet_industrial.train", run_name="__main__", alter_sys=True)
finally:
    assert "tensorflow" not in sys.modules, "tensorflow was imported"
"""


def _benchmark(tmp_path, mode, *extra, backend="tensorflow", block_tensorflow=False):
    run_dir = tmp_path / mode
    args = [f"--exec_mode={mode}", "--input_size=32", "--batch_size=2", "--num_iter=5", "--warmup_step=2",
            f"--run_dir={run_dir}", *extra]
    command = [sys.executable, "-c", _WITHOUT_TENSORFLOW, *args] if block_tensorflow else \
        [sys.executable, "-m", "unet_industrial.train", *args]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    return result, json.loads((run_dir / "benchmark.json").read_text())


@pytest.mark.parametrize("mode", ["training_benchmark", "inference_benchmark"])
def test_benchmark_reports_median_images_per_second(tmp_path, mode):
    result, report = _benchmark(tmp_path, mode)
    assert len(report["step_seconds"]) == 5 and report["timed_steps"] == 3
    timed = sorted(report["step_seconds"][2:])
    assert report["median_step_ms"] == pytest.approx(1e3 * timed[1])
    assert report["images_per_second"] == pytest.approx(2 / timed[1])
    assert report["input_shape"] == [32, 32, 3] and report["precision"] == "float32"
    result_line = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(result_line) == 1
    assert f"mode={mode}" in result_line[0] and f"img_per_s={report['images_per_second']:.1f}" in result_line[0]


def test_bfloat16_benchmark_runs_under_jax_without_tensorflow(tmp_path):
    _, report = _benchmark(tmp_path, "training_benchmark", "--amp", "--amp_dtype=bfloat16", backend="jax",
                           block_tensorflow=True)
    assert report["backend"] == "jax" and report["precision"] == "mixed_bfloat16"
    assert report["images_per_second"] > 0


def test_warmup_must_leave_timed_steps(tmp_path):
    result = subprocess.run([sys.executable, "-m", "unet_industrial.train", "--exec_mode=inference_benchmark",
                             "--num_iter=3", "--warmup_step=3", f"--run_dir={tmp_path / 'x'}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "must exceed --warmup_step=3" in result.stderr
