"""From predicted masks to frame and video verdicts, and the thresholds that make them.

A frame's score is how much of its face crop the model calls fake
(`frame_scores`; a classifier's is its own probability for the crop); a video's score
aggregates its frames' scores (`video_score`). Both are turned into verdicts by thresholds calibrated on
the validation split (`calibrate_threshold`) and stored with the run
(`Calibration`), so evaluation and detection use the same rule.

Only numpy and scikit-learn: detection and evaluation share this module
whatever the Keras backend.
"""

import dataclasses
import json
import math
import os

import numpy as np
from sklearn import metrics

from data_pipeline import files
from data_pipeline import recipe as recipe_lib

FRAME_SCORES = ("area", "max", "mean")
# The frame score of a classifier run: the probability it gives the crop (it predicts no mask).
CLASSIFIER_FRAME_SCORE = "probability"
AGGREGATIONS = ("mean", "median", "topk_mean", "fake_fraction", "confident")
# Test-time augmentations of the model's input (see inference.TTA_VIEWS).
TTAS = ("none", "dihedral")
CALIBRATION = "calibration.json"
# topk_mean averages the highest quarter of the frame scores (at least one).
TOP_FRACTION = 0.25
# The DFDC winner's rule (Seferbekov): confident frames and how many are needed.
CONFIDENT_HIGH, CONFIDENT_LOW = 0.8, 0.2
CONFIDENT_MIN_FRAMES = 11


class CalibrationError(ValueError):
    """A calibration that cannot be made or read; one line for the user."""


def sigmoid(logits):
    """Probabilities from the model's logits, without overflow for logits of any size."""
    # exp of a large positive argument overflows; exp(-|x|) never does.
    small = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def frame_scores(probabilities, mode="area", pixel_threshold=0.5):
    """One score per face crop from its predicted fake-pixel probabilities.

    Args:
      probabilities: (N, H, W) or (N, H, W, 1) array of sigmoid outputs; a
        classifier's (N,).
      mode: "area", the fraction of pixels above `pixel_threshold`; "max",
        the highest probability; "mean", the mean probability;
        CLASSIFIER_FRAME_SCORE, a classifier's probabilities as they are.
      pixel_threshold: a pixel is fake above this probability (area only).

    Returns:
      float64 array of N scores in [0, 1].
    """
    if mode == CLASSIFIER_FRAME_SCORE:
        return np.asarray(probabilities, np.float64).reshape(len(probabilities))
    if mode not in FRAME_SCORES:
        raise ValueError(f"unknown frame score {mode!r}; expected one of {FRAME_SCORES}")
    flat = np.asarray(probabilities, np.float64).reshape(len(probabilities), -1)
    if mode == "area":
        return (flat > pixel_threshold).mean(axis=1)
    return flat.max(axis=1) if mode == "max" else flat.mean(axis=1)


def max_over_faces(frame_keys, scores):
    """One score per frame: the maximum over the faces found in it.

    Args:
      frame_keys: a hashable per face crop that names its frame, e.g.
        (video id, frame index).
      scores: the crops' scores.

    Returns:
      (keys, scores): the distinct frames in order of first appearance and
      their maximum scores.
    """
    best = {}
    for key, score in zip(frame_keys, scores):
        best[key] = max(best.get(key, -math.inf), float(score))
    return list(best), np.array(list(best.values()), np.float64)


def video_score(scores, aggregation="mean", frame_threshold=0.5):
    """A video's score from its frames' scores.

    Args:
      scores: the frame scores of one video (at least one).
      aggregation: "mean", "median", "topk_mean" (the highest quarter),
        "fake_fraction" (the share of frames above `frame_threshold`), or
        "confident", the DFDC winner's rule: if more than n/2.5 and more
        than 11 frames score above 0.8, their mean; else if more than 0.9 n
        score below 0.2, their mean; else the mean of all. It expects
        probability-like scores (`--frame_score=max` or `mean`).
      frame_threshold: the calibrated frame threshold (fake_fraction only).

    Returns:
      The score, a float.
    """
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:
        raise ValueError("a video score needs at least one frame score")
    if aggregation == "mean":
        return float(scores.mean())
    if aggregation == "median":
        return float(np.median(scores))
    if aggregation == "topk_mean":
        count = max(1, math.ceil(TOP_FRACTION * scores.size))
        return float(np.sort(scores)[-count:].mean())
    if aggregation == "fake_fraction":
        return float((scores > frame_threshold).mean())
    if aggregation == "confident":
        high, low = scores[scores > CONFIDENT_HIGH], scores[scores < CONFIDENT_LOW]
        if high.size > scores.size / 2.5 and high.size > CONFIDENT_MIN_FRAMES:
            return float(high.mean())
        if low.size > 0.9 * scores.size:
            return float(low.mean())
        return float(scores.mean())
    raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {AGGREGATIONS}")


def calibrate_threshold(labels, scores):
    """The threshold that maximises balanced accuracy, and those for 1 % and 5 % false positives.

    A score at or above the threshold is called fake (`verdict`).

    Args:
      labels: 1 = fake, 0 = real; both classes must be present.
      scores: one score per label.

    Returns:
      A dict: threshold, balanced_accuracy (at it), threshold_fpr_1pct and
      threshold_fpr_5pct (the lowest thresholds whose false-positive rate on
      these data is at most 1 % / 5 %), and the counts of each class.

    Raises:
      CalibrationError: when a class is missing.
    """
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    positives, negatives = int(labels.sum()), int((labels == 0).sum())
    if not positives or not negatives:
        raise CalibrationError(f"calibration needs real and fake examples; got {negatives} real, "
                               f"{positives} fake")
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    # roc_curve's first threshold is +inf (nothing called fake); keep thresholds finite.
    thresholds = np.minimum(thresholds, np.nextafter(scores.max(), np.inf))
    balanced = (tpr + 1 - fpr) / 2
    best = int(np.argmax(balanced))

    def at_most(rate):
        return float(thresholds[np.flatnonzero(fpr <= rate)[-1]])

    return {"threshold": float(thresholds[best]), "balanced_accuracy": float(balanced[best]),
            "threshold_fpr_1pct": at_most(0.01), "threshold_fpr_5pct": at_most(0.05),
            "num_fake": positives, "num_real": negatives}


def verdict(score, threshold):
    """"fake" when the score reaches the threshold, else "real"."""
    return "fake" if score >= threshold else "real"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How a run turns masks into verdicts; stored as runs/<name>/calibration.json.

    Attributes:
      frame_score: see `frame_scores`; CLASSIFIER_FRAME_SCORE for a classifier run.
      pixel_threshold: see `frame_scores`; None for a classifier run.
      frame_threshold: frame verdict threshold (the "area threshold" for
        frame_score="area").
      aggregation: see `video_score`.
      video_threshold: video verdict threshold.
      frame: the full `calibrate_threshold` result for frames.
      video: the same for videos.
      checkpoint: which checkpoint ("best" or "last") was calibrated.
      data_pattern: the validation records it was calibrated on.
      tta: the test-time augmentation of the probabilities (one of TTAS);
        calibrations written before it existed were made without one.
      crop_recipe: the `data_pipeline.recipe.CropRecipe` (as a dict) of the
        records it was calibrated on: detect cuts faces exactly so, and its
        frames_per_video is the count the video threshold holds for. None
        for records prepared before recipes were recorded.
    """

    frame_score: str
    pixel_threshold: float
    frame_threshold: float
    aggregation: str
    video_threshold: float
    frame: dict
    video: dict
    checkpoint: str
    data_pattern: str
    tta: str = "none"
    crop_recipe: dict | None = None

    @property
    def recipe(self):
        """The crop recipe as a `data_pipeline.recipe.CropRecipe`, or None."""
        if self.crop_recipe is None:
            return None
        return recipe_lib.CropRecipe.from_dict(self.crop_recipe, CALIBRATION)

    def save(self, run_dir):
        """Writes calibration.json into `run_dir` atomically; returns its path."""
        path = os.path.join(run_dir, CALIBRATION)
        files.write_json(path, dataclasses.asdict(self))
        return path

    @classmethod
    def load(cls, run_dir):
        """Reads a run's calibration.json.

        Raises:
          CalibrationError: when it is missing or malformed.
        """
        path = os.path.join(run_dir, CALIBRATION)
        if not os.path.isfile(path):
            raise CalibrationError(f"{path} does not exist; calibrate the run first "
                                   "(python -m unet_industrial.evaluate --split=val --calibrate)")
        try:
            with open(path) as f:
                calibration = cls(**json.load(f))
            if calibration.crop_recipe is not None:
                # A malformed recipe is refused here, not later when detect cuts faces.
                recipe_lib.CropRecipe.from_dict(calibration.crop_recipe, path)
        except (ValueError, TypeError) as error:
            raise CalibrationError(f"{path} is not a calibration: {error}") from error
        return calibration
