r"""Packages a trained, calibrated run as a detector folder that can ship (the model without its optimizer).

    python -m unet_industrial.package_run --run_dir=runs/ffpp-c23 --out_dir=detectors/ffpp-c23

See unet_industrial/packaging.py. Bad input: one `error:` line, exit status 2.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial import packaging  # noqa: E402
from unet_industrial.config import ConfigError  # noqa: E402

flags.DEFINE_string("run_dir", "", "A trained run folder with calibration.json.")
flags.DEFINE_string("out_dir", "", "A new (or empty) folder for the packaged detector.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    try:
        if not FLAGS.run_dir or not FLAGS.out_dir:
            raise ConfigError("--run_dir and --out_dir are required")
        print(f"wrote {packaging.package_run(FLAGS.run_dir, FLAGS.out_dir)}")
    except ConfigError as error:
        cli.fail(error)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
