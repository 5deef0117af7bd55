r"""Writes the embedded deepfake corpus (data_pipeline.synthetic.corpus) into a folder.

    python -m data_pipeline.synthetic --out_dir=data/synthetic
    python -m data_pipeline.synthetic --out_dir=data/synthetic-dfdc --layout=dfdc

This module parses flags and calls `corpus.generate`; a bad value gets one
`error:` line on stderr and exit status 2, before anything is written.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before MTCNN imports TensorFlow.

from absl import app, flags, logging  # noqa: E402

from data_pipeline import cli  # noqa: E402
from data_pipeline.synthetic import corpus  # noqa: E402
from data_pipeline.synthetic.manipulations import METHODS  # noqa: E402

_D = corpus.CorpusConfig()

flags.DEFINE_string("out_dir", None, "Folder of the corpus: new, empty, or an unfinished corpus to complete.")
flags.DEFINE_enum("layout", _D.layout, corpus.LAYOUTS, "ffpp (FaceForensics++) or dfdc.")
flags.DEFINE_integer("seed", _D.seed, "Seeds everything random.")
flags.DEFINE_integer("num_originals", _D.num_originals,
                     f"Original videos, one photograph each; even, {corpus.MIN_ORIGINALS} to "
                     f"{corpus.MAX_ORIGINALS}.")
flags.DEFINE_list("methods", list(_D.methods), f"Manipulations, of {','.join(METHODS)}.")
flags.DEFINE_list("compressions", list(_D.compressions),
                  "c0 (lossless RGB), c23, c40 (H.264 CRF); one for dfdc.")
flags.DEFINE_float("seconds", _D.seconds, "Length of every video, at 25 fps.")
flags.DEFINE_string("frame_size", "x".join(map(str, _D.frame_size)), "WIDTHxHEIGHT, both even.")
flags.DEFINE_integer("workers", 0, "Rendering processes; 0 = one per CPU core. Does not change the output.")
flags.mark_flag_as_required("out_dir")

FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    try:
        record = corpus.generate(FLAGS.out_dir, layout=FLAGS.layout, seed=FLAGS.seed,
                                 num_originals=FLAGS.num_originals, methods=FLAGS.methods,
                                 compressions=FLAGS.compressions, seconds=FLAGS.seconds,
                                 frame_size=corpus.parse_frame_size(FLAGS.frame_size), workers=FLAGS.workers)
    except corpus.CorpusError as error:
        cli.fail(error)
    logging.info("synthetic corpus in %s: %d originals, %d fakes, %d frames each, %.1f s",
                 FLAGS.out_dir, len(record["originals"]), len(record["fakes"]), record["num_frames"],
                 record["seconds"])


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=cli.parse_flags)
