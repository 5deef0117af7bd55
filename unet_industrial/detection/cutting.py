"""A video's face crops, cut exactly as `data_pipeline.prepare` cut the training crops.

Each video is decoded once (`tracking.decode_for_tracking`); the faces are
tracked as prepare tracked them (`tracking_config`) and cut from the
full-resolution frames (`cut_faces`); `cut_video` times it for the job.
"""

import dataclasses
import time

from data_pipeline import faces, tracking, video
from data_pipeline.config import PrepareConfig
from unet_industrial.config import ConfigError


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
      owners: (frame index, `tracking.Face`) of each crop.
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
    indices = video.sample_indices(video.probe(path).frame_count, recipe.frames_per_video)
    report("faces")
    decoded = tracking.decode_for_tracking(path, indices, timer, recipe.detect_every,
                                           recipe.detection_max_side, held_bytes=tracking.HELD_FRAMES_BYTES)
    tracked = tracking.track_decoded(decoded, tracking_config(recipe), timer)
    report("crops")
    cut = CutFaces(list(decoded.indices), [], [], (decoded.shape[1], decoded.shape[0]), [])
    if keep_small_frames:
        cut.small_frames = [(small, decoded.scale) for small in decoded.small_frames]
    decoded.small_frames = []  # the overlay's copies, if asked for, are all that stays
    for index, frame in timer.iterate("decode", tracking.full_frames(decoded)):
        with timer.stage("model"):
            for face in tracked.get(index, ()):
                cut.crops.append(faces.crop_face(frame, face.crop_box, recipe.image_size))
                cut.owners.append((index, face))
    return cut


@dataclasses.dataclass
class CutVideo:
    """A video's faces cut (`cut_faces`), its stage timer, and the seconds cutting took."""

    path: str
    cut: CutFaces
    timer: object
    seconds: float


def cut_video(path, calibration, overlay, report):
    """The first half of `detect_video`: decoding, finding and cutting the faces (no model)."""
    from data_pipeline import extract

    recipe = calibration.recipe
    if recipe is None:
        raise ConfigError("the calibration has no crop recipe: detect would not know how the model's "
                          "crops were cut (see detection.with_recipe)")
    started = time.perf_counter()
    timer = extract.StageTimer()
    cut = cut_faces(path, recipe, timer, keep_small_frames=overlay, report=report)
    return CutVideo(path, cut, timer, time.perf_counter() - started)
