"""The detect job: the verdict on one video (`detect_video`), and on a video or a folder with the outputs
asked for (`detect`), the next video of a folder cut while the current one is scored."""

import collections
import concurrent.futures
import csv
import dataclasses
import io
import os
import time

import numpy as np
from absl import logging

from data_pipeline import files, video
from unet_industrial import verdicts
from unet_industrial.detection import cutting
from unet_industrial.detection.config import default_csv_path, find_videos, validate, with_recipe
from unet_industrial.detection.overlay import draw, write_overlay
from unet_industrial.detection.results import CSV_COLUMNS, NO_FACE, FaceResult, FrameResult, VideoResult

# Model input pixels per call (64 crops at the shipped detector's 64-pixel
# input, 4 at 256): bounds the activations held at once, which grow with the
# input's area: at 256 pixels, a fixed 64 crops a call held far more memory
# and was no faster (BENCHMARKS.md, "detect per video").
MODEL_CHUNK_PIXELS = 64 * 64 * 64


def crops_per_call(input_size):
    """Crops the model takes in one call at this input size (`MODEL_CHUNK_PIXELS`), at least one."""
    return max(1, MODEL_CHUNK_PIXELS // (input_size * input_size))


def detect_video(path, model, calibration, overlay=False, progress=None):
    """Detects on one video, cutting its faces by the calibration's crop recipe.

    Args:
      path: the video file.
      model: an `inference.TrainedModel`.
      calibration: the run's `verdicts.Calibration`, with its crop recipe
        (see `with_recipe`): how many frames to sample and how to cut them.
      overlay: also draw the overlay frames.
      progress: called with each stage's name as it starts: "faces" (decoding
        the sampled frames and finding the faces), "crops" (cutting the faces
        at full resolution), "model", "overlay".

    Returns:
      (VideoResult, overlay frames): the frames are RGB uint8 arrays at
      detection size, one per decoded sampled frame, or None unless asked.

    Raises:
      ConfigError: for a calibration without a crop recipe.
      video.VideoError: for a file that cannot be opened or has no decodable frame.
    """
    report = progress or (lambda stage: None)
    cut_video = cutting.cut_video(path, calibration, overlay, report)
    return _score_video(cut_video, model, calibration, overlay, report)


def _score_video(cut_video, model, calibration, overlay, report):
    """The second half of `detect_video`: the model's scores, the verdict, the overlay."""
    path, cut, timer = cut_video.path, cut_video.cut, cut_video.timer
    started = time.perf_counter()
    report("model")
    with timer.stage("model"):
        crop_scores, fake_areas = _score_crops(model, calibration, cut.crops, keep_areas=overlay)
    keys, frame_scores = verdicts.max_over_faces([index for index, _ in cut.owners], crop_scores)
    score_of = dict(zip(keys, frame_scores.tolist()))
    faces_of, areas_of = collections.defaultdict(list), collections.defaultdict(list)
    for (index, face), score, area in zip(cut.owners, crop_scores, fake_areas):
        faces_of[index].append(FaceResult(face.number, face.box, face.crop_box, float(score)))
        areas_of[index].append(area)
    frames = tuple(FrameResult(index, tuple(faces_of[index]), score_of.get(index)) for index in cut.indices)
    score = verdict = None
    if keys:
        score = verdicts.video_score(frame_scores, calibration.aggregation, calibration.frame_threshold)
        verdict = verdicts.verdict(score, calibration.video_threshold)
    drawn = None
    if overlay:
        report("overlay")
        with timer.stage("overlay"):
            drawn = [draw(small, scale, frame, areas_of[frame.index])
                     for (small, scale), frame in zip(cut.small_frames, frames)]
    # A folder's next video is cut while this one is scored: its total counts its own work, not the wait.
    seconds = {**timer.seconds, "total": cut_video.seconds + time.perf_counter() - started}
    result = VideoResult(path, frames, score, verdict, calibration.video_threshold, calibration.aggregation,
                         cut.size, seconds, reason="" if keys else NO_FACE)
    return result, drawn


def _score_crops(model, calibration, crops, keep_areas):
    """Each crop's score, and its fake area (probability > pixel_threshold, a bool mask) or None.

    A classifier's crops have no fake area: None.
    """
    scores, areas, threshold = [], [], calibration.pixel_threshold
    keep_areas = keep_areas and model.predicts_masks
    chunk = crops_per_call(model.input_size)
    for start in range(0, len(crops), chunk):
        probabilities = model.probabilities(np.stack(crops[start:start + chunk]), calibration.tta)
        scores.extend(verdicts.frame_scores(probabilities, calibration.frame_score, threshold))
        areas.extend(probabilities > threshold if keep_areas else [None] * len(probabilities))
    return scores, areas


def json_report(run_dir, model, calibration, results):
    """The JSON report detect writes (--json_out), and serve returns.

    Args:
      run_dir: the run folder.
      model: its `inference.TrainedModel`.
      calibration: the calibration with its crop recipe (`with_recipe`).
      results: the VideoResults.

    Returns:
      A dict: the run, checkpoint and its step, the calibration, the frames
      per video, and each video's record.
    """
    return {"run_dir": run_dir, "checkpoint": model.checkpoint, "checkpoint_step": model.step,
            "calibration": dataclasses.asdict(calibration),
            "frames_per_video": calibration.recipe.frames_per_video,
            "videos": [result.record() for result in results]}


def _overlay_path(config, relative):
    """Where a video's overlay goes: the flag's file, or the video's relative path under the flag's folder."""
    if not os.path.isdir(config.video):
        return config.overlay_out
    stem, extension = os.path.splitext(relative)
    # x.mp4 keeps its name; x.avi becomes x.avi.mp4, so that x.mp4 and x.avi do not collide.
    name = f"{stem}.mp4" if extension.lower() == ".mp4" else f"{relative}.mp4"
    return os.path.join(config.overlay_out, name)


def _csv_text(results):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.csv_row() for result in results)
    return buffer.getvalue()


def _cut_ahead(videos, calibration, overlay):
    """Yields (path, relative path, its `cutting.CutVideo` or the `video.VideoError` that stopped it),
    cutting the next video in a thread while the caller scores the current one.

    Decoding (PyAV) and MTCNN (TensorFlow) release the GIL, so the two overlap on two cores.
    """
    def cut(path):
        try:
            return cutting.cut_video(path, calibration, overlay, lambda stage: None)
        except video.VideoError as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(cut, videos[0][0])
        for position, (path, relative) in enumerate(videos):
            cut_video = pending.result()
            if position + 1 < len(videos):
                pending = pool.submit(cut, videos[position + 1][0])
            yield path, relative, cut_video


def detect(config, report=print):
    """Runs the detect job: checks the input, detects on each video, writes the outputs asked for.

    Args:
      config: a DetectConfig.
      report: called with each line for the user (a verdict per video as
        it is done, then "wrote PATH" per file written).

    Returns:
      The VideoResults, one per video.

    Raises:
      ConfigError: for a bad flag value, a run without a model, an output
        that exists, a folder without videos.
      verdicts.CalibrationError: for a run without a usable calibration.
      video.VideoError: for a single video that cannot be read.
      All before anything is written.
    """
    validate(config)
    calibration = with_recipe(config.run_dir, verdicts.Calibration.load(config.run_dir),
                              config.frames_per_video)
    folder = os.path.isdir(config.video)
    videos = find_videos(config.video)
    if folder and not config.csv_out:
        config = dataclasses.replace(config, csv_out=default_csv_path(config.run_dir, config.video))
    elif not folder:
        video.probe(config.video)  # A file that is no video is refused before the model loads.
    from unet_industrial import inference  # Keras: seconds to import, paid once the input is known good.

    model = inference.load(config.run_dir, config.checkpoint)
    logging.info("detecting with %s (step %s), %s >= %.4g is fake", model.checkpoint, model.step,
                 calibration.aggregation, calibration.video_threshold)
    results = []
    overlay = bool(config.overlay_out)
    for path, relative, cut_video in _cut_ahead(videos, calibration, overlay):
        if isinstance(cut_video, video.VideoError):
            if not folder:
                raise cut_video
            result, drawn = VideoResult.unread(path, cut_video, calibration), None
        else:
            result, drawn = _score_video(cut_video, model, calibration, overlay, lambda stage: None)
        logging.info("%s: %s", path, ", ".join(f"{stage} {s:.2f} s" for stage, s in result.seconds.items()))
        report(result.line())
        if drawn:
            overlay_path = _overlay_path(config, relative)
            write_overlay(overlay_path, drawn)
            report(f"wrote {overlay_path}")
        results.append(result)
    if config.json_out:
        files.write_json(config.json_out, json_report(config.run_dir, model, calibration, results))
        report(f"wrote {config.json_out}")
    if config.csv_out:
        files.atomic_write(config.csv_out, _csv_text(results))
        report(f"wrote {config.csv_out}")
    return results
