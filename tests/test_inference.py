"""Loading a run's checkpoint for prediction, and feeding it as training did."""

import os

import numpy as np
import pytest

from unet_industrial import inference, model as model_lib
from unet_industrial.config import ConfigError


def _run_with_model(tmp_path, channels):
    model = model_lib.build_unet("tinyUNet", (32, 32, channels))
    os.makedirs(tmp_path / "checkpoints")
    model.save(tmp_path / "checkpoints" / "last.keras")
    return model


@pytest.mark.parametrize("channels", [3, 1])
def test_probabilities_are_the_sigmoid_of_the_logits_of_scaled_crops(tmp_path, channels):
    model = _run_with_model(tmp_path, channels)
    trained = inference.load(str(tmp_path))  # no best.keras: falls back to last.keras
    assert (trained.input_size, trained.channels) == (32, channels)
    assert trained.checkpoint.endswith(os.path.join("checkpoints", "last.keras"))
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    images = crops / 255.0
    if channels == 1:
        images = (images @ [0.2989, 0.5870, 0.1140])[..., None]
    logits = np.asarray(model(images * 2.0 - 1.0))[..., 0]
    np.testing.assert_allclose(trained.probabilities(crops), 1 / (1 + np.exp(-logits)), atol=1e-5)
    with pytest.raises(ValueError, match=r"crops of \(16, 16\) for a model of 32 px"):
        trained.probabilities(crops[:, :16, :16])


def test_a_run_without_a_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="has no trained model"):
        inference.load(str(tmp_path))
    with pytest.raises(ConfigError, match="is not a folder"):
        inference.load(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--checkpoint='first'"):
        inference.load(str(tmp_path), "first")
