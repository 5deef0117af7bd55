"""The same model under KERAS_BACKEND=tensorflow and jax, each in its own process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, run_module

BACKENDS = ("tensorflow", "jax")

# Each script reads `folder` (see _script); run in this process or in a fresh one (_python).
_SAVE = """
import numpy as np, keras
from unet_industrial.models.unet import build_unet
keras.utils.set_random_seed(3)
model = build_unet("tinyUNet", (32, 32, 3), activation="prelu")
x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
model.save(folder + "/model.keras")
np.save(folder + "/x.npy", x)
np.save(folder + "/logits.npy", keras.ops.convert_to_numpy(model(x)))
"""

_LOAD = """
import numpy as np, keras
import unet_industrial.models.unet  # registers the project's custom layers
model = keras.saving.load_model(folder + "/model.keras")
np.save(folder + "/reloaded.npy", keras.ops.convert_to_numpy(model(np.load(folder + "/x.npy"))))
"""


def _script(code, folder):
    return f"folder = {str(folder)!r}\n" + code


def _python(code, backend):
    """Runs a script under `backend`: here when it is this process's backend, else in a new process."""
    import keras

    if backend == keras.backend.backend():
        exec(code, {})
        return
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_training_steps(tmp_path, backend):
    run_dir = tmp_path / backend
    result = run_module("unet_industrial.train", "--exec_mode=train", "--synthetic_data", "--input_size=32",
                        "--batch_size=2", "--num_iter=2", "--save_every=2", "--log_every=1",
                        f"--run_dir={run_dir}", env={"KERAS_BACKEND": backend})
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "config.json").read_text())
    assert record["keras_backend"] == backend
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert all(np.isfinite(line["loss"]) and line["loss"] > 0 for line in lines)
    state = json.loads((run_dir / "checkpoints" / "train_state.json").read_text())
    assert state["step"] == 2


def test_a_saved_model_reloads_under_the_other_backend_both_ways(tmp_path):
    saved_by = {backend: tmp_path / backend for backend in BACKENDS}
    for folder in saved_by.values():
        folder.mkdir()
    _python(_script(_SAVE, saved_by["tensorflow"]), "tensorflow")
    # One JAX process reloads TensorFlow's file and saves its own; TensorFlow then reloads that.
    _python(_script(_LOAD, saved_by["tensorflow"]) + _script(_SAVE, saved_by["jax"]), "jax")
    _python(_script(_LOAD, saved_by["jax"]), "tensorflow")
    for backend, folder in saved_by.items():
        expected = np.load(folder / "logits.npy")
        assert expected.shape == (2, 32, 32, 1) and expected.std() > 0, backend
        np.testing.assert_allclose(np.load(folder / "reloaded.npy"), expected, atol=1e-5, err_msg=backend)
