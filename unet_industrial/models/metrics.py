"""Segmentation metrics at fixed thresholds, as stateful Keras metrics.

`y_true` is a mask in {0, 1} and `y_pred` the model's logits, both shaped
(batch, height, width, 1). Each metric binarizes the probabilities at its
threshold and accumulates over every batch it sees until reset.

- Dice: `(2|A∩B| + 1e-5) / (|A| + |B| + 1e-5)` per image, averaged over images.
  This is what NVIDIA's reference calls "IoU"; here it has its own name.
- IoU: `(|A∩B| + 1e-5) / (|A∪B| + 1e-5)` per image, averaged over images.
  An empty prediction on an empty mask scores 1 in both.
- TPR / TNR of the per-image decision: an image is called defective (fake)
  when its highest pixel probability exceeds the threshold; it is truly
  defective when its mask has any pixel set (as in the reference's confusion
  matrix, where the image label is whether the mask is non-empty).
"""

import keras
from keras import ops

EPSILON = 1e-5


def _binarize(y_true, logits, threshold):
    probs = ops.sigmoid(ops.cast(logits, "float32"))
    # The reference binarizes the target at the same threshold as the prediction.
    truth = ops.cast(ops.cast(y_true, "float32") > threshold, "float32")
    return truth, ops.cast(probs > threshold, "float32"), probs


def per_image_overlap(y_true, logits, threshold):
    """Returns per-image (intersection, |truth|, |prediction|) at a threshold."""
    truth, pred, _ = _binarize(y_true, logits, threshold)
    axes = (1, 2, 3)
    return ops.sum(truth * pred, axis=axes), ops.sum(truth, axis=axes), ops.sum(pred, axis=axes)


def _threshold_name(prefix, threshold):
    return f"{prefix}@{threshold:g}"


class _ThresholdRatio(keras.metrics.Metric):
    """A ratio of two sums accumulated over batches, at one threshold, named `<prefix>@<t>`."""

    def __init__(self, threshold=0.5, name=None, **kwargs):
        super().__init__(name=name or _threshold_name(self.prefix, threshold), **kwargs)
        self.threshold = float(threshold)
        self.numerator = self.add_variable(shape=(), initializer="zeros", name="numerator")
        self.denominator = self.add_variable(shape=(), initializer="zeros", name="denominator")

    def result(self):
        return ops.divide_no_nan(self.numerator, self.denominator)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class _MeanOverImages(_ThresholdRatio):
    """Mean of a per-image score over all images seen."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        intersection, truth, pred = per_image_overlap(y_true, y_pred, self.threshold)
        scores = self.score(intersection, truth, pred)
        self.numerator.assign_add(ops.sum(scores))
        self.denominator.assign_add(ops.cast(ops.shape(scores)[0], "float32"))


@keras.saving.register_keras_serializable(package="unet_industrial")
class Dice(_MeanOverImages):
    """Per-image Dice at a threshold, averaged over images (the reference's "IoU")."""

    prefix = "dice"

    @staticmethod
    def score(intersection, truth, pred):
        return (2.0 * intersection + EPSILON) / (truth + pred + EPSILON)


@keras.saving.register_keras_serializable(package="unet_industrial")
class IoU(_MeanOverImages):
    """Per-image intersection over union at a threshold, averaged over images."""

    prefix = "iou"

    @staticmethod
    def score(intersection, truth, pred):
        return (intersection + EPSILON) / (truth + pred - intersection + EPSILON)


class _ImageDecisionRate(_ThresholdRatio):
    """A rate of the per-image decision `max probability > threshold`."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, _, probs = _binarize(y_true, y_pred, 0.5)
        is_positive = ops.max(truth, axis=(1, 2, 3))
        called_positive = ops.cast(ops.max(probs, axis=(1, 2, 3)) > self.threshold, "float32")
        # Positives for TPR, negatives for TNR.
        relevant = is_positive if self.positive_class else 1.0 - is_positive
        agrees = called_positive if self.positive_class else 1.0 - called_positive
        self.numerator.assign_add(ops.sum(relevant * agrees))
        self.denominator.assign_add(ops.sum(relevant))


@keras.saving.register_keras_serializable(package="unet_industrial")
class ImageTPR(_ImageDecisionRate):
    """Share of images with a non-empty mask that the model calls fake."""

    prefix = "tpr"
    positive_class = True


@keras.saving.register_keras_serializable(package="unet_industrial")
class ImageTNR(_ImageDecisionRate):
    """Share of images with an empty mask that the model calls real."""

    prefix = "tnr"
    positive_class = False


def segmentation_metrics(thresholds, kinds=(Dice, IoU, ImageTPR, ImageTNR)):
    """One metric of each kind at each threshold, named like `dice@0.5`."""
    return [kind(threshold) for threshold in thresholds for kind in kinds]
