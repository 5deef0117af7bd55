r"""Trains, evaluates or benchmarks the industrial UNet, or (--model_kind=classifier) a frame classifier.

    python -m unet_industrial.train --exec_mode=train_and_evaluate \
        --train_pattern='data/tfrecords/train-*.tfrecord' \
        --eval_pattern='data/tfrecords/val-*.tfrecord' --run_dir=runs/ffpp-c23

    python -m unet_industrial.train --exec_mode=train --distribution=mirrored --batch_size=16 \
        --train_pattern='data/tfrecords/train-*.tfrecord' --run_dir=runs/ffpp-c23-4gpu

    python -m unet_industrial.train --exec_mode=train_and_evaluate --model_kind=classifier \
        --classifier=efficientnet_b4 --weights=imagenet --input_size=256 \
        --train_pattern='data/tfrecords/train-*.tfrecord' \
        --eval_pattern='data/tfrecords/val-*.tfrecord' --run_dir=runs/ffpp-c23-effb4

    python -m unet_industrial.train --exec_mode=training_benchmark \
        --input_size=512 --input_channels=1 --batch_size=16 --amp --amp_dtype=bfloat16

Flags may also come from a file, one --flag=value a line: the FaceForensics++
c23 recipe is --flagfile=unet_industrial/configs/ffpp_c23.flags. This module
only parses flags into a TrainConfig and calls the library; a bad value gets
one line on stderr and exit status 2, before anything is written.
"""

import logging as logging_lib
import os

# Before Keras or TensorFlow are imported anywhere: keep TensorFlow's C++
# start-up chatter out of the user's terminal unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial import config as config_lib  # noqa: E402

_D = config_lib.TrainConfig()

flags.DEFINE_enum("exec_mode", _D.exec_mode, config_lib.EXEC_MODES, "What the job does.")
flags.DEFINE_enum("model_kind", _D.model_kind, config_lib.MODEL_KINDS,
                  "segmenter (the UNet, trained on fake-pixel masks) or classifier (an ImageNet backbone "
                  "with one fake logit per face crop, trained on frame labels: fake where the mask is not "
                  "empty).")
flags.DEFINE_enum("classifier", _D.classifier, list(config_lib.CLASSIFIERS),
                  "With --model_kind=classifier: a keras.applications backbone (xception needs "
                  "--input_size >= 71) or unet_encoder, the segmenter's own tinyUNet encoder.")
flags.DEFINE_enum("weights", _D.weights, config_lib.WEIGHTS,
                  "With --model_kind=classifier: the backbone's initial weights; imagenet downloads them "
                  "once into ~/.keras/models, none (random) works offline.")
flags.DEFINE_enum("unet_variant", _D.unet_variant, list(config_lib.UNET_VARIANTS),
                  "tinyUNet (1.85 M parameters) or original (29.1 M).")
flags.DEFINE_enum("activation_fn", _D.activation_fn, config_lib.ACTIVATIONS, "Activation after each conv.")
flags.DEFINE_enum("weight_init_method", _D.weight_init_method, config_lib.INITIALIZERS, "Kernel initializer.")
flags.DEFINE_integer("input_size", _D.input_size,
                     "Height and width of the model input; a segmenter's a multiple of 16.")
flags.DEFINE_integer("input_channels", _D.input_channels, "1 (grayscale) or 3 (RGB).")
flags.DEFINE_integer("batch_size", _D.batch_size,
                     "Examples per step and replica; a step takes batch_size x replicas (the global batch).")
flags.DEFINE_integer("num_iter", _D.num_iter, "Training steps (or benchmark steps).")
flags.DEFINE_integer("warmup_step", _D.warmup_step, "Benchmark steps excluded from the timing.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Initial learning rate.")
flags.DEFINE_float("learning_rate_decay_factor", _D.learning_rate_decay_factor,
                   "Learning rate multiplier every --learning_rate_decay_steps (staircase).")
flags.DEFINE_integer("learning_rate_decay_steps", _D.learning_rate_decay_steps, "Steps between decays.")
flags.DEFINE_float("rmsprop_decay", _D.rmsprop_decay, "RMSProp rho.")
flags.DEFINE_float("rmsprop_momentum", _D.rmsprop_momentum, "RMSProp momentum.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "L2 coefficient on every variable (as the reference).")
flags.DEFINE_enum("loss_fn_name", _D.loss_fn_name, config_lib.LOSSES,
                  "adaptive (Dice below 0.3, else cross-entropy), bce, dice or jaccard.")
flags.DEFINE_enum("augmentation", _D.augmentation, config_lib.AUGMENTATIONS,
                  "faces (flip, small affine, colour, blur, noise, JPEG 60-100), "
                  "reference (flips, rot90), none.")
flags.DEFINE_bool("balance_classes", _D.balance_classes, "Draw real and fake training examples 50/50.")
flags.DEFINE_enum("pseudo_fakes", _D.pseudo_fakes, config_lib.PSEUDO_FAKES,
                  "sbi: replace real training crops by self-blended pseudo-fakes made on the fly, with "
                  "exact masks (Self-Blended Images, CVPR 2022); none: train on the records as they are.")
flags.DEFINE_float("pseudo_fake_ratio", _D.pseudo_fake_ratio,
                   "With --pseudo_fakes=sbi: the probability that a real training crop is replaced.")
flags.DEFINE_string("train_methods", _D.train_methods,
                    "Comma-separated fake methods to train on, with every real example; empty: all.")
flags.DEFINE_string("train_compressions", _D.train_compressions,
                    "Comma-separated compressions (c0, c23, c40) to train on; empty: all.")
flags.DEFINE_bool("amp", _D.amp, "Mixed precision (see --amp_dtype); for GPUs.")
flags.DEFINE_enum("amp_dtype", _D.amp_dtype, config_lib.AMP_DTYPES,
                  "float16 (with dynamic loss scaling) or bfloat16.")
flags.DEFINE_bool("xla", _D.xla, "Compile steps with XLA (jit_compile); JAX always compiles.")
flags.DEFINE_integer("seed", _D.seed, "Seed of initialization, shuffling and augmentation.")
flags.DEFINE_string("run_dir", _D.run_dir, "Run folder; default runs/<exec_mode>-<UTC time>.")
flags.DEFINE_bool("resume", _D.resume, "Continue the run in --run_dir from its last checkpoint.")
flags.DEFINE_string("train_pattern", _D.train_pattern, "Glob of training TFRecord shards.")
flags.DEFINE_string("eval_pattern", _D.eval_pattern, "Glob of evaluation TFRecord shards.")
flags.DEFINE_bool("synthetic_data", _D.synthetic_data, "Random tensors instead of TFRecords.")
flags.DEFINE_integer("save_every", _D.save_every, "Steps between evaluations and checkpoints.")
flags.DEFINE_integer("log_every", _D.log_every, "Steps between training logs and TensorBoard scalars.")
flags.DEFINE_integer("eval_batches", _D.eval_batches, "Cap on evaluation batches; 0 reads all.")
flags.DEFINE_enum("checkpoint", _D.checkpoint, config_lib.CHECKPOINTS, "Checkpoint that evaluate reads.")
flags.DEFINE_integer("shuffle_buffer", _D.shuffle_buffer, "Examples held for shuffling.")
flags.DEFINE_enum("distribution", _D.distribution, config_lib.DISTRIBUTIONS,
                  "Training on one device (none), on every local GPU (mirrored) or on the machines that "
                  "TF_CONFIG names (multi_worker); TensorFlow backend only. Not taken from a saved run: "
                  "pass it again with --resume.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    from unet_industrial import run_files

    try:
        saved = None
        if FLAGS.resume or FLAGS.exec_mode == "evaluate":
            saved = run_files.saved_config(FLAGS.run_dir)
        present = [name for name in FLAGS if FLAGS[name].present]
        config = config_lib.resolve(FLAGS.flag_values_dict(), present, saved)
        config_lib.validate(config)
        run_dir = config.run_dir or run_files.default_run_dir(config.exec_mode)
        needs = config.checkpoint if config.exec_mode == "evaluate" else None
        run_files.check_run_dir(run_dir, config.resume, needs_checkpoint=needs)
        # Heavy imports only once the command line is known to be good.
        from unet_industrial.training import data, jobs

        with data.records_named_on_error(config):
            jobs.run(config, run_dir)
    except (config_lib.ConfigError, FileNotFoundError) as error:
        cli.fail(error)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    # tf.distribute strategies log every collective they build at INFO, dozens
    # of lines per traced step: keep the progress lines readable.
    logging_lib.getLogger("tensorflow").setLevel(logging_lib.WARNING)
    app.run(main, flags_parser=cli.parse_flags)
