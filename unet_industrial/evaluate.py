r"""Evaluates a trained run on a split: frame, video and pixel figures in runs/NAME/eval/<split>/.

    # Once, on the validation split: calibrate the verdict thresholds (runs/NAME/calibration.json).
    python -m unet_industrial.evaluate --run_dir=runs/ffpp-c23 \
        --data_pattern='data/tfrecords/val-*.tfrecord' --split=val --calibrate

    # Then on the test split, with the calibrated settings and thresholds.
    python -m unet_industrial.evaluate --run_dir=runs/ffpp-c23 \
        --data_pattern='data/tfrecords/test-*.tfrecord' --split=test

    # And on its crops blurred by 0.7 pixel, into eval/test-blur0.7/: how
    # much of the score rests on fine texture.
    python -m unet_industrial.evaluate --run_dir=runs/ffpp-c23 \
        --data_pattern='data/tfrecords/test-*.tfrecord' --split=test --degrade=blur:0.7

--checkpoint, --frame_score, --pixel_threshold, --aggregation and --tta left
out take the calibration's values (with --calibrate: best, area, 0.5, mean,
none);
given explicitly, they must match it. A classifier run (trained with
--model_kind=classifier) scores a crop by its predicted probability and
refuses --frame_score and --pixel_threshold; its report has no pixel section.

This module only parses flags into an EvalConfig and calls
unet_industrial.evaluation; bad input gets one line on stderr and exit
status 2, before anything is written.
"""

import os

# Before Keras or TensorFlow are imported anywhere: keep TensorFlow's C++
# start-up chatter out of the user's terminal unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial import evaluation, verdicts  # noqa: E402
from unet_industrial.config import CHECKPOINTS, ConfigError  # noqa: E402

_D = evaluation.DEFAULT_SETTINGS
_CALIBRATED = " Left out: the calibration's value (the default shown is for --calibrate)."

flags.DEFINE_string("run_dir", "", "Training run folder to evaluate (runs/NAME); empty for the detector that "
                    "ships in the package, whose reports go to runs/pretrained-ffpp_c23/eval/.")
flags.DEFINE_string("data_pattern", "", "Glob of the TFRecord shards to evaluate on.")
flags.DEFINE_string("split", evaluation.EvalConfig.split,
                    "Name of the split: the report goes to <run_dir>/eval/<split>/.")
flags.DEFINE_enum("checkpoint", _D["checkpoint"], CHECKPOINTS,
                  "Checkpoint to evaluate." + _CALIBRATED)
flags.DEFINE_enum("frame_score", _D["frame_score"], verdicts.FRAME_SCORES,
                  "Score of a face crop: area above --pixel_threshold, max or mean probability. Segmenter "
                  "runs only: a classifier's is its predicted probability." + _CALIBRATED)
flags.DEFINE_float("pixel_threshold", _D["pixel_threshold"],
                   "A pixel is fake above this probability. Segmenter runs only." + _CALIBRATED)
flags.DEFINE_enum("aggregation", _D["aggregation"], verdicts.AGGREGATIONS,
                  "Video score from its frames' scores." + _CALIBRATED)
flags.DEFINE_enum("tta", _D["tta"], verdicts.TTAS,
                  "Test-time augmentation: dihedral averages the probabilities of the 8 flips and "
                  "quarter turns of each crop (the views the reference augmentation trains on)."
                  + _CALIBRATED)
flags.DEFINE_bool("calibrate", False,
                  "Calibrate the frame and video thresholds on these data (meant for --split=val), "
                  "write <run_dir>/calibration.json, and report with them.")
flags.DEFINE_integer("batch_size", evaluation.EvalConfig.batch_size, "Face crops per prediction batch.")
flags.DEFINE_string("degrade", None,
                    "Degrade every crop before the model, to measure robustness: blur:SIGMA (pixels), "
                    "noise:SIGMA (grey levels), jpeg:QUALITY or downscale:FACTOR. The report goes to "
                    "<run_dir>/eval/<split>-<degradation>/, judged with the clean calibration.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    # A setting left out is None: the calibration decides it.
    settings = {name: FLAGS[name].value if FLAGS[name].present else None
                for name in evaluation.DEFAULT_SETTINGS}
    config = evaluation.EvalConfig(run_dir=FLAGS.run_dir or evaluation.EvalConfig.run_dir,
                                   data_pattern=FLAGS.data_pattern, split=FLAGS.split,
                                   calibrate=FLAGS.calibrate, batch_size=FLAGS.batch_size,
                                   degrade=FLAGS.degrade, **settings)
    try:
        evaluation.evaluate(config)
    except (ConfigError, verdicts.CalibrationError) as error:
        cli.fail(error)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
