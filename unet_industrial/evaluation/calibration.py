"""Thresholds calibrated on an evaluation's data and saved to the run; the records' crop recipe checked."""

import os
import shutil

from absl import logging

from data_pipeline import recipe as recipe_lib
from unet_industrial import run_files, verdicts
from unet_industrial.config import ConfigError
from unet_industrial.evaluation.report import keep_aside
from unet_industrial.evaluation.tables import video_table


def records_recipe(config, calibration):
    """The crop recipe the evaluated records were cut by, checked against the run's; None if neither has one.

    Args:
      config: an EvalConfig.
      calibration: the run's verdicts.Calibration, or None when calibrating.

    Raises:
      ConfigError: when the records' manifest.json names another recipe than
        the calibration (or, calibrating, the run's training records): the
        model would be judged on crops cut otherwise than it learned and detect cuts.
    """
    try:
        data = recipe_lib.of_records(config.data_pattern)
        expected = run_files.crop_recipe(config.run_dir, calibration)
    except recipe_lib.RecipeError as error:
        raise ConfigError(str(error)) from error
    if data is not None and expected is not None and data != expected:
        raise ConfigError(f"--data_pattern={config.data_pattern!r} was cut by another crop recipe ({data}) "
                          f"than {config.run_dir} ({expected}); prepare it with the run's recipe")
    return data or expected


def calibrate(frames, settings, data_pattern, crop_recipe=None):
    """Calibrates frame, then video thresholds by balanced accuracy (videos may need the frame threshold).

    Args:
      frames: the frame table.
      settings: from `resolve_settings`.
      data_pattern: the records calibrated on.
      crop_recipe: their data_pipeline.recipe.CropRecipe, kept so that detect cuts alike; or None.

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
        tta=settings["tta"], crop_recipe=None if crop_recipe is None else crop_recipe.to_dict())
    logging.info("calibrated on %s: frame threshold %.4g (balanced accuracy %.4f), "
                 "video threshold %.4g (%.4f)", data_pattern, frame["threshold"], frame["balanced_accuracy"],
                 video["threshold"], video["balanced_accuracy"])
    return calibration, videos


def save_calibration(calibration, run_dir):
    """Saves calibration.json, keeping an earlier one as calibration-<its UTC time>.json."""
    path = os.path.join(run_dir, verdicts.CALIBRATION)
    if os.path.exists(path):
        kept = keep_aside(path)
        shutil.copy2(path, kept)
        logging.info("kept the earlier calibration as %s", kept)
    return calibration.save(run_dir)
