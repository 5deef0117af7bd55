r"""Exports a trained, calibrated run for serving without this project: a SavedModel or a TFLite model.

    python -m unet_industrial.export --run_dir=runs/ffpp-c23 --format=saved_model --out=export/ffpp-c23/1
    python -m unet_industrial.export --run_dir=runs/ffpp-c23 --format=tflite --out=ffpp-c23.tflite
    python -m unet_industrial.export --run_dir=runs/ffpp-c23 --format=tflite --precision=float16 \
        --out=ffpp-c23-float16.tflite

Either takes uint8 face crops [N, S, S, 3] cut by the run's crop recipe and
gives each pixel's fake probability and each crop's calibrated score; see
unet_industrial/exporting.py for the signature and docs/serving.md for TF
Serving. Prints "wrote PATH: ..." when done.

This module only parses flags into an ExportConfig and calls the library; a
bad value, an output that exists, or a run without a model or calibration
gets one line on stderr and exit status 2, before anything is written.
"""

import dataclasses
import os

# Before Keras or TensorFlow are imported anywhere (see detect.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial import exporting  # noqa: E402
from unet_industrial.config import CHECKPOINTS, ConfigError  # noqa: E402
from unet_industrial.verdicts import CalibrationError  # noqa: E402

_D = exporting.ExportConfig()

flags.DEFINE_string("run_dir", _D.run_dir, "Trained run folder with calibration.json; the shipped detector "
                    "by default.")
flags.DEFINE_enum("checkpoint", _D.checkpoint, CHECKPOINTS,
                  "best (falls back to last for runs trained without evaluation) or last.")
flags.DEFINE_enum("format", _D.format, exporting.FORMATS,
                  "saved_model (a folder, for TF Serving) or tflite (a file, for edge devices).")
flags.DEFINE_enum("precision", _D.precision, exporting.PRECISIONS,
                  "The TFLite model's weights: float32, or float16 for half the size.")
flags.DEFINE_string("out", _D.out, "The SavedModel folder or .tflite file to write; it must not exist.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    config = exporting.ExportConfig(**{field.name: FLAGS[field.name].value
                                       for field in dataclasses.fields(exporting.ExportConfig)})
    try:
        exporting.export(config)
    except (ConfigError, CalibrationError) as error:
        cli.fail(error)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
