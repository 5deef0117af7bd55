"""The evaluation job: predict, group into frames and videos, score, calibrate if asked, write the report."""

import dataclasses
import os

import numpy as np
from absl import logging

from unet_industrial import run_files, verdicts
from unet_industrial.evaluation.calibration import calibrate, records_recipe, save_calibration
from unet_industrial.evaluation.figures import (classification_figures, pixel_figures, predicted_fake,
                                                roc_auc_interval, subgroups)
from unet_industrial.evaluation.prediction import predict
from unet_industrial.evaluation.report import write_report_folder, write_summaries
from unet_industrial.evaluation.settings import EVAL_DIR, resolve_settings, validate
from unet_industrial.evaluation.tables import frame_table, original_groups, video_table


def _with_subgroups(table, figures):
    """figures(table) over all rows, plus by_method and by_compression."""
    section = figures(table)
    for name, selections in subgroups(table).items():
        section[name] = {key: figures({column: values[rows] for column, values in table.items()})
                         for key, rows in selections.items()}
    return section


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
    """Runs the evaluation job (see the package docstring).

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
    crop_recipe = records_recipe(config, calibration)
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
        calibration, videos = calibrate(frames, settings, config.data_pattern, crop_recipe)
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
    folder = write_report_folder(os.path.join(config.output_dir, EVAL_DIR, config.report_name), report,
                                 crops, frames, videos, examples)
    if config.calibrate:
        logging.info("calibration written to %s", save_calibration(calibration, config.run_dir))
    write_summaries(config.output_dir, config.report_name, trained.step or 0, report, examples)
    logging.info("%s: frame AUC %s, video AUC %s, pixel IoU %s; report in %s", config.report_name,
                 report["frame"]["roc_auc"], report["video"]["roc_auc"],
                 report["pixel"]["iou"] if "pixel" in report else "(none: a classifier)", folder)
    return report
