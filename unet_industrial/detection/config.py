"""What a detect run depends on: its config (`DetectConfig`), the checks before anything is read, the run's
crop recipe (`with_recipe`), the videos to detect on and where a folder's CSV goes."""

import dataclasses
import datetime
import os

from absl import logging

from data_pipeline import layouts
from unet_industrial import run_files
from unet_industrial.config import CHECKPOINTS, ConfigError

# Every sampled frame is held (at detection size, up to 1280 x 720 x 3
# bytes) until its video is done: 300 of them are about 0.8 GB.
MAX_FRAMES_PER_VIDEO = 300
DETECTIONS_DIR = "detections"


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
    run_files.check_run_folder(config.run_dir, config.checkpoint)
    if not config.video:
        raise ConfigError("--video is required (a video file or a folder of videos)")
    if not os.path.exists(config.video):
        raise ConfigError(f"--video={config.video!r} does not exist")
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
    recipe = run_files.crop_recipe(run_dir, calibration)
    if recipe is None:
        raise ConfigError(f"{run_dir} records no crop recipe (its records were prepared before recipes "
                          "were kept): detect cannot know how its crops were cut; prepare the data "
                          "again and retrain, or recalibrate on records with a manifest.json")
    if frames_per_video and frames_per_video != recipe.frames_per_video:
        raise ConfigError(f"--frames_per_video={frames_per_video} differs from the {recipe.frames_per_video} "
                          f"frames per video that {run_dir} was calibrated on (its video threshold holds for "
                          "that count); leave --frames_per_video out")
    return dataclasses.replace(calibration, crop_recipe=recipe.to_dict())


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
