r"""The demo, the project's main job: the whole product on embedded data, on a CPU.

    python -m unet_industrial.demo [--workdir=runs/demo-<UTC time>]

Builds the synthetic corpus, prepares TFRecords, trains a CPU-sized
tinyUNet, calibrates it on the validation split, evaluates it on the test
split and runs detect on one fake and one real test video, then prints a
short table and the paths of the report and overlays. Stages and defaults:
`unet_industrial/experiments/demo.py`. Bad flags: one `error:` line, exit status 2.

What it prints with the defaults, and how long it takes, is recorded in
docs/results.md ("The demo").
"""

import datetime
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from unet_industrial import run_files  # noqa: E402
from unet_industrial.config import ConfigError  # noqa: E402
from unet_industrial.experiments import demo

_D = demo.DemoConfig(workdir="")

flags.DEFINE_string("workdir", "", "Folder for everything the demo makes; default runs/demo-<UTC time>.")
flags.DEFINE_integer("num_originals", _D.num_originals,
                     "Originals of the synthetic corpus "
                     "(even, 6-86: the photographs in which MTCNN finds a face).")
flags.DEFINE_integer("num_iter", _D.num_iter, "Training steps.")
flags.DEFINE_integer("image_size", _D.image_size, "Face crop side and model input (a multiple of 16).")
flags.DEFINE_integer("num_workers", _D.num_workers, "Preparation processes.")
flags.DEFINE_integer("seed", _D.seed, "Seed of the corpus and of training.")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    now = datetime.datetime.now(datetime.timezone.utc)
    config = demo.DemoConfig(
        workdir=FLAGS.workdir or os.path.join("runs", f"demo-{now:%Y%m%d-%H%M%S}"),
        num_originals=FLAGS.num_originals, num_iter=FLAGS.num_iter, image_size=FLAGS.image_size,
        num_workers=FLAGS.num_workers, seed=FLAGS.seed)
    try:
        demo.validate(config)
        _, table = demo.run(config)
    except ConfigError as error:
        cli.fail(error)
    eval_dir = os.path.join(config.model_dir, "eval", "test")
    print(table)
    print(f"\nreport:   {os.path.join(eval_dir, 'report.json')}")
    print(f"overlays: {os.path.join(eval_dir, 'overlays.png')} and {config.detect_dir}/*.mp4")
    # The demo's model knows only the embedded corpus; real videos are for the shipped detector.
    print("\nThis model learned the embedded synthetic corpus only. To check a real video, use the detector "
          "trained on real FaceForensics++ that ships in the package (its model card: "
          f"{os.path.relpath(os.path.join(run_files.SHIPPED_RUN_DIR, 'MODEL_CARD.md'))}):")
    print("  .venv/bin/python -m unet_industrial.detect --video=VIDEO.mp4")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
