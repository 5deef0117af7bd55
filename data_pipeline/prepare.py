r"""Prepares TFRecords of (face crop, fake-pixel mask) from a dataset on disk.

    python -m data_pipeline.prepare --layout=ffpp --data_dir=/data/FaceForensics++ \
        --out_dir=data/ffpp-c23 --compressions=c23 --num_workers=8

Writes `{split}-{i:05d}-of-{n:05d}.tfrecord` shards and `manifest.json` into
--out_dir. A rerun on the same folder skips the videos already done. Bad
videos are skipped with their reason (listed in the manifest); the exit
status is non-zero only when nothing usable was produced.

--runner=beam runs the same work as an Apache Beam pipeline (pip install -r
requirements-beam.txt) on --beam_runner, Beam's pipeline options after `--`:

    python -m data_pipeline.prepare --layout=dfdc --data_dir=/shared/dfdc --out_dir=/shared/dfdc-tf \
        --runner=beam --beam_runner=FlinkRunner -- --flink_master=HOST:8081 \
        --environment_type=EXTERNAL --environment_config=localhost:50000

Input and output must then be on storage every Beam worker sees (see data_pipeline/runners/beam.py).
"""

import os
import sys

# Keep TensorFlow's C++ start-up chatter (MTCNN runs on it) out of the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from data_pipeline import config as config_lib  # noqa: E402
from data_pipeline.layouts import READERS  # noqa: E402

_D = config_lib.PrepareConfig()

flags.DEFINE_enum("layout", _D.layout, list(READERS), "Dataset layout of --data_dir.")
flags.DEFINE_string("data_dir", _D.data_dir, "Dataset root.")
flags.DEFINE_string("out_dir", _D.out_dir, "Output folder for shards and manifest.json.")
flags.DEFINE_integer("frames_per_video", _D.frames_per_video, "Evenly spaced frames per video (32: the field's norm).")
flags.DEFINE_integer("frame_stride", _D.frame_stride, "If positive, every n-th frame instead.")
flags.DEFINE_integer("image_size", _D.image_size, "Side of the square face crops.")
flags.DEFINE_float("crop_scale", _D.crop_scale, "Enlargement of the squared face box (1.3: FF++ recipe).")
flags.DEFINE_integer("detect_every", _D.detect_every,
                     "Run face detection at least every k video frames (sparser samples: on each one); "
                     "boxes in between are interpolated and smoothed.")
flags.DEFINE_bool("all_faces", _D.all_faces, "Crop every face track, not only the main (largest, most "
                  "confident) one.")
flags.DEFINE_enum("mask_source", _D.mask_source, config_lib.MASK_SOURCES,
                  "diff (from fake vs original), provided (the dataset's mask videos), auto (provided if any).")
flags.DEFINE_enum("image_format", _D.image_format, config_lib.IMAGE_FORMATS, "Face crop encoding (PNG is lossless).")
flags.DEFINE_integer("jpeg_quality", _D.jpeg_quality, "Quality with --image_format=jpeg.")
flags.DEFINE_bool("drop_empty_fakes", _D.drop_empty_fakes, "Leave out fakes whose mask is empty.")
flags.DEFINE_list("compressions", list(_D.compressions), "FF++ compression levels to read.")
flags.DEFINE_list("methods", list(_D.methods), "FF++ manipulation methods to read.")
flags.DEFINE_integer("num_workers", _D.num_workers, "Processes working on videos in parallel.")
flags.DEFINE_integer("examples_per_shard", _D.examples_per_shard, "Target examples per shard.")
flags.DEFINE_integer("max_videos", _D.max_videos, "If positive, only the first n videos (for trials).")
flags.DEFINE_enum("runner", _D.runner, config_lib.RUNNERS,
                  "local: --num_workers processes on this machine; beam: an Apache Beam pipeline, its "
                  "pipeline options after -- (needs requirements-beam.txt).")
flags.DEFINE_string("beam_runner", _D.beam_runner,
                    "Beam runner for --runner=beam: DirectRunner, FnApiRunner (the one that honours "
                    "--direct_num_workers), DataflowRunner, FlinkRunner, SparkRunner, ...")

FLAGS = flags.FLAGS


def main(argv):
    # absl leaves what follows `--` in argv: Beam's pipeline options (validate refuses them
    # without --runner=beam, as cli.no_arguments would).
    values = {name: FLAGS[name].value for name in config_lib.PrepareConfig.__dataclass_fields__
              if name != "beam_options"}
    values["compressions"], values["methods"] = tuple(values["compressions"]), tuple(values["methods"])
    values["beam_options"] = tuple(argv[1:])
    config = config_lib.PrepareConfig(**values)
    try:
        config_lib.validate(config)
        from data_pipeline import preparation  # TensorFlow and MTCNN load only for a valid command

        manifest = preparation.prepare(config)
    except config_lib.PrepareError as error:
        cli.fail(error)
    total = sum(split.get("total", 0) for split in manifest["counts"]["examples"].values())
    logging.info("wrote %d examples in %s; skipped %s; manifest %s", total,
                 {split: len(names) for split, names in manifest["shards"].items()},
                 manifest["skipped"]["by_reason"] or "nothing", os.path.join(config.out_dir, "manifest.json"))
    if total == 0:
        print("error: nothing usable was produced (see manifest.json for the reasons)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
