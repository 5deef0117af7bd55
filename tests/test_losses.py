"""Losses and weight decay against values computed by hand with numpy."""

import keras
import numpy as np
import pytest

from unet_industrial.models.losses import BatchLoss, add_l2_weight_decay
from unet_industrial.models.unet import build_unet


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_bce(y, logits):
    p = _sigmoid(logits.astype(np.float64))
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _numpy_dice_loss(y, logits, smooth=1.0):
    p = _sigmoid(logits.astype(np.float64))
    return float(1 - (2 * np.sum(y * p) + smooth) / (np.sum(y) + np.sum(p) + smooth))


def _numpy_jaccard_loss(y, logits, smooth=1.0):
    p = _sigmoid(logits.astype(np.float64))
    intersection = np.sum(y * p)
    return float(1 - (intersection + smooth) / (np.sum(y) + np.sum(p) - intersection + smooth))


def _loss(kind, y, logits):
    return float(keras.ops.convert_to_numpy(BatchLoss(kind)(y, logits)))


@pytest.fixture
def masks_and_logits():
    rng = np.random.default_rng(0)
    y = (rng.random((3, 16, 16, 1)) > 0.7).astype("float32")
    return y, rng.normal(0, 2, y.shape).astype("float32")


@pytest.mark.parametrize("kind, reference", [
    ("bce", _numpy_bce), ("dice", _numpy_dice_loss), ("jaccard", _numpy_jaccard_loss)])
def test_single_losses_match_numpy(masks_and_logits, kind, reference):
    y, logits = masks_and_logits
    assert _loss(kind, y, logits) == pytest.approx(reference(y, logits), rel=1e-5)


def test_dice_is_over_the_whole_batch_not_per_image():
    y = np.zeros((2, 4, 4, 1), "float32")
    y[0] = 1.0  # one full image, one empty image
    logits = np.where(y > 0, 6.0, -6.0).astype("float32")
    logits[1, 0, 0, 0] = 6.0  # a single false positive in the empty image
    p = _sigmoid(logits.astype(np.float64))
    whole_batch = 1 - (2 * np.sum(y * p) + 1) / (np.sum(y) + np.sum(p) + 1)
    per_image = np.mean([1 - (2 * np.sum(y[i] * p[i]) + 1) / (np.sum(y[i]) + np.sum(p[i]) + 1) for i in range(2)])
    assert _loss("dice", y, logits) == pytest.approx(whole_batch, rel=1e-5)
    assert abs(whole_batch - per_image) > 0.1


def test_adaptive_uses_dice_when_dice_loss_is_below_0_3():
    rng = np.random.default_rng(1)
    y = (rng.random((2, 16, 16, 1)) > 0.5).astype("float32")
    good_logits = np.where(y > 0, 4.0, -4.0).astype("float32")
    assert _numpy_dice_loss(y, good_logits) < 0.3
    assert _loss("adaptive", y, good_logits) == pytest.approx(_numpy_dice_loss(y, good_logits), rel=1e-5)


def test_adaptive_uses_cross_entropy_when_dice_loss_is_0_3_or_more(masks_and_logits):
    y, logits = masks_and_logits
    assert _numpy_dice_loss(y, logits) >= 0.3
    assert _loss("adaptive", y, logits) == pytest.approx(_numpy_bce(y, logits), rel=1e-5)


def test_adaptive_switch_is_decided_at_every_call_inside_a_compiled_model():
    """The same compiled loss picks Dice for one batch and cross-entropy for the next."""
    y_in = keras.Input((8, 8, 1))
    logits_in = keras.Input((8, 8, 1))
    model = keras.Model([y_in, logits_in], BatchLoss("adaptive")(y_in, logits_in))
    rng = np.random.default_rng(2)
    y = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    good = np.where(y > 0, 4.0, -4.0).astype("float32")
    bad = -good
    for logits, reference in ((good, _numpy_dice_loss), (bad, _numpy_bce), (good, _numpy_dice_loss)):
        value = float(np.asarray(model.predict_on_batch([y, logits])))
        assert value == pytest.approx(reference(y, logits), rel=1e-4)


def test_loss_is_float32_for_half_precision_logits(masks_and_logits):
    y, logits = masks_and_logits
    value = BatchLoss("adaptive")(y, keras.ops.cast(logits, "float16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="focal"):
        BatchLoss("focal")


def test_loss_config_round_trip():
    loss = BatchLoss("jaccard", smooth=2.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.kind, restored.smooth, restored.switch_at) == ("jaccard", 2.0, 0.3)


def test_l2_weight_decay_matches_the_reference_formula():
    """weight_decay * sum(tf.nn.l2_loss(v)) = wd * sum(v**2) / 2 over every trainable variable."""
    model = build_unet("tinyUNet", (32, 32, 1), activation="prelu")
    for variable in model.trainable_weights:  # biases and slopes start at zero / constants
        variable.assign(np.random.default_rng(3).normal(0, 0.1, variable.shape))
    add_l2_weight_decay(model, 1e-5)
    expected = 1e-5 * sum(np.sum(np.square(keras.ops.convert_to_numpy(v), dtype=np.float64)) / 2
                          for v in model.trainable_weights)
    got = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert len(model.losses) == len(model.trainable_weights)
    assert got == pytest.approx(expected, rel=1e-5)
    add_l2_weight_decay(model, 0.0)
    assert model.losses == []
