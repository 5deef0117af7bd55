"""The detect job: a trained, calibrated run's verdict on a video or on each video of a folder.

Faces are cut exactly as `data_pipeline.prepare` cut the run's training
crops, by the crop recipe (`data_pipeline.recipe.CropRecipe`) that prepare
wrote into its manifest, training copied into the run and calibration kept
(`with_recipe`): the recipe's frames_per_video evenly spaced frames
(`video.sample_indices`), MTCNN on a copy of at most its detection_max_side
pixels with the faces tracked through the frames as prepare tracked them
(`extract.track`), all faces, each box squared and enlarged by its
crop_scale (`faces.square_box`), cut from the full-resolution frame at its
image_size (`faces.crop_face`, `cut_faces`), then fed through the reader's
own transform (`data_pipeline.model_input.to_model_input`). Then, with the
run's calibration.json (`verdicts.Calibration`): a crop's score
(`verdicts.frame_scores`), a frame's the maximum over its faces
(`verdicts.max_over_faces`), the video's the calibrated aggregation of its
frames' scores (`verdicts.video_score`), and the verdict "fake" when that
reaches the video threshold. A video in which no sampled frame has a face
gets no verdict, never a guess. Without --run_dir, the detector that ships
in the package (`run_files.SHIPPED_RUN_DIR`) is used.

Memory: each video is decoded once (`extract.decode_for_tracking`): every
sampled frame is shrunk to its detection-size copy as it is decoded, and the
full-resolution frames are held only up to `extract.HELD_FRAMES_BYTES` to cut
the crops after tracking; frames beyond that (very large or very many) are
decoded a second time, one at a time. The detection-size copies are held for
tracking, and for the overlay when one is asked for. At most
`MAX_FRAMES_PER_VIDEO` frames are sampled. A folder is pipelined: the next
video is decoded and its faces found while the current one is scored, so
two videos' frames are in memory at most.

Outputs (each optional; none is written before the input is checked, and
none replaces an existing file):
  stdout        one line per video, then "wrote PATH" per file written.
  json_out      the run, checkpoint and calibration, and per video: the
                score, verdict, threshold, aggregation, seconds per stage
                (decode, detect, model) and per sampled frame its score and
                faces (tracked box, crop box, score).
  csv_out       one row per video (`CSV_COLUMNS`); for a folder it defaults
                to runs/NAME/detections/<folder name>-<UTC time>.csv.
  overlay_out   the sampled frames (at detection size) with each crop box,
                the pixels the model calls fake tinted red, and the scores:
                an .mp4 for one video; for a folder, a folder of one .mp4
                per video at the video's relative path. A classifier run
                (`--model_kind=classifier`) predicts no fake pixels: its
                overlay has the boxes and scores alone.
A file of a folder that cannot be read is a row with its reason and the run
goes on; a single video that cannot be read is an error.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import datetime
import io
import os
import time

import cv2
import numpy as np
from absl import logging

from data_pipeline import faces, files, layouts, video
from data_pipeline.config import PrepareConfig
from unet_industrial import run_files
from unet_industrial import verdicts
from unet_industrial.config import CHECKPOINTS, ConfigError

# Every sampled frame is held (at detection size, up to 1280 x 720 x 3
# bytes) until its video is done: 300 of them are about 0.8 GB.
MAX_FRAMES_PER_VIDEO = 300
# Crops per model call: bounds the float probabilities held at once.
MODEL_CHUNK = 64
CSV_COLUMNS = ("path", "verdict", "score", "threshold", "frames", "frames_with_face", "reason", "detail")
DETECTIONS_DIR = "detections"
NO_FACE = "no_face"
# Slow enough to look at each sampled frame.
OVERLAY_FPS = 2
# RGB colours and the tint's opacity.
BOX_COLOUR = (0, 255, 0)
FAKE_COLOUR = np.array([255, 0, 0], np.float32)
TINT_OPACITY = 0.5


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """What a detect run depends on; the fields are the flags of `python -m unet_industrial.detect`.

    Attributes:
      run_dir: a trained run folder with calibration.json; by default the
        detector that ships in the package (`run_files.SHIPPED_RUN_DIR`).
      video: a video file, or a folder searched recursively for videos
        (`layouts.VIDEO_EXTENSIONS`).
      frames_per_video: 0 for the crop recipe's (the count the video
        threshold was calibrated for); any other value must equal it.
      checkpoint: "best" (falling back to "last" for runs without
        evaluation) or "last".
      overlay_out: an .mp4 to write for one video, a folder for a folder;
        "" for none.
      json_out: the JSON report to write; "" for none.
      csv_out: the CSV to write; "" for none with one video, the default
        under run_dir with a folder.
    """

    run_dir: str = run_files.SHIPPED_RUN_DIR
    video: str = ""
    frames_per_video: int = 0
    checkpoint: str = "best"
    overlay_out: str = ""
    json_out: str = ""
    csv_out: str = ""


@dataclasses.dataclass(frozen=True)
class FaceResult:
    """One face in one sampled frame.

    Attributes:
      number: its track: 0 for the most prominent face, 1, 2, ... for others.
      box: the tracked face box (x0, y0, x1, y1), full-resolution pixels.
      crop_box: the square x1.3 integer box the model's crop was cut from.
      score: the crop's score (`verdicts.frame_scores`).
    """

    number: int
    box: tuple
    crop_box: tuple
    score: float


@dataclasses.dataclass(frozen=True)
class FrameResult:
    """One sampled frame: its index in the video, its faces, and its score (None without a face)."""

    index: int
    faces: tuple
    score: float | None


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What detection found in one video.

    Attributes:
      path: the video file.
      frames: a FrameResult per decoded sampled frame.
      score: the video score; None without a verdict.
      verdict: "fake", "real", or None (no face, or the file was not read).
      threshold, aggregation: the calibrated rule the verdict follows.
      size: (width, height) of the frames; None if none was decoded.
      seconds: time per stage and "total": "decode" (both passes over the
        file), "detect" (MTCNN and tracking), "model" (cutting the crops and
        the network), "overlay" (drawing, when asked); empty when unread.
      reason, detail: why there is no verdict: NO_FACE, or a
        `video.VideoError` reason for a file that could not be read.
    """

    path: str
    frames: tuple
    score: float | None
    verdict: str | None
    threshold: float
    aggregation: str
    size: tuple | None
    seconds: dict
    reason: str = ""
    detail: str = ""

    @classmethod
    def unread(cls, path, error, calibration):
        """The result for a file that could not be read (a `video.VideoError`)."""
        return cls(path, (), None, None, calibration.video_threshold, calibration.aggregation, None, {},
                   error.reason, error.detail)

    @property
    def frames_with_face(self):
        return sum(frame.score is not None for frame in self.frames)

    def line(self):
        """The one line printed for this video."""
        if self.verdict is not None:
            relation = ">=" if self.verdict == "fake" else "<"
            return (f"{self.path}: {self.verdict} (score {self.score:.3f} {relation} threshold "
                    f"{self.threshold:.3f}, {self.aggregation} over {len(self.frames)} frames, "
                    f"{self.frames_with_face} with a face)")
        if self.reason == NO_FACE:
            return f"{self.path}: no face found in {len(self.frames)} frames; no verdict"
        return f"{self.path}: not read ({self.reason}: {self.detail}); no verdict"

    def csv_row(self):
        """The video's row of the CSV (`CSV_COLUMNS`); verdict and score are empty without a verdict."""
        return {"path": self.path, "verdict": self.verdict or "",
                "score": "" if self.score is None else self.score, "threshold": self.threshold,
                "frames": len(self.frames), "frames_with_face": self.frames_with_face, "reason": self.reason,
                "detail": self.detail}

    def record(self):
        """A JSON-able dict of everything above."""
        return {**dataclasses.asdict(self), "frames_with_face": self.frames_with_face}


def default_csv_path(run_dir, folder, now=None):
    """runs/NAME/detections/<folder name>-<UTC time>.csv: where a folder's CSV goes unless told.

    For the shipped detector, runs/detections/... under the working directory.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    name = os.path.basename(os.path.normpath(folder))
    # The shipped detector lives in the installed package: its detections go to the working directory's runs/.
    parent = "runs" if os.path.abspath(run_dir) == run_files.SHIPPED_RUN_DIR else run_dir
    return os.path.join(parent, DETECTIONS_DIR, f"{name}-{now:%Y%m%d-%H%M%S}.csv")


def validate(config):
    """Checks a DetectConfig before anything is read or written.

    Raises:
      ConfigError: naming the first problem.
    """
    if not config.run_dir:
        raise ConfigError("--run_dir is required")
    if not os.path.isdir(config.run_dir):
        if config.run_dir == run_files.SHIPPED_RUN_DIR:
            raise ConfigError(f"the shipped detector {config.run_dir} is missing from this installation; "
                              "name a trained run with --run_dir")
        raise ConfigError(f"--run_dir={config.run_dir!r} is not a folder")
    if not config.video:
        raise ConfigError("--video is required (a video file or a folder of videos)")
    if not os.path.exists(config.video):
        raise ConfigError(f"--video={config.video!r} does not exist")
    if config.checkpoint not in CHECKPOINTS:
        raise ConfigError(f"--checkpoint={config.checkpoint!r} is not one of {', '.join(CHECKPOINTS)}")
    # As `inference.load` will look ("best" falls back to "last"), but before Keras loads.
    usable = CHECKPOINTS if config.checkpoint == "best" else (config.checkpoint,)
    if not any(os.path.exists(run_files.checkpoint_path(config.run_dir, which)) for which in usable):
        raise ConfigError(f"{config.run_dir} has no trained model "
                          f"({run_files.CHECKPOINT_DIR}/{run_files.LAST_CHECKPOINT} is missing)")
    if not 0 <= config.frames_per_video <= MAX_FRAMES_PER_VIDEO:
        raise ConfigError(f"--frames_per_video={config.frames_per_video} must be between 1 and "
                          f"{MAX_FRAMES_PER_VIDEO} (the sampled frames of a video are held in memory), "
                          "or 0 for the run's crop recipe")
    overlay = config.overlay_out
    folder = os.path.isdir(config.video)
    if overlay and folder and (os.path.isfile(overlay) or (os.path.isdir(overlay) and os.listdir(overlay))):
        raise ConfigError(f"--overlay_out={overlay!r} must be a new or empty folder for a folder of videos")
    if overlay and not folder and not overlay.lower().endswith(".mp4"):
        raise ConfigError(f"--overlay_out={overlay!r} must name an .mp4 file")
    files = {"json_out": config.json_out, "csv_out": config.csv_out, "overlay_out": "" if folder else overlay}
    for name, path in files.items():
        if path and os.path.exists(path):
            raise ConfigError(f"--{name}={path!r} exists; detection never replaces a file, "
                              "choose another path")


def with_recipe(run_dir, calibration, frames_per_video=0):
    """The calibration, carrying the crop recipe detect must follow.

    The recipe is the calibration's own, else (a calibration written before
    recipes were kept) the one training copied into the run's config.json.

    Args:
      run_dir: the run folder.
      calibration: its `verdicts.Calibration`.
      frames_per_video: 0, or a count that must equal the recipe's.

    Raises:
      ConfigError: for a run without a recipe, or another frame count.
    """
    recipe = calibration.recipe
    if recipe is None:
        stored = run_files.crop_recipe(run_dir)
        if stored is None:
            raise ConfigError(f"{run_dir} records no crop recipe (its records were prepared before recipes "
                              "were kept): detect cannot know how its crops were cut; prepare the data "
                              "again and retrain, or recalibrate on records with a manifest.json")
        calibration = dataclasses.replace(calibration, crop_recipe=stored.to_dict())
        recipe = stored
    if frames_per_video and frames_per_video != recipe.frames_per_video:
        raise ConfigError(f"--frames_per_video={frames_per_video} differs from the {recipe.frames_per_video} "
                          f"frames per video that {run_dir} was calibrated on (its video threshold holds for "
                          "that count); leave --frames_per_video out")
    return calibration


def find_videos(path):
    """(file, path relative to the folder) of each video to detect on: `path` itself or a folder's videos.

    A folder's linked file that leads out of the folder is not detected on:
    a warning names it (the layouts' one rule for paths).

    Raises:
      ConfigError: for a folder without videos.
    """
    if not os.path.isdir(path):
        return [(path, os.path.basename(path))]
    scan = layouts.read_folder(path)
    for skip in scan.skipped:
        logging.warning("skipping %s: %s (%s)", skip.video_id, skip.reason, skip.detail)
    found = [(item.path, item.video_id) for item in scan.items]
    if not found:
        raise ConfigError(f"--video={path!r} holds no video ({', '.join(layouts.VIDEO_EXTENSIONS)})")
    return found


def tracking_config(recipe):
    """The tracking prepare used (the recipe's), keeping every face: any of them may be the fake one."""
    return PrepareConfig(detect_every=recipe.detect_every, all_faces=True, crop_scale=recipe.crop_scale,
                         frames_per_video=recipe.frames_per_video, image_size=recipe.image_size)


@dataclasses.dataclass
class CutFaces:
    """The face crops of one video, cut as prepare cut them.

    Attributes:
      indices: the decoded sampled frames' indices.
      crops: RGB uint8 crops at the recipe's image_size, one per face.
      owners: (frame index, `extract.Face`) of each crop.
      size: (width, height) of the frames; None if none was decoded.
      small_frames: (detection-size copy, its scale) per decoded frame, when asked for (overlays).
    """

    indices: list
    crops: list
    owners: list
    size: tuple | None
    small_frames: list


def cut_faces(path, recipe, timer, keep_small_frames=False, report=lambda stage: None):
    """Samples a video's frames and cuts its faces exactly as `data_pipeline.prepare` cut training crops.

    Args:
      path: the video file.
      recipe: the run's `data_pipeline.recipe.CropRecipe`.
      timer: an `extract.StageTimer`.
      keep_small_frames: also keep each frame's detection-size copy (for overlays).
      report: called with "faces", then "crops", as each stage starts.

    Returns:
      A CutFaces.

    Raises:
      video.VideoError: for a file that cannot be opened or has no decodable frame.
    """
    # TensorFlow (under the data pipeline's schema) loads for seconds; the
    # command line is checked before this module pays for it.
    from data_pipeline import extract

    indices = video.sample_indices(video.probe(path).frame_count, recipe.frames_per_video)
    report("faces")
    decoded = extract.decode_for_tracking(path, indices, timer, recipe.detection_max_side,
                                          held_bytes=extract.HELD_FRAMES_BYTES)
    tracked = extract.track_decoded(decoded, tracking_config(recipe), timer)
    report("crops")
    cut = CutFaces(list(decoded.indices), [], [], (decoded.shape[1], decoded.shape[0]), [])
    if keep_small_frames:
        cut.small_frames = [(small, decoded.scale) for small in decoded.small_frames]
    decoded.small_frames = []  # the overlay's copies, if asked for, are all that stays
    for index, frame in timer.iterate("decode", extract.full_frames(decoded)):
        with timer.stage("model"):
            for face in tracked.get(index, ()):
                cut.crops.append(faces.crop_face(frame, face.crop_box, recipe.image_size))
                cut.owners.append((index, face))
    return cut


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
    return _score_video(_cut_video(path, calibration, overlay, report), model, calibration, overlay, report)


@dataclasses.dataclass
class _CutVideo:
    """A video's faces cut (`cut_faces`), its stage timer, and the seconds cutting took."""

    path: str
    cut: CutFaces
    timer: object
    seconds: float


def _cut_video(path, calibration, overlay, report):
    """The first half of `detect_video`: decoding, finding and cutting the faces (no model)."""
    from data_pipeline import extract

    recipe = calibration.recipe
    if recipe is None:
        raise ConfigError("the calibration has no crop recipe: detect would not know how the model's "
                          "crops were cut (see detection.with_recipe)")
    started = time.perf_counter()
    timer = extract.StageTimer()
    cut = cut_faces(path, recipe, timer, keep_small_frames=overlay, report=report)
    return _CutVideo(path, cut, timer, time.perf_counter() - started)


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
            drawn = [_draw(small, scale, frame, areas_of[frame.index])
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
    for start in range(0, len(crops), MODEL_CHUNK):
        probabilities = model.probabilities(np.stack(crops[start:start + MODEL_CHUNK]), calibration.tta)
        scores.extend(verdicts.frame_scores(probabilities, calibration.frame_score, threshold))
        areas.extend(probabilities > threshold if keep_areas else [None] * len(probabilities))
    return scores, areas


def _put_text(image, text, origin):
    """Text readable on any background: white over a black outline."""
    for colour, thickness in (((0, 0, 0), 4), ((255, 255, 255), 1)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, thickness, cv2.LINE_AA)


def _draw(image, scale, frame, fake_areas):
    """Draws one frame's overlay in place on its detection-size copy and returns it.

    Args:
      image: the RGB frame at detection size (`scale` x full resolution).
      scale: its scale.
      frame: the frame's FrameResult.
      fake_areas: per face, the bool mask of fake pixels of its crop, or None (a classifier's).
    """
    height, width = image.shape[:2]
    for face, fake in zip(frame.faces, fake_areas):
        x0, y0, x1, y1 = (int(round(v * scale)) for v in face.crop_box)
        x1, y1 = min(x1, width), min(y1, height)
        if fake is not None:
            region = image[y0:y1, x0:x1]
            inside = cv2.resize(fake.astype(np.uint8), (x1 - x0, y1 - y0),
                                interpolation=cv2.INTER_NEAREST) > 0
            tinted = region[inside] * (1 - TINT_OPACITY) + FAKE_COLOUR * TINT_OPACITY
            region[inside] = tinted.astype(np.uint8)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BOX_COLOUR, 2)
        _put_text(image, f"{face.score:.3f}", (x0 + 4, y1 - 8))
    caption = "no face" if frame.score is None else f"score {frame.score:.3f}"
    _put_text(image, f"frame {frame.index}: {caption}", (8, 24))
    return image


def write_overlay(path, frames):
    """Writes overlay frames as an H.264 .mp4, through a temporary file renamed when complete.

    libx264's 4:2:0 pixels need an even width and height: an odd last row
    or column is left out.
    """
    from data_pipeline import synthetic_video

    height, width = (side - side % 2 for side in frames[0].shape[:2])
    with synthetic_video.VideoWriter(path, (width, height), synthetic_video.COMPRESSIONS["c23"],
                                     fps=OVERLAY_FPS) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:height, :width]))


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
    """Yields (path, relative path, its `_CutVideo` or the `video.VideoError` that stopped it), cutting the
    next video in a thread while the caller scores the current one.

    Decoding (PyAV) and MTCNN (TensorFlow) release the GIL, so the two overlap on two cores.
    """
    def cut(path):
        try:
            return _cut_video(path, calibration, overlay, lambda stage: None)
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
        files.write_json(config.json_out, {
            "run_dir": config.run_dir, "checkpoint": model.checkpoint, "checkpoint_step": model.step,
            "calibration": dataclasses.asdict(calibration),
            "frames_per_video": calibration.recipe.frames_per_video,
            "videos": [result.record() for result in results]})
        report(f"wrote {config.json_out}")
    if config.csv_out:
        files.atomic_write(config.csv_out, _csv_text(results))
        report(f"wrote {config.csv_out}")
    return results
