"""Loading a run's checkpoint for prediction, and feeding it as training did."""

import os

import numpy as np
import pytest
from conftest import read_records, write_shards

from data_pipeline import model_input
from unet_industrial import inference
from unet_industrial.config import ConfigError
from unet_industrial.models import unet as model_lib


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
    # Crops cut at another size are resized as the reader resizes stored crops (bilinear).
    small = crops[:, :16, :16]
    resized = np.asarray(model_input.to_model_input(small, 32, channels))
    expected = 1 / (1 + np.exp(-np.asarray(model(resized))[..., 0]))
    np.testing.assert_allclose(trained.probabilities(small), expected, atol=1e-5)


def test_a_run_without_a_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="has no trained model"):
        inference.load(str(tmp_path))
    with pytest.raises(ConfigError, match="is not a folder"):
        inference.load(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--checkpoint='first'"):
        inference.load(str(tmp_path), "first")


def _trained(model):
    return inference.TrainedModel(model, 32, 3, "in-memory", None)


def test_dihedral_tta_turns_each_view_back_before_averaging():
    import keras

    inputs = keras.Input((32, 32, 3))
    # A per-pixel model: every view, turned back, predicts exactly what the
    # plain view does, so the average equals it only if each view is undone right.
    pixelwise = keras.Model(inputs, keras.layers.Conv2D(1, 1, kernel_initializer="ones")(inputs))
    images = np.random.default_rng(1).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    plain = _trained(pixelwise).model_input_probabilities(images, "none")
    averaged = _trained(pixelwise).model_input_probabilities(images, "dihedral", batch_size=2)
    np.testing.assert_allclose(averaged, plain, atol=1e-6)
    # A model that knows where it is (a bias that grows to the right): the
    # average is over the eight placements of that bias, turned back.
    ramp = np.tile(np.linspace(-3, 3, 32, dtype=np.float32), (32, 1))[None, :, :, None]
    positional = keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1] + ramp)(inputs))
    expected = np.mean([1 / (1 + np.exp(-(images[..., 0] + np.rot90(
        (ramp[..., 0][:, :, ::-1] if flip else ramp[..., 0]), -turns, axes=(1, 2)))))
        for turns in range(4) for flip in (False, True)], axis=0)
    np.testing.assert_allclose(_trained(positional).model_input_probabilities(images, "dihedral"), expected,
                               atol=1e-5)
    plain = _trained(positional).model_input_probabilities(images, "none")
    assert not np.allclose(plain, expected, atol=1e-2)
    with pytest.raises(ConfigError, match="--tta='flips' is not one of none, dihedral"):
        _trained(pixelwise).model_input_probabilities(images, "flips")


@pytest.mark.parametrize("channels", [3, 1])
def test_detect_and_evaluate_feed_the_model_alike(tmp_path, channels):
    # detect scales uint8 crops in numpy (TrainedModel.probabilities), evaluate
    # takes the tf.data reader's images: both must give the model the same input.
    import keras
    import tensorflow as tf

    from data_pipeline import reader, schema

    pattern = write_shards(str(tmp_path), "test", num_examples=6, num_shards=1)
    crops = np.stack([tf.io.decode_png(example[schema.IMAGE], channels=3).numpy()
                      for example in read_records(str(tmp_path), "test")])
    (batch,) = reader.make_prediction_dataset(pattern, image_size=32, channels=channels,
                                              batch_size=6).as_numpy_iterator()
    inputs = keras.Input((32, 32, channels))
    # Unequal weights per channel: a swapped channel order would change the output.
    weights = np.float32([0.5, -1.0, 2.0][:channels]).reshape(1, 1, channels, 1)
    layer = keras.layers.Conv2D(1, 1, use_bias=False)
    trained = inference.TrainedModel(keras.Model(inputs, layer(inputs)), 32, channels, "in-memory", None)
    layer.set_weights([weights])
    # The reader's grey (libpng's) truncates the luma that detect keeps as a
    # fraction: up to one grey level apart, at most weight x level / 4 after
    # the sigmoid. RGB has no such step and must agree to float precision.
    one_level = 1.01 * 2.0 / 255 if channels == 1 else 0.0
    from_reader = trained.model_input_probabilities(batch["image"])
    np.testing.assert_allclose(trained.probabilities(crops), from_reader,
                               atol=np.abs(weights).max() * one_level / 4 + 1e-6)
