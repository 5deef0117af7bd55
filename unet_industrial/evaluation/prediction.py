"""One pass of a run's model over records: each face crop's score and pixel figures, overlay examples."""

import time

import numpy as np
from absl import logging

from unet_industrial import verdicts
from unet_industrial.config import ConfigError
from unet_industrial.evaluation import degradations

OVERLAY_EXAMPLES = 8  # half fakes, half reals
_PROGRESS_SECONDS = 10.0
CROP_COLUMNS = ("video_id", "original_id", "frame_index", "face_number", "method", "compression", "label",
                "mask_unknown", "score", "mask_area_true", "mask_area_pred", "iou", "dice")


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
    values.update({name: batch[name] for name in ("frame_index", "face_number", "label", "mask_unknown")})
    # A label-only fake has no true mask: nothing to overlap with.
    unknown = batch["mask_unknown"] == 1
    iou, dice = np.where(unknown, np.nan, iou), np.where(unknown, np.nan, dice)
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
      ConfigError: for data that match nothing, hold no record, hold
        records without a label, or a shard that cannot be read (named).
    """
    from data_pipeline import model_input, reader
    from unet_industrial.training import data

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
    for batch in data.numpy_batches(dataset, data_pattern, trained.input_size, trained.channels):
        unlabelled = batch["label"] < 0
        if unlabelled.any():  # stop at once rather than after a pass over unlabelled data
            raise ConfigError(f"--data_pattern={data_pattern!r} holds records without a label (-1), e.g. of "
                              f"video {batch['video_id'][unlabelled][0].decode()!r}; evaluation needs real / "
                              "fake labels")
        if degradation is not None:
            degraded = degradations.apply(batch["crop"], degradation, noise_rng)
            batch["image"] = np.asarray(model_input.to_model_input(degraded, trained.input_size,
                                                                   trained.channels))
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
                    chosen.append({"image": model_input.model_range_to_unit(batch["image"][i]),
                                   "mask": true[i], "probability": probabilities[i], "label": int(label),
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
