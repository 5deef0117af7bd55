"""Shared fixtures: tiny TFRecord shards written through the project's schema."""

import gc
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

# Tests check what XLA computes, not how fast it runs: its backend optimisation
# passes are most of a tiny model's compile time on a CPU (BENCHMARKS.md, "The
# test suite"), so they are off here and in every process a test starts.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
# `make test` runs two workers on two cores: a TensorFlow process computing on
# a thread per core (its default) only oversubscribes them, so each one here,
# and each job a test starts, computes on one thread (OpenMP's likewise).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_finish(session):
    """Keeps what the imports made (TensorFlow, Keras, ...) out of the garbage collector's full walks.

    Those hundreds of thousands of objects live as long as the worker, and
    full collections in a worker have taken tens of seconds here
    (BENCHMARKS.md, "The test suite").
    """
    gc.collect()
    gc.freeze()


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real sample videos and frames (FF++, DFDC) beside the clone, not in it;
# UNET_REALDATA_DIR points elsewhere (a path that does not exist: as a clone without them).
REALDATA_DIR = os.environ.get("UNET_REALDATA_DIR",
                              os.path.join(os.path.dirname(REPO_ROOT), "shared", "realdata"))


def realdata_absent(path):
    """Why a test that reads `path` under REALDATA_DIR skips."""
    return (f"{path} is absent: real sample videos are not part of a clone "
            "(UNET_REALDATA_DIR names another folder)")


# For tests that read REALDATA_DIR: where it is absent they skip, saying why, rather than fail.
requires_realdata = pytest.mark.skipif(not os.path.isdir(REALDATA_DIR), reason=realdata_absent(REALDATA_DIR))

# Options that keep prepare quick in tests: 3 frames a video, 64-pixel crops;
# as PrepareConfig fields and as `python -m data_pipeline.prepare` flags.
PREPARE_FAST_FIELDS = {"frames_per_video": 3, "detect_every": 2, "image_size": 64}
PREPARE_FAST = [f"--{name}={value}" for name, value in PREPARE_FAST_FIELDS.items()]


def make_face_like_example(rng, size, fake):
    """A noisy RGB image; for a fake, a brighter square patch and its mask."""
    image = rng.integers(60, 120, size=(size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    if fake:
        side = int(rng.integers(size // 4, size // 2))
        top, left = (int(v) for v in rng.integers(0, size - side, size=2))
        image[top:top + side, left:left + side] += 100
        mask[top:top + side, left:left + side] = 1
    return image, mask


def write_video(path, frames, fps=25):
    """Writes RGB frames with OpenCV's mp4v encoder (lossy, but decodable everywhere); returns the path."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def write_shards(out_dir, split, num_examples, size=32, num_shards=2, seed=0, fake_videos=False):
    """Writes `split-0000i-of-0000n.tfrecord` shards of four-frame videos; returns their glob pattern.

    Every other frame is fake, or with `fake_videos` every other video (so
    that videos, too, are of both classes).
    """
    import tensorflow as tf

    from data_pipeline import schema

    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    writers = [tf.io.TFRecordWriter(os.path.join(out_dir, f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord"))
               for i in range(num_shards)]
    for index in range(num_examples):
        fake = (index // 4 if fake_videos else index) % 2 == 0
        image, mask = make_face_like_example(rng, size, fake)
        record = schema.serialize_example({
            schema.IMAGE: cv2.imencode(".png", image)[1].tobytes(),
            schema.IMAGE_FORMAT: "png",
            schema.HEIGHT: size,
            schema.WIDTH: size,
            schema.MASK: cv2.imencode(".png", mask)[1].tobytes(),
            schema.LABEL: int(fake),
            schema.VIDEO_ID: f"video{index // 4:03d}",
            schema.FRAME_INDEX: index % 4,
            schema.BOX: [0.0, 0.0, float(size), float(size)],
            schema.MASK_AREA: float(mask.mean()),
        })
        writers[index % num_shards].write(record)
    for writer in writers:
        writer.close()
    return os.path.join(out_dir, f"{split}-*.tfrecord")


def read_records(out_dir, split="*"):
    """The parsed examples of the `{split}-*.tfrecord` shards in out_dir, shard by shard, as numpy values."""
    import tensorflow as tf

    from data_pipeline import reader, schema

    paths = sorted(tf.io.gfile.glob(os.path.join(out_dir, f"{split}-*.tfrecord")))
    return [{key: value.numpy() for key, value in schema.parse_example(record).items()}
            for record in reader.without_autotuning(tf.data.TFRecordDataset(paths))]


def write_records(directory, methods=("Deepfakes", "FaceSwap"), compressions=("c23", "c40"), size=32):
    """A records folder as data_pipeline.prepare leaves it: one shard per split and manifest.json.

    Each split holds, per compression, 2 real videos and 2 fakes of each
    method, 2 frames each.
    """
    import tensorflow as tf

    from data_pipeline import schema

    rng = np.random.default_rng(0)
    os.makedirs(directory, exist_ok=True)
    counts, shards = {}, {}
    for split in ("train", "val", "test"):
        name = f"{split}-00000-of-00001.tfrecord"
        shards[split] = [name]
        split_counts = counts.setdefault(split, {})
        with tf.io.TFRecordWriter(os.path.join(directory, name)) as writer:
            for compression in compressions:
                for method in ("original",) + tuple(methods):
                    for video in range(2):
                        for frame in range(2):
                            image, mask = make_face_like_example(rng, size, fake=method != "original")
                            writer.write(schema.serialize_example({
                                schema.IMAGE: cv2.imencode(".png", image)[1].tobytes(),
                                schema.MASK: cv2.imencode(".png", mask)[1].tobytes(),
                                schema.LABEL: int(method != "original"), schema.METHOD: method,
                                schema.COMPRESSION: compression,
                                schema.VIDEO_ID: f"{method}/{compression}/{video:03d}",
                                schema.FRAME_INDEX: frame}))
                            for key in (f"method/{method}", f"compression/{compression}"):
                                split_counts[key] = split_counts.get(key, 0) + 1
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump({"config": {"image_size": size}, "counts": {"examples": counts}, "shards": shards}, f)
    return directory


@pytest.fixture(scope="session")
def tiny_tfrecords(tmp_path_factory):
    """(train pattern, eval pattern) of 32x32 RGB examples, half of them fake."""
    out_dir = str(tmp_path_factory.mktemp("tfrecords"))
    return (write_shards(out_dir, "train", 24, seed=0), write_shards(out_dir, "val", 8, seed=1))


def prepare_here(out_dir, **fields):
    """Runs prepare in this process, with PREPARE_FAST and `fields`; returns its manifest.

    For tests about what prepare writes: each process that starts pays
    TensorFlow's import, and the command line has tests of its own.

    Raises:
      PrepareError: the problem that the command line prints as its `error:` line.
    """
    from data_pipeline import config as config_lib
    from data_pipeline import preparation

    config = config_lib.PrepareConfig(out_dir=str(out_dir), **{**PREPARE_FAST_FIELDS, **fields})
    config_lib.validate(config)
    return preparation.prepare(config)


def train_here(**fields):
    """Trains the TrainConfig of `fields` in this process (see prepare_here); returns its final results."""
    from unet_industrial import config as config_lib
    from unet_industrial.training import jobs

    config = config_lib.TrainConfig(**fields)
    config_lib.validate(config)
    return jobs.run(config, config.run_dir)


def run_module(module, *args, env=None, timeout=600):
    """Runs `python -m module args...` in the repo root; returns the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def realdata_train():
    """REALDATA_DIR/ffpp_train (real FF++ c23 pairs), or a skip where a clone has no ../shared."""
    path = os.path.join(REALDATA_DIR, "ffpp_train")
    if not os.path.isdir(path):
        pytest.skip(realdata_absent(path))
    return path
