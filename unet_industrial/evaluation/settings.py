"""What an evaluation job reads and how it scores: EvalConfig, its checks, and the scoring settings."""

import dataclasses
import math
import os
import re

from unet_industrial import run_files, verdicts
from unet_industrial.config import CHECKPOINTS, ConfigError, check_pattern
from unet_industrial.evaluation import degradations

EVAL_DIR = "eval"
# Reports on the shipped detector, which lives inside the installed package, go here instead.
SHIPPED_REPORTS = os.path.join("runs", "pretrained-ffpp_c23")
# Used by a calibration run for each setting the command line leaves out.
DEFAULT_SETTINGS = {"checkpoint": "best", "frame_score": "area", "pixel_threshold": 0.5,
                    "aggregation": "mean", "tta": "none"}
# A classifier's, which no flag may change: it scores a crop by its own probability, with no mask.
CLASSIFIER_SETTINGS = {"frame_score": verdicts.CLASSIFIER_FRAME_SCORE, "pixel_threshold": None}
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What an evaluation job reads and how it scores.

    Attributes:
      run_dir: the training run folder (runs/NAME); by default the shipped
        detector, whose reports go to SHIPPED_REPORTS (`output_dir`).
      data_pattern: glob of the TFRecord shards to evaluate on (required).
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

    run_dir: str = run_files.SHIPPED_RUN_DIR
    data_pattern: str = ""
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
    def output_dir(self):
        """Where eval/ and tb/ go: the run folder, or for the shipped detector (inside the installed
        package, never written to) SHIPPED_REPORTS under the working directory."""
        return SHIPPED_REPORTS if self.shipped else self.run_dir

    @property
    def shipped(self):
        return os.path.abspath(self.run_dir) == run_files.SHIPPED_RUN_DIR

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
    if config.shipped and config.calibrate:
        raise ConfigError("the shipped detector's calibration is part of the package and is not "
                          "recalibrated; copy its folder to runs/ and pass that as --run_dir")
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
