r"""Says whether a video, or each video of a folder, is a deepfake, with a trained and calibrated run.

    python -m unet_industrial.detect --video=clip.mp4    # the detector that ships in the package

    python -m unet_industrial.detect --run_dir=runs/ffpp-c23 --video=clip.mp4 \
        --overlay_out=clip-overlay.mp4 --json_out=clip.json

    python -m unet_industrial.detect --run_dir=runs/ffpp-c23 --video=/data/inbox --csv_out=inbox.csv

Prints one line per video, e.g.
    clip.mp4: fake (score 0.231 >= threshold 0.120, mean over 32 frames, 31 with a face)
    other.mp4: no face found in 32 frames; no verdict
then "wrote PATH" for each file written. A folder's CSV goes to
runs/NAME/detections/<folder name>-<UTC time>.csv (with the shipped detector,
runs/detections/...) unless --csv_out names one.
See unet_industrial/detection/__init__.py for what each output holds.

This module only parses flags into a DetectConfig and calls the library; a
bad value, a run without a model or calibration, a missing path or a single
file that is not a video gets one line on stderr and exit status 2, before
anything is written.
"""

import dataclasses
import os

# Before Keras or TensorFlow are imported anywhere: keep TensorFlow's C++
# start-up chatter out of the user's terminal unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# FFmpeg (inside OpenCV) would print its own complaints about a broken file;
# detection reports such a file itself, in one line.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402

from data_pipeline.video import VideoError  # noqa: E402
from unet_industrial import detection  # noqa: E402
from unet_industrial.config import CHECKPOINTS, ConfigError  # noqa: E402
from unet_industrial.verdicts import CalibrationError  # noqa: E402

_D = detection.DetectConfig()

flags.DEFINE_string("run_dir", "", "Trained run folder with calibration.json; empty for the detector that "
                    "ships in the package (unet_industrial/pretrained/ffpp_c23).")
flags.DEFINE_string("video", _D.video, "A video file, or a folder searched recursively for videos.")
flags.DEFINE_integer("frames_per_video", _D.frames_per_video,
                     "Evenly spaced frames sampled per video; 0 takes the run's crop recipe (the count its "
                     "video threshold was calibrated for), and any other value must equal it.")
flags.DEFINE_enum("checkpoint", _D.checkpoint, CHECKPOINTS,
                  "best (falls back to last for runs trained without evaluation) or last.")
flags.DEFINE_string("overlay_out", _D.overlay_out,
                    "An .mp4 of the sampled frames with face boxes and the predicted fake pixels in red "
                    "(a classifier run: boxes and scores only); for a folder of videos, a new folder of one "
                    ".mp4 per video.")
flags.DEFINE_string("json_out", _D.json_out,
                    "JSON report: per-frame scores and face boxes, video scores and verdicts, timings.")
flags.DEFINE_string("csv_out", _D.csv_out,
                    "CSV, one row per video; for a folder, default runs/NAME/detections/<folder>-<time>.csv.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    values = {field.name: FLAGS[field.name].value for field in dataclasses.fields(detection.DetectConfig)}
    config = detection.DetectConfig(**{**values, "run_dir": values["run_dir"] or _D.run_dir})
    try:
        detection.detect(config)
    except (ConfigError, CalibrationError, VideoError) as error:
        cli.fail(error)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
