r"""Generalisation studies: leave one method out, cross compression, segmenter against classifier.

    # Prepare records once (three compressions for the cross-compression study):
    python -m data_pipeline.synthetic --out_dir=runs/corpus --compressions=c0,c23,c40
    python -m data_pipeline.prepare --layout=ffpp --data_dir=runs/corpus --out_dir=runs/records \
        --frames_per_video=12 --image_size=64
    # Then one study per protocol:
    python -m unet_industrial.study --protocol=cross_manipulation --data_dir=runs/records \
        --run_dir=runs/study-cross-manipulation

Each model of a study is trained, calibrated on val and evaluated on test in
a run folder of its own under --run_dir; the study writes study.json,
matrix.md and matrix.png there (see unet_industrial/experiments/study.py). Run again
with the same flags, it reuses finished models and continues an interrupted
one. This module only parses flags into a StudyConfig and calls
unet_industrial.experiments.study; bad input gets one line on stderr and exit status
2, before anything is written.
"""

import datetime
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial.config import CLASSIFIERS, MODEL_KINDS, PSEUDO_FAKES, WEIGHTS, ConfigError  # noqa: E402
from unet_industrial.experiments import study  # noqa: E402

_D = study.StudyConfig(protocol="", data_dir="", run_dir="")

flags.DEFINE_enum("protocol", None, study.PROTOCOLS, "Which study to run.")
flags.DEFINE_string("data_dir", "", "Records folder written by data_pipeline.prepare (with manifest.json).")
flags.DEFINE_string("run_dir", "", "Study folder; default runs/study-<protocol>-<UTC time>.")
flags.DEFINE_integer("num_iter", _D.num_iter, "Training steps of each model.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Training batch of each model.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Initial learning rate of each model.")
flags.DEFINE_integer("learning_rate_decay_steps", _D.learning_rate_decay_steps,
                     "Steps between learning-rate decays (x0.8).")
flags.DEFINE_enum("pseudo_fakes", _D.pseudo_fakes, PSEUDO_FAKES,
                  "sbi: every model also learns from self-blended pseudo-fakes of the real crops.")
flags.DEFINE_float("pseudo_fake_ratio", _D.pseudo_fake_ratio,
                   "With --pseudo_fakes=sbi: the probability that a real training crop is replaced.")
flags.DEFINE_enum("model_kind", _D.model_kind, MODEL_KINDS,
                  "What the cross protocols train: the segmenter or a frame classifier.")
flags.DEFINE_enum("classifier", _D.classifier, list(CLASSIFIERS),
                  "The classifier's backbone: keras.applications' (xception needs crops of 71 px or "
                  "more) or unet_encoder, the segmenter's own encoder.")
flags.DEFINE_enum("weights", _D.weights, WEIGHTS,
                  "The classifier backbone's initial weights; imagenet needs them downloadable or cached.")
flags.DEFINE_integer("seed", _D.seed, "Seed of every model's initialisation and data order.")
flags.mark_flag_as_required("protocol")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    now = datetime.datetime.now(datetime.timezone.utc)
    config = study.StudyConfig(
        protocol=FLAGS.protocol, data_dir=FLAGS.data_dir,
        run_dir=FLAGS.run_dir or os.path.join("runs", f"study-{FLAGS.protocol}-{now:%Y%m%d-%H%M%S}"),
        num_iter=FLAGS.num_iter, batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        learning_rate_decay_steps=FLAGS.learning_rate_decay_steps, pseudo_fakes=FLAGS.pseudo_fakes,
        pseudo_fake_ratio=FLAGS.pseudo_fake_ratio, model_kind=FLAGS.model_kind, classifier=FLAGS.classifier,
        weights=FLAGS.weights, seed=FLAGS.seed)
    try:
        study.run(config)
    except (ConfigError, FileNotFoundError) as error:
        cli.fail(error)
    print(f"matrix: {os.path.join(config.run_dir, 'matrix.md')} and matrix.png")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
