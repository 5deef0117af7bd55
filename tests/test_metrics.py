"""Dice, IoU and per-image TPR / TNR at thresholds, against numpy by hand."""

import keras
import numpy as np
import pytest

from unet_industrial.config import METRIC_THRESHOLDS
from unet_industrial.models.metrics import Dice, ImageTNR, ImageTPR, IoU, segmentation_metrics


def _logit(p):
    return np.log(p / (1 - p)).astype("float32")


def _result(metric, *batches):
    for y, logits in batches:
        metric.update_state(y, logits)
    return float(keras.ops.convert_to_numpy(metric.result()))


def _numpy_scores(y, probs, threshold):
    truth = (y > threshold).reshape(len(y), -1)
    pred = (probs > threshold).reshape(len(y), -1)
    inter = (truth & pred).sum(1)
    dice = (2 * inter + 1e-5) / (truth.sum(1) + pred.sum(1) + 1e-5)
    iou = (inter + 1e-5) / ((truth | pred).sum(1) + 1e-5)
    return dice, iou


@pytest.fixture
def two_batches():
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(2):
        y = (rng.random((4, 8, 8, 1)) > 0.6).astype("float32")
        y[0] = 0.0  # an image with an empty mask
        probs = np.clip(0.4 * y + 0.6 * rng.random(y.shape), 0.01, 0.99)
        batches.append((y, probs))
    return batches


@pytest.mark.parametrize("threshold", [0.25, 0.5, 0.85])
def test_dice_and_iou_are_per_image_means_over_all_batches(two_batches, threshold):
    y = np.concatenate([b[0] for b in two_batches])
    probs = np.concatenate([b[1] for b in two_batches])
    dice, iou = _numpy_scores(y, probs, threshold)
    logit_batches = [(b[0], _logit(b[1])) for b in two_batches]
    assert _result(Dice(threshold), *logit_batches) == pytest.approx(dice.mean(), rel=1e-5)
    assert _result(IoU(threshold), *logit_batches) == pytest.approx(iou.mean(), rel=1e-5)
    assert iou.mean() < dice.mean()  # the two are different quantities


def test_empty_prediction_on_empty_mask_scores_one():
    y = np.zeros((1, 8, 8, 1), "float32")
    logits = np.full_like(y, -5.0)
    assert _result(Dice(0.5), (y, logits)) == pytest.approx(1.0)
    assert _result(IoU(0.5), (y, logits)) == pytest.approx(1.0)


def test_dice_by_hand():
    # Truth: 4 pixels; prediction: 2 of them plus 2 others. Dice = 2*2/(4+4), IoU = 2/6.
    y = np.zeros((1, 4, 4, 1), "float32")
    y[0, 0, :4] = 1
    probs = np.full(y.shape, 0.1)
    probs[0, 0, :2] = 0.9
    probs[0, 1, :2] = 0.9
    batch = (y, _logit(probs))
    assert _result(Dice(0.5), batch) == pytest.approx(0.5, abs=1e-5)
    assert _result(IoU(0.5), batch) == pytest.approx(1 / 3, abs=1e-5)


@pytest.mark.parametrize("threshold", [0.05, 0.5, 0.95])
def test_image_level_tpr_and_tnr(threshold):
    y = np.zeros((6, 4, 4, 1), "float32")
    y[:3, 0, 0] = 1  # images 0-2 are fake (non-empty mask), 3-5 real
    max_probs = np.array([0.9, 0.4, 0.02, 0.97, 0.3, 0.01])
    probs = np.full(y.shape, 0.001)
    probs[:, 2, 2, 0] = max_probs
    called = max_probs > threshold
    expected_tpr = called[:3].mean()
    expected_tnr = (~called[3:]).mean()
    batch = (y, _logit(probs))
    assert _result(ImageTPR(threshold), batch) == pytest.approx(expected_tpr)
    assert _result(ImageTNR(threshold), batch) == pytest.approx(expected_tnr)


def test_reset_state_forgets_earlier_batches(two_batches):
    metric = Dice(0.5)
    _result(metric, (two_batches[0][0], _logit(two_batches[0][1])))
    metric.reset_state()
    y, probs = two_batches[1]
    assert _result(metric, (y, _logit(probs))) == pytest.approx(_numpy_scores(y, probs, 0.5)[0].mean(), rel=1e-5)


def test_metric_names_at_every_reference_threshold():
    names = [metric.name for metric in segmentation_metrics(METRIC_THRESHOLDS)]
    assert len(names) == len(set(names)) == 4 * 8
    assert {"dice@0.05", "iou@0.125", "tpr@0.5", "tnr@0.99"} <= set(names)
