r"""A local web page that says whether a video is a deepfake, with a trained and calibrated run.

    python -m unet_industrial.serve --run_dir=runs/ffpp-c23
    # serving http://127.0.0.1:8000/ with runs/ffpp-c23 (uploads up to 256 MB); Ctrl-C stops

Open the address, drop or pick videos: they are detected one at a time,
as `detect` does (the frames and crops of the run's recipe), each with its
verdict against the calibrated threshold, a plot of the per-frame scores,
the overlay video, the highest-scoring frames and the JSON report of
`python -m unet_industrial.detect`. Scripts get that JSON
from `POST /api/detect` (`curl -F video=@clip.mp4 http://127.0.0.1:8000/api/detect`).
See unet_industrial/serving/app.py for every route and docs/serving.md for more.

It listens on 127.0.0.1 unless --host says otherwise. This module only
parses flags into a ServeConfig and calls the library; a bad value or a run
without a model or calibration gets one line on stderr and exit status 2.
"""

import dataclasses
import os
import signal

# Before Keras or TensorFlow are imported anywhere (see detect.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial.config import CHECKPOINTS, ConfigError  # noqa: E402
from unet_industrial.serving.app import ServeConfig, serve  # noqa: E402
from unet_industrial.verdicts import CalibrationError  # noqa: E402

_D = ServeConfig()

flags.DEFINE_string("run_dir", _D.run_dir, "Trained run folder with calibration.json; the shipped detector "
                    "by default.")
flags.DEFINE_enum("checkpoint", _D.checkpoint, CHECKPOINTS,
                  "best (falls back to last for runs trained without evaluation) or last.")
flags.DEFINE_string("host", _D.host, "Address to listen on; 127.0.0.1 keeps the page on this machine.")
flags.DEFINE_integer("port", _D.port, "Port to listen on; 0 for any free one.")
flags.DEFINE_integer("max_upload_mb", _D.max_upload_mb, "Largest upload accepted, in MiB.")

FLAGS = flags.FLAGS


def _interrupt(signum, frame):
    """SIGTERM stops the server as Ctrl-C does, so that its uploads are removed."""
    raise KeyboardInterrupt


def main(argv):
    cli.no_arguments(argv)
    config = ServeConfig(**{field.name: FLAGS[field.name].value for field in dataclasses.fields(ServeConfig)})
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(config)
    except (ConfigError, CalibrationError) as error:
        cli.fail(error)
    except KeyboardInterrupt:  # Before the server listens (while the model loads).
        print("stopped")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
