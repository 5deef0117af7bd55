"""Configuration of `python -m data_pipeline.prepare`: a frozen dataclass and its checks."""

import dataclasses
import os

from data_pipeline.layouts import COMPRESSIONS, FFPP_METHODS, READERS

MASK_SOURCES = ("auto", "diff", "provided")
IMAGE_FORMATS = ("png", "jpeg")
# local: a process pool on this machine (shards.process_all); beam: an Apache Beam pipeline
# (data_pipeline.runners.beam) on any Beam runner.
RUNNERS = ("local", "beam")


class PrepareError(ValueError):
    """A preparation that cannot run; its message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What the TFRecords of one output folder depend on.

    Attributes mirror the flags of data_pipeline.prepare (see its --help);
    beam_options are the Beam pipeline options given after `--`.
    """

    layout: str = "ffpp"
    data_dir: str = ""
    out_dir: str = ""
    frames_per_video: int = 32
    frame_stride: int = 0
    image_size: int = 256
    crop_scale: float = 1.3
    detect_every: int = 4
    all_faces: bool = False
    mask_source: str = "auto"
    image_format: str = "png"
    jpeg_quality: int = 95
    drop_empty_fakes: bool = False
    compressions: tuple = COMPRESSIONS
    methods: tuple = FFPP_METHODS
    num_workers: int = 1
    examples_per_shard: int = 1024
    max_videos: int = 0
    runner: str = "local"
    beam_runner: str = "DirectRunner"
    beam_options: tuple = ()

    def output_options(self):
        """The fields that change the records (a rerun with other values must not reuse work)."""
        ignored = {"data_dir", "out_dir", "num_workers", "examples_per_shard", "max_videos", "runner",
                   "beam_runner", "beam_options"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ignored}


def validate(config):
    """Raises PrepareError naming the first problem of a PrepareConfig."""
    if config.layout not in READERS:
        raise PrepareError(f"--layout={config.layout!r} is not one of {', '.join(READERS)}")
    if not config.data_dir or not os.path.isdir(config.data_dir):
        raise PrepareError(f"--data_dir={config.data_dir!r} is not a folder")
    if not config.out_dir:
        raise PrepareError("--out_dir is required")
    if config.mask_source not in MASK_SOURCES:
        raise PrepareError(f"--mask_source={config.mask_source!r} is not one of {', '.join(MASK_SOURCES)}")
    if config.image_format not in IMAGE_FORMATS:
        raise PrepareError(f"--image_format={config.image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
    unknown = set(config.compressions) - set(COMPRESSIONS)
    if unknown:
        raise PrepareError(f"--compressions has unknown values {sorted(unknown)}; use {', '.join(COMPRESSIONS)}")
    for name in ("frames_per_video", "image_size", "detect_every", "num_workers", "examples_per_shard"):
        if getattr(config, name) <= 0:
            raise PrepareError(f"--{name} must be positive")
    if config.frame_stride < 0 or config.max_videos < 0:
        raise PrepareError("--frame_stride and --max_videos must not be negative")
    if config.crop_scale < 1.0:
        raise PrepareError(f"--crop_scale={config.crop_scale} must be at least 1")
    if not 1 <= config.jpeg_quality <= 100:
        raise PrepareError("--jpeg_quality must be in 1..100")
    if config.runner not in RUNNERS:
        raise PrepareError(f"--runner={config.runner!r} is not one of {', '.join(RUNNERS)}")
    if config.runner == "beam":
        _validate_beam(config)
    elif config.beam_options:
        raise PrepareError(f"unexpected arguments: {' '.join(config.beam_options)} "
                           "(pipeline options after -- are for --runner=beam)")


def _validate_beam(config):
    # A Beam run's parallelism is the Beam runner's (e.g. --direct_num_workers); a --num_workers
    # that silently did nothing would leave a big job on one core.
    if config.num_workers != 1:
        raise PrepareError("--num_workers is for --runner=local; with --runner=beam the Beam runner's "
                           "options after -- set the parallelism (e.g. --direct_num_workers=8)")
    stray = [option for option in config.beam_options if not option.startswith("-")]
    if stray:
        raise PrepareError(f"unexpected arguments: {' '.join(stray)} (Beam pipeline options start with --)")
    if any(option.split("=")[0] == "--runner" for option in config.beam_options):
        raise PrepareError("give the Beam runner as --beam_runner=NAME, not as a pipeline option after --")
