"""The evaluation job: a run's model over a split's records, frame / video / pixel figures, a report folder.

One pass predicts every face crop of `data_pattern` (no augmentation, pixels
fed as in training). Each crop gets a score (`verdicts.frame_scores`), a
frame the maximum over its faces, a video the aggregation of its frames;
thresholds come from the run's calibration.json, or, with `calibrate`, are
calibrated on these data (by balanced accuracy) and saved there.

A classifier run (`--model_kind=classifier`) is evaluated the same way, its
crop score being its own probability (verdicts.CLASSIFIER_FRAME_SCORE; so
--frame_score and --pixel_threshold are refused for it); having no masks,
its report has no "pixel" section, its per_frame.csv empty mask_area_pred,
iou and dice cells, and its folder no overlays.png.

`runs/NAME/eval/<split>/` holds:
  report.json     sections "frame", "video" and "pixel" (segmenters only),
                  and metadata (model kind, checkpoint, step, data pattern,
                  degradation (null: none), counts, the settings and
                  calibration used, provenance).
  per_frame.csv   one row per face crop: video_id, original_id (a fake's:
                  the original it was made from), frame_index, face_number,
                  method, compression, label, score (the crop's),
                  frame_score (its frame's: the maximum over the frame's faces),
                  verdict (the frame's), mask_area_true, mask_area_pred, iou,
                  dice (empty where the true mask is empty).
  per_video.csv   video_id, original_id, method, compression, label, num_frames, score,
                  verdict.
  roc.png, pr.png frame and video ROC and precision-recall curves.
  overlays.png    a few fake and real crops: image, true mask, predicted probability
                  (segmenters only).
TensorBoard scalars and images go to runs/NAME/tb/eval as eval/<split>/<name>.

With `degrade` ("blur:0.7", see `degradations`) every crop is degraded
before the model and the folder is eval/<split>-<degradation>
(eval/test-blur0.7), its report.json naming the degradation; the
thresholds stay those calibrated on clean data, as a deployed model's would.

How the figures are defined:
  - "frame" and "video": scikit-learn's roc_auc_score, average_precision_score,
    accuracy_score, balanced_accuracy_score, confusion_matrix (rows true
    real / fake, columns predicted real / fake), log_loss, and the equal
    error rate from roc_curve (where the false-positive and false-negative
    rates are closest, their mean). A score at or above the threshold is
    called fake. log_loss treats the scores as probabilities clipped to
    [1e-6, 1 - 1e-6]; it is meaningful for probability-like scores
    (frame_score max or mean), less so for areas.
  - roc_auc_interval: the 95 % interval of roc_auc over the split's
    identities, a percentile bootstrap (1,000 seeded draws) that resamples
    originals, each with every frame or video of it and of the fakes made
    from it. A split of a dozen identities measures an AUC to within several
    hundredths at best; the interval says how many. Whole splits only, not
    by_method or by_compression.
  - Figures undefined on one class (AUC, its interval, average precision,
    EER, balanced accuracy) are null, never NaN.
  - by_method: a method's fakes together with ALL real items of the split
    (a method has no reals of its own, and AUC needs both classes);
    by_compression: every item, real or fake, of that compression.
  - "pixel": per crop, the predicted mask is probability > pixel_threshold;
    iou and dice are means over fake crops whose true mask is not empty (an
    empty true mask, as in audio-only fakes, has no overlap to measure;
    their number is num_fake_empty_mask); real_false_positive_area is the
    mean predicted fake fraction of real crops. Subgroups as above.

Replacing a report: the folder is written under a hidden temporary name
beside eval/<split>; when it is complete, an earlier eval/<split> is renamed
eval/<split>-<its UTC time> (kept, never deleted) and the new folder takes its
name (two renames: for that instant eval/<split> is absent, but no reader
ever sees a half-written report). Recalibrating likewise keeps the earlier calibration.json as
calibration-<its UTC time>.json.

Bad input (a value out of range, a run folder without a model, a missing or
mismatching calibration, data that match nothing or carry no labels) raises
ConfigError or verdicts.CalibrationError before anything is written.
"""

import csv
import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import tempfile
import time

import numpy as np
from absl import logging
from sklearn import metrics

from unet_industrial import degradations, verdicts
from unet_industrial import run_files
from unet_industrial.config import CHECKPOINTS, ConfigError, check_pattern

EVAL_DIR = "eval"
# Used by a calibration run for each setting the command line leaves out.
DEFAULT_SETTINGS = {"checkpoint": "best", "frame_score": "area", "pixel_threshold": 0.5,
                    "aggregation": "mean", "tta": "none"}
# A classifier's, which no flag may change: it scores a crop by its own probability, with no mask.
CLASSIFIER_SETTINGS = {"frame_score": verdicts.CLASSIFIER_FRAME_SCORE, "pixel_threshold": None}
# log_loss needs probabilities strictly inside (0, 1).
LOG_LOSS_EPSILON = 1e-6
# The ROC AUC interval: a percentile bootstrap over originals (see roc_auc_interval).
AUC_INTERVAL_CONFIDENCE = 0.95
AUC_INTERVAL_RESAMPLES = 1000
OVERLAY_EXAMPLES = 8  # half fakes, half reals
_PROGRESS_SECONDS = 10.0
PER_FRAME_COLUMNS = ("video_id", "original_id", "frame_index", "face_number", "method", "compression",
                     "label", "score", "frame_score", "verdict", "mask_area_true", "mask_area_pred", "iou",
                     "dice")
PER_VIDEO_COLUMNS = ("video_id", "original_id", "method", "compression", "label", "num_frames", "score",
                     "verdict")
SUMMARY_SCALARS = {
    "frame": ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "eer", "log_loss"),
    "video": ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "eer", "log_loss"),
    "pixel": ("iou", "dice", "real_false_positive_area"),
}
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STAMP = "%Y%m%d-%H%M%S"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What an evaluation job reads and how it scores.

    Attributes:
      run_dir: the training run folder (runs/NAME).
      data_pattern: glob of the TFRecord shards to evaluate on.
      split: name of the report folder, eval/<split>.
      checkpoint, frame_score, pixel_threshold, aggregation, tta: the
        scoring settings (see verdicts and inference); None takes the calibration's, or with
        `calibrate` DEFAULT_SETTINGS. Given explicitly they must match the
        calibration (whose thresholds hold only for its settings), except
        pixel_threshold when frame scores do not use it (frame_score max or
        mean): then it changes only the pixel figures.
      calibrate: calibrate thresholds on these data (meant for the
        validation split), save calibration.json, and report with them.
      batch_size: crops per prediction batch.
      degrade: None, or a degradation of every crop before the model
        ("blur:0.7", see `degradations`); the report then goes to
        eval/<split>-<degradation> (eval/test-blur0.7) beside the clean one,
        judged with the thresholds calibrated on clean data.
    """

    run_dir: str
    data_pattern: str
    split: str = "test"
    checkpoint: str | None = None
    frame_score: str | None = None
    pixel_threshold: float | None = None
    aggregation: str | None = None
    tta: str | None = None
    calibrate: bool = False
    batch_size: int = 32
    degrade: str | None = None

    @property
    def degradation(self):
        """The parsed `degrade` (a degradations.Degradation), or None."""
        return None if self.degrade is None else degradations.parse(self.degrade)

    @property
    def report_name(self):
        """The report folder's name under eval/: the split's, tagged with the degradation if any."""
        degradation = self.degradation
        return self.split if degradation is None else f"{self.split}-{degradation.tag}"


def _choice(name, value, choices):
    if value is not None and value not in choices:
        raise ConfigError(f"--{name}={value!r} is not one of {', '.join(choices)}")


def validate(config):
    """Checks an EvalConfig without loading anything heavy; raises ConfigError naming the first problem."""
    _choice("checkpoint", config.checkpoint, CHECKPOINTS)
    _choice("frame_score", config.frame_score, verdicts.FRAME_SCORES)
    _choice("aggregation", config.aggregation, verdicts.AGGREGATIONS)
    _choice("tta", config.tta, verdicts.TTAS)
    if config.pixel_threshold is not None and not 0 < config.pixel_threshold < 1:
        raise ConfigError(f"--pixel_threshold={config.pixel_threshold} must be between 0 and 1")
    if config.batch_size <= 0:
        raise ConfigError(f"--batch_size must be positive, got {config.batch_size}")
    if not _SPLIT_NAME.match(config.split):
        raise ConfigError(f"--split={config.split!r} must be a plain folder name "
                          "(letters, digits, '_', '-', '.')")
    # Parses --degrade (a bad one is a ConfigError naming it).
    if config.degradation is not None and config.calibrate:
        raise ConfigError("--degrade measures a model on degraded crops with the thresholds of clean "
                          "ones: calibrate without it")
    if not config.run_dir:
        raise ConfigError("--run_dir of a trained run is required")
    if not os.path.isdir(config.run_dir):
        raise ConfigError(f"--run_dir={config.run_dir!r} is not a folder")
    # Checked before the calibration, whose absence would otherwise be reported first.
    if not any(os.path.exists(run_files.checkpoint_path(config.run_dir, which)) for which in CHECKPOINTS):
        raise ConfigError(f"{config.run_dir} has no trained model "
                          f"({run_files.CHECKPOINT_DIR}/{run_files.LAST_CHECKPOINT} is missing)")
    check_pattern("data_pattern", config.data_pattern)


def resolve_settings(config, calibration, model_kind="segmenter"):
    """The scoring settings of a job: the command line's, else the calibration's, else the defaults.

    Args:
      config: an EvalConfig.
      calibration: the run's verdicts.Calibration, or None when calibrating.
      model_kind: the run's --model_kind; a classifier's defaults include CLASSIFIER_SETTINGS.

    Returns:
      A dict with checkpoint, frame_score, pixel_threshold, aggregation and tta.

    Raises:
      ConfigError: for an explicit setting that differs from the calibration's,
        or one that a classifier run has no use for.
    """
    defaults = DEFAULT_SETTINGS
    if model_kind == "classifier":
        for name in CLASSIFIER_SETTINGS:
            if getattr(config, name) is not None:
                raise ConfigError(f"--{name} scores predicted masks, and {config.run_dir} is a classifier "
                                  "run (a crop's score is its predicted probability): leave it out")
        defaults = {**DEFAULT_SETTINGS, **CLASSIFIER_SETTINGS}
    settings = {}
    for name, default in defaults.items():
        given = getattr(config, name)
        if calibration is None:
            settings[name] = default if given is None else given
            continue
        saved = getattr(calibration, name)
        differs = given is not None and (not math.isclose(given, saved) if name == "pixel_threshold"
                                         else given != saved)
        # Only "area" frame scores depend on the pixel threshold; otherwise it moves the pixel figures alone.
        harmless = name == "pixel_threshold" and calibration.frame_score != "area"
        if differs and not harmless:
            raise ConfigError(
                f"--{name}={given!r} differs from {saved!r} in "
                f"{os.path.join(config.run_dir, verdicts.CALIBRATION)}, whose thresholds hold only for the "
                f"settings they were calibrated with; leave --{name} out, or recalibrate with "
                f"--{name}={given} --calibrate --split=val")
        settings[name] = saved if given is None else given
    return settings


def _overlap(predicted, true):
    """Per-crop IoU and Dice of boolean (N, H, W) masks; NaN where the true mask is empty."""
    intersection = (predicted & true).sum(axis=(1, 2)).astype(np.float64)
    predicted_size, true_size = predicted.sum(axis=(1, 2)), true.sum(axis=(1, 2))
    union = (predicted | true).sum(axis=(1, 2))
    defined = true_size > 0
    iou = np.divide(intersection, union, out=np.full(len(true), np.nan), where=defined)
    dice = np.divide(2 * intersection, predicted_size + true_size, out=np.full(len(true), np.nan),
                     where=defined)
    return iou, dice


CROP_COLUMNS = ("video_id", "original_id", "frame_index", "face_number", "method", "compression", "label",
                "score", "mask_area_true", "mask_area_pred", "iou", "dice")


def _score_batch(trained, batch, settings):
    """CROP_COLUMNS of one reader batch, its probabilities (maps; a classifier's per crop) and true masks."""
    probabilities = trained.model_input_probabilities(batch["image"], settings["tta"], len(batch["image"]))
    true = batch["mask"][..., 0] > 0.5
    if trained.predicts_masks:
        predicted = probabilities > settings["pixel_threshold"]
        iou, dice = _overlap(predicted, true)
        area_predicted = predicted.mean(axis=(1, 2))
    else:
        # No predicted mask: the pixel columns stay empty (NaN).
        iou = dice = area_predicted = np.full(len(true), np.nan)
    values = {name: [value.decode() for value in batch[name]]
              for name in ("video_id", "original_id", "method", "compression")}
    values.update({name: batch[name] for name in ("frame_index", "face_number", "label")})
    score = verdicts.frame_scores(probabilities, settings["frame_score"], settings["pixel_threshold"])
    values.update(score=score, mask_area_true=true.mean(axis=(1, 2)), mask_area_pred=area_predicted,
                  iou=iou, dice=dice)
    return values, probabilities, true


def predict(trained, data_pattern, settings, batch_size, degradation=None):
    """Scores every face crop of `data_pattern` in one pass.

    Full probability maps are not kept (a split can hold many thousand
    crops); only per-crop figures and a few examples for the overlays.

    Args:
      trained: an inference.TrainedModel.
      data_pattern: glob of TFRecord shards.
      settings: from `resolve_settings`.
      batch_size: crops per batch.
      degradation: None, or a degradations.Degradation applied to every
        crop before the model (the overlays show the degraded crops).

    Returns:
      (crops, examples): crops is a dict of equal-length numpy arrays, one
      per name in CROP_COLUMNS; examples a list of up to OVERLAY_EXAMPLES
      dicts (image in [0, 1], true mask, probability, and the crop's
      metadata), fakes first, at most one per video; none for a
      classifier, which predicts no mask to show.

    Raises:
      ConfigError: for data that match nothing, hold no record, or hold
        records without a label.
    """
    from data_pipeline import reader

    try:
        dataset = reader.make_prediction_dataset(data_pattern, image_size=trained.input_size,
                                                 channels=trained.channels, batch_size=batch_size)
    except FileNotFoundError as error:
        raise ConfigError(f"--data_pattern: {error}") from error
    columns = {name: [] for name in CROP_COLUMNS}
    examples = {0: [], 1: []}
    # Seeded: the same data and degradation give the same report.
    noise_rng = np.random.default_rng(0)
    start = last_log = time.monotonic()
    for batch in dataset.as_numpy_iterator():
        unlabelled = batch["label"] < 0
        if unlabelled.any():  # stop at once rather than after a pass over unlabelled data
            raise ConfigError(f"--data_pattern={data_pattern!r} holds records without a label (-1), e.g. of "
                              f"video {batch['video_id'][unlabelled][0].decode()!r}; evaluation needs real / "
                              "fake labels")
        if degradation is not None:
            batch["image"] = degradations.apply(batch["image"], degradation, noise_rng)
        values, probabilities, true = _score_batch(trained, batch, settings)
        for name, column in columns.items():
            column.extend(values[name])
        # Examples for the overlays: masks, so a segmenter's only.
        if trained.predicts_masks:
            for i, label in enumerate(values["label"]):
                chosen = examples[int(label)]
                # At most one crop per video, so that the overlays show several videos.
                video_id = values["video_id"][i]
                if len(chosen) < OVERLAY_EXAMPLES // 2 and all(e["video_id"] != video_id for e in chosen):
                    chosen.append({"image": (batch["image"][i] + 1.0) / 2.0, "mask": true[i],
                                   "probability": probabilities[i], "label": int(label),
                                   **{name: values[name][i] for name in ("video_id", "frame_index", "method",
                                                                          "score")}})
        now = time.monotonic()
        if now - last_log > _PROGRESS_SECONDS:
            count = len(columns["label"])
            logging.info("predicted %d crops, %.1f crops/s", count, count / (now - start))
            last_log = now
    crops = {name: np.asarray(column) for name, column in columns.items()}
    if not crops["label"].size:
        raise ConfigError(f"--data_pattern={data_pattern!r} holds no record")
    logging.info("predicted %d crops in %.1f s", crops["label"].size, time.monotonic() - start)
    return crops, examples[1] + examples[0]


def frame_table(crops):
    """Frames from crops: a frame (video id, frame index) scores the maximum over its faces.

    Returns:
      A dict of numpy arrays: video_id, original_id, frame_index, method,
      compression, label, score; one entry per frame, in order of first
      appearance.
    """
    frame_keys = list(zip(crops["video_id"], crops["frame_index"].tolist()))
    keys, scores = verdicts.max_over_faces(frame_keys, crops["score"])
    first, label = {}, {}
    for i, key in enumerate(frame_keys):
        first.setdefault(key, i)
        label[key] = max(label.get(key, 0), int(crops["label"][i]))
    rows = [first[key] for key in keys]
    return {"video_id": crops["video_id"][rows], "original_id": crops["original_id"][rows],
            "frame_index": crops["frame_index"][rows],
            "method": crops["method"][rows], "compression": crops["compression"][rows],
            "label": np.array([label[key] for key in keys]), "score": scores}


def video_table(frames, aggregation, frame_threshold):
    """Videos from frames, each scored by `verdicts.video_score` over its frames.

    Returns:
      A dict of numpy arrays: video_id, original_id, method, compression,
      label, num_frames, score; in order of first appearance.
    """
    groups = {}
    for i, video_id in enumerate(frames["video_id"]):
        groups.setdefault(video_id, []).append(i)
    rows = list(groups.values())
    return {"video_id": np.array(list(groups)),
            "original_id": np.array([frames["original_id"][r[0]] for r in rows]),
            "method": np.array([frames["method"][r[0]] for r in rows]),
            "compression": np.array([frames["compression"][r[0]] for r in rows]),
            "label": np.array([frames["label"][r].max() for r in rows]),
            "num_frames": np.array([len(r) for r in rows]),
            "score": np.array([verdicts.video_score(frames["score"][r], aggregation, frame_threshold)
                               for r in rows])}


def original_groups(table):
    """The original each row belongs to (a fake: the one it was made from), else its own video."""
    return np.where(table["original_id"] != "", table["original_id"], table["video_id"])


def predicted_fake(scores, threshold):
    """1 where `verdicts.verdict` calls the score fake, else 0."""
    return np.array([verdicts.verdict(score, threshold) == "fake" for score in scores], int)


def _both_classes(labels):
    """Whether 0/1 labels hold a real and a fake: what AUC, its interval and the curves need."""
    return 0 < int(np.sum(labels)) < np.size(labels)


def _equal_error_rate(labels, scores):
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    fnr = 1.0 - tpr
    closest = int(np.argmin(np.abs(fnr - fpr)))
    return (fpr[closest] + fnr[closest]) / 2.0


def roc_auc_interval(labels, scores, groups, resamples=AUC_INTERVAL_RESAMPLES,
                     confidence=AUC_INTERVAL_CONFIDENCE, seed=0):
    """Percentile bootstrap interval of the ROC AUC, resampling whole groups (originals).

    A split holds few identities (the demo's test split 12), and the frames
    and videos of one identity succeed or fail together: resampling single
    frames would treat 860 frames as 860 independent trials and give an
    interval far too narrow. Each draw picks as many groups as there are,
    with replacement, and keeps every row of each; draws with one class only
    are left out.

    Args:
      labels: 1 = fake, 0 = real.
      scores: one per label.
      groups: one key per label; rows sharing a key are resampled together.
      resamples: bootstrap draws.
      confidence: the interval's coverage.
      seed: seeds the draws, so a report is reproducible.

    Returns:
      [low, high], or None with fewer than two groups or without both classes.
    """
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    keys, group_of_row = np.unique(np.asarray(groups), return_inverse=True)
    if len(keys) < 2 or not _both_classes(labels):
        return None
    rows_of_group = [np.flatnonzero(group_of_row == g) for g in range(len(keys))]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        rows = np.concatenate([rows_of_group[g] for g in rng.integers(0, len(keys), len(keys))])
        if _both_classes(labels[rows]):
            aucs.append(metrics.roc_auc_score(labels[rows], scores[rows]))
    if not aucs:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    return [float(value) for value in np.percentile(aucs, [tail, 100.0 - tail])]


def classification_figures(labels, scores, threshold):
    """Figures of scores against labels at a threshold; those undefined on one class are None.

    Args:
      labels: 1 = fake, 0 = real.
      scores: one per label.
      threshold: a score at or above it is called fake.

    Returns:
      A dict of roc_auc, average_precision, accuracy, balanced_accuracy,
      eer, log_loss, threshold, confusion_matrix, num_real, num_fake.
    """
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    predicted = predicted_fake(scores, threshold)
    num_fake = int(labels.sum())
    both = _both_classes(labels)
    return {
        "roc_auc": metrics.roc_auc_score(labels, scores) if both else None,
        "average_precision": metrics.average_precision_score(labels, scores) if both else None,
        "accuracy": metrics.accuracy_score(labels, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(labels, predicted) if both else None,
        "eer": _equal_error_rate(labels, scores) if both else None,
        "log_loss": metrics.log_loss(labels, np.clip(scores, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON),
                                     labels=[0, 1]),
        "threshold": threshold,
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "num_real": int(labels.size - num_fake), "num_fake": num_fake,
    }


def pixel_figures(crops, pixel_threshold):
    """IoU and Dice on fake crops, predicted fake area on real crops (see the module docstring)."""
    fake, real = crops["label"] == 1, crops["label"] == 0
    measured = fake & ~np.isnan(crops["iou"])
    return {"iou": float(crops["iou"][measured].mean()) if measured.any() else None,
            "dice": float(crops["dice"][measured].mean()) if measured.any() else None,
            "real_false_positive_area": float(crops["mask_area_pred"][real].mean()) if real.any() else None,
            "pixel_threshold": pixel_threshold, "num_fake": int(measured.sum()),
            "num_fake_empty_mask": int((fake & ~measured).sum()), "num_real": int(real.sum())}


def subgroups(table):
    """Boolean selections of a table's rows: {"by_method": {...}, "by_compression": {...}}.

    A method's subgroup is its fakes plus every real row; a compression's is
    every row of that compression.
    """
    real, fake = table["label"] == 0, table["label"] == 1
    return {"by_method": {str(method): real | (fake & (table["method"] == method))
                          for method in sorted(set(table["method"][fake]))},
            "by_compression": {str(compression): table["compression"] == compression
                               for compression in sorted(set(table["compression"]))}}


def _with_subgroups(table, figures):
    """figures(table) over all rows, plus by_method and by_compression."""
    section = figures(table)
    for name, selections in subgroups(table).items():
        section[name] = {key: figures({column: values[rows] for column, values in table.items()})
                         for key, rows in selections.items()}
    return section


def calibrate(frames, settings, data_pattern):
    """Calibrates frame, then video thresholds by balanced accuracy (videos may need the frame threshold).

    Returns:
      (calibration, videos): a verdicts.Calibration (not yet saved) and the
      video table scored with its frame threshold.

    Raises:
      verdicts.CalibrationError: when frames or videos lack a class.
    """
    frame = verdicts.calibrate_threshold(frames["label"], frames["score"])
    aggregation = settings["aggregation"]
    videos = video_table(frames, aggregation, frame["threshold"])
    video = verdicts.calibrate_threshold(videos["label"], videos["score"])
    calibration = verdicts.Calibration(
        frame_score=settings["frame_score"], pixel_threshold=settings["pixel_threshold"],
        frame_threshold=frame["threshold"], aggregation=aggregation, video_threshold=video["threshold"],
        frame=frame, video=video, checkpoint=settings["checkpoint"], data_pattern=data_pattern,
        tta=settings["tta"])
    logging.info("calibrated on %s: frame threshold %.4g (balanced accuracy %.4f), "
                 "video threshold %.4g (%.4f)", data_pattern, frame["threshold"], frame["balanced_accuracy"],
                 video["threshold"], video["balanced_accuracy"])
    return calibration, videos


def _json_ready(value):
    """Plain Python for json: numpy scalars unwrapped, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_csv(path, table, columns):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in zip(*(table[column] for column in columns)):
            # Undefined figures (NaN) as empty cells.
            writer.writerow(["" if cell is None else cell for cell in map(_json_ready, row)])


def _figure(width, height):
    # The Agg canvas directly: no pyplot, no global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_curves(path, tables, kind):
    """Frame and video ROC (kind "roc") or precision-recall ("pr") curves in one PNG."""
    figure = _figure(5, 5)
    axes = figure.add_subplot()
    for level, table in tables.items():
        labels, scores = table["label"], table["score"]
        if not _both_classes(labels):
            axes.plot([], [], label=f"{level}: undefined (one class)")
        elif kind == "roc":
            fpr, tpr, _ = metrics.roc_curve(labels, scores)
            axes.plot(fpr, tpr, label=f"{level} (AUC {metrics.roc_auc_score(labels, scores):.3f})")
        else:
            precision, recall, _ = metrics.precision_recall_curve(labels, scores)
            axes.plot(recall, precision,
                      label=f"{level} (AP {metrics.average_precision_score(labels, scores):.3f})")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], color="0.7", linestyle=":")
        axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    else:
        axes.set(xlabel="recall", ylabel="precision", title="precision-recall")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right" if kind == "roc" else "lower left")
    figure.savefig(path, dpi=100)


def plot_overlays(path, examples):
    """Rows of image, true mask and predicted probability for the example crops."""
    figure = _figure(6, 2 * max(len(examples), 1))
    for row, example in enumerate(examples):
        image = example["image"]
        panels = [(image[..., 0] if image.shape[-1] == 1 else image, "image"),
                  (example["mask"], "true mask"), (example["probability"], "predicted")]
        for column, (panel, title) in enumerate(panels):
            axes = figure.add_subplot(len(examples), 3, 3 * row + column + 1)
            axes.imshow(panel, cmap="gray", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(title, fontsize=8)
        figure.axes[3 * row].set_ylabel(f"{'fake' if example['label'] else 'real'} {example['method']}\n"
                                        f"{example['video_id']} #{example['frame_index']}\n"
                                        f"score {example['score']:.3f}", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(_STAMP)


def _keep_aside(path):
    """A free name, `path`-<UTC time of its last change> (and a counter if taken), to keep a result under."""
    stem, suffix = os.path.splitext(path) if os.path.isfile(path) else (path, "")
    base = f"{stem}-{_stamp(os.path.getmtime(path))}"
    candidate, count = f"{base}{suffix}", 1
    while os.path.exists(candidate):
        candidate, count = f"{base}-{count}{suffix}", count + 1
    return candidate


def write_report_folder(folder, report, crops, frames, videos, examples):
    """Writes the report folder atomically (see the module docstring); returns its path."""
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(folder)}-")
    try:
        with open(os.path.join(temporary, "report.json"), "w") as f:
            f.write(json.dumps(_json_ready(report), indent=2, sort_keys=True, allow_nan=False) + "\n")
        _write_csv(os.path.join(temporary, "per_frame.csv"), crops, PER_FRAME_COLUMNS)
        _write_csv(os.path.join(temporary, "per_video.csv"), videos, PER_VIDEO_COLUMNS)
        for kind in ("roc", "pr"):
            plot_curves(os.path.join(temporary, f"{kind}.png"), {"frame": frames, "video": videos}, kind)
        if examples:
            plot_overlays(os.path.join(temporary, "overlays.png"), examples)
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; a report folder is not.
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if os.path.exists(folder):
        kept = _keep_aside(folder)
        os.rename(folder, kept)
        logging.info("kept the earlier report as %s", kept)
    os.rename(temporary, folder)
    return folder


def save_calibration(calibration, run_dir):
    """Saves calibration.json, keeping an earlier one as calibration-<its UTC time>.json."""
    path = os.path.join(run_dir, verdicts.CALIBRATION)
    if os.path.exists(path):
        kept = _keep_aside(path)
        shutil.copy2(path, kept)
        logging.info("kept the earlier calibration as %s", kept)
    return calibration.save(run_dir)


def _rgb(panel):
    """An (H, W), (H, W, 1) or (H, W, 3) panel as (H, W, 3) float32."""
    panel = np.asarray(panel, np.float32)
    panel = panel[..., None] if panel.ndim == 2 else panel
    return np.repeat(panel, 3 // panel.shape[-1], axis=-1)


def write_summaries(run_dir, split, step, report, examples):
    """The report's figures as eval/<split>/<level>_<name> scalars and the overlays as images in tb/eval."""
    from unet_industrial.summaries import SummaryWriter

    writer = SummaryWriter(os.path.join(run_dir, "tb", "eval"))
    writer.scalars(step, {f"eval/{split}/{level}_{name}": report[level][name]
                          for level, names in SUMMARY_SCALARS.items() if level in report for name in names
                          if report[level][name] is not None})
    if examples:
        rows = [np.concatenate([_rgb(e["image"]), _rgb(e["mask"]), _rgb(e["probability"])], axis=1)
                for e in examples]
        writer.images(step, f"eval/{split}/image_true_predicted", np.stack(rows), max_outputs=len(rows))
    writer.close()


def _crop_frame_scores(crops, frames):
    """Each crop's frame score (the maximum over its frame's faces)."""
    by_frame = dict(zip(zip(frames["video_id"], frames["frame_index"].tolist()), frames["score"]))
    return np.array([by_frame[key] for key in zip(crops["video_id"], crops["frame_index"].tolist())])


def _verdicts(scores, threshold):
    return np.where(predicted_fake(scores, threshold), "fake", "real")


def _classification_section(table, threshold):
    """classification_figures of a frame or video table and its subgroups, and the AUC interval.

    The interval is the whole table's only: 1,000 scikit-learn AUCs take
    about 2 s, and a subgroup's interval would add as much again for each
    method and compression.
    """
    section = _with_subgroups(table, lambda rows: classification_figures(rows["label"], rows["score"],
                                                                         threshold))
    section["roc_auc_interval"] = roc_auc_interval(table["label"], table["score"], original_groups(table))
    return section


def _counts(table):
    return {"real": int((table["label"] == 0).sum()), "fake": int((table["label"] == 1).sum())}


def evaluate(config):
    """Runs the evaluation job (see the module docstring).

    Args:
      config: an EvalConfig.

    Returns:
      The report dict written to eval/<split>/report.json.

    Raises:
      ConfigError, verdicts.CalibrationError: for bad input, before anything is written.
    """
    validate(config)
    model_kind = run_files.model_kind(config.run_dir)
    calibration = None if config.calibrate else verdicts.Calibration.load(config.run_dir)
    settings = resolve_settings(config, calibration, model_kind)
    # Keras (and TensorFlow) only once the command line is known to be good.
    from unet_industrial import inference

    trained = inference.load(config.run_dir, settings["checkpoint"])
    logging.info("evaluating %s %s (step %s) on %s with %s", model_kind, trained.checkpoint, trained.step,
                 config.data_pattern, settings)
    if not trained.predicts_masks:
        logging.info("a classifier predicts no masks: the report has no pixel section and no overlays.png")
    degradation = config.degradation
    crops, examples = predict(trained, config.data_pattern, settings, config.batch_size, degradation)
    frames = frame_table(crops)
    if config.calibrate:
        calibration, videos = calibrate(frames, settings, config.data_pattern)
    else:
        videos = video_table(frames, settings["aggregation"], calibration.frame_threshold)
    crops["frame_score"] = _crop_frame_scores(crops, frames)
    crops["verdict"] = _verdicts(crops["frame_score"], calibration.frame_threshold)
    videos["verdict"] = _verdicts(videos["score"], calibration.video_threshold)
    report = {
        "model_kind": model_kind, "split": config.split, "data_pattern": config.data_pattern,
        "degradation": None if degradation is None else dataclasses.asdict(degradation),
        "checkpoint": os.path.relpath(trained.checkpoint, config.run_dir), "step": trained.step,
        "settings": settings, "calibration": dataclasses.asdict(calibration), "calibrated": config.calibrate,
        "counts": {"crops": _counts(crops), "frames": _counts(frames), "videos": _counts(videos)},
        "frame": _classification_section(frames, calibration.frame_threshold),
        "video": _classification_section(videos, calibration.video_threshold),
        "provenance": run_files.provenance(),
    }
    if trained.predicts_masks:
        report["pixel"] = _with_subgroups(crops, lambda table: pixel_figures(table,
                                                                             settings["pixel_threshold"]))
    folder = write_report_folder(os.path.join(config.run_dir, EVAL_DIR, config.report_name), report,
                                 crops, frames, videos, examples)
    if config.calibrate:
        logging.info("calibration written to %s", save_calibration(calibration, config.run_dir))
    write_summaries(config.run_dir, config.report_name, trained.step or 0, report, examples)
    logging.info("%s: frame AUC %s, video AUC %s, pixel IoU %s; report in %s", config.report_name,
                 report["frame"]["roc_auc"], report["video"]["roc_auc"],
                 report["pixel"]["iou"] if "pixel" in report else "(none: a classifier)", folder)
    return report
