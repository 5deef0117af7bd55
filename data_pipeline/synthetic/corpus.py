r"""The embedded deepfake corpus: real photographs filmed, faked five ways, in FF++ or DFDC layout.

    python -m data_pipeline.synthetic --out_dir=data/synthetic
    python -m data_pipeline.synthetic --out_dir=data/synthetic-dfdc --layout=dfdc
    python -m data_pipeline.synthetic --out_dir=data/synthetic-big --num_originals=40 \
        --compressions=c0,c23,c40 --seconds=4 --frame_size=640x480

It lets every stage (prepare, train, evaluate, detect) run end to end on a
machine without FaceForensics++ or DFDC, and gives mask extraction a ground
truth to be measured against. The faces are real photographs that installed
packages ship (`photos`); the manipulations imitate five real
families (`manipulations`); `planning` decides splits, pairs and paths
and `video_writer` and `media` write the files. It is a corpus for
demos and tests, not a benchmark of real-world accuracy.

FaceForensics++ layout (`--layout=ffpp`, the default), under --out_dir:

    original_sequences/youtube/<c>/videos/NNN.mp4
    manipulated_sequences/<Method>/<c>/videos/TTT_SSS.mp4      target TTT, source SSS
    manipulated_sequences/<Method>/masks/videos/TTT_SSS.mp4    binary mask (0/255), lossless
    manipulated_sequences/<Method>/masks/frames/TTT_SSS/00000.png   8-bit blend alpha per frame
    splits/{train,val,test}.json                               [["TTT", "SSS"], ...] as FF++'s
    synthetic.json                                             the corpus record

DFDC layout (`--layout=dfdc`): `dfdc_train_part_0/<name>.mp4` with
`dfdc_train_part_0/metadata.json` (label, split, original), the masks under
`dfdc_train_part_0/masks/{videos,frames}/`, and `synthetic.json`.

Every original is the target of exactly one fake per method and the source
of one: originals are paired within their split and both orders are faked,
as in FF++. Identities (photographs) never cross splits. The same flags give
the same decoded frames and masks. `python -m data_pipeline.synthetic`
(`synthetic/__main__.py`) parses flags and calls `generate`.
"""

import concurrent.futures
import contextlib
import dataclasses
import importlib.metadata
import itertools
import json
import multiprocessing
import os
import time

import numpy as np
from absl import logging

from data_pipeline import files, video_writer
from data_pipeline.synthetic import manipulations, media, photos, planning
from data_pipeline.synthetic.manipulations import METHODS

LAYOUTS = tuple(planning.LAYOUTS)
COMPRESSIONS = tuple(video_writer.COMPRESSIONS)
SPLITS = planning.SPLITS
RECORD = "synthetic.json"
# Ids are FF++'s three digits; the catalogue holds 103 photographs, a few of
# which MTCNN may miss.
MAX_ORIGINALS = 100
MIN_ORIGINALS = 2 * len(SPLITS)  # One pair per split.
MAX_FRAMES = 99999  # Mask frames are numbered with five digits.


class CorpusError(ValueError):
    """Settings or an output folder that the generator cannot use; one line for the user."""


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Everything the corpus's content depends on (not how fast it is made).

    Build it with `make_config`, which validates and normalizes.
    """

    layout: str = "ffpp"
    seed: int = 0
    num_originals: int = 12
    methods: tuple = METHODS
    compressions: tuple = ("c23",)
    seconds: float = 2.0
    frame_size: tuple = (320, 240)

    @property
    def num_frames(self):
        return round(self.seconds * media.FPS)


def _known(values, allowed, flag):
    """Removes duplicates, checks every value, and orders them as `allowed` does."""
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise CorpusError(f"--{flag}={','.join(values)}: choose one or more of {','.join(allowed)}")
    return tuple(v for v in allowed if v in values)


def make_config(layout="ffpp", seed=0, num_originals=12, methods=METHODS, compressions=("c23",),
                seconds=2.0, frame_size=(320, 240)):
    """Validates settings into a `CorpusConfig`.

    Raises:
      CorpusError: naming the first bad setting.
    """
    if layout not in LAYOUTS:
        raise CorpusError(f"--layout={layout}: choose one of {', '.join(LAYOUTS)}")
    methods = _known(list(methods), METHODS, "methods")
    compressions = _known(list(compressions), COMPRESSIONS, "compressions")
    if layout == "dfdc" and len(compressions) != 1:
        raise CorpusError(f"--layout=dfdc holds one quality; got --compressions={','.join(compressions)}")
    if seed < 0:
        raise CorpusError(f"--seed={seed} must be 0 or more")
    if num_originals % 2 or not MIN_ORIGINALS <= num_originals <= MAX_ORIGINALS:
        raise CorpusError(f"--num_originals={num_originals} must be even, from {MIN_ORIGINALS} "
                          f"(a pair per split) to {MAX_ORIGINALS}")
    width, height = frame_size
    if width % 2 or height % 2 or min(width, height) < 96 or max(width, height) > 4096:
        raise CorpusError(f"--frame_size={width}x{height}: width and height must be even, 96 to 4096")
    config = CorpusConfig(layout, int(seed), int(num_originals), methods, compressions, float(seconds),
                          (int(width), int(height)))
    if not 1 <= config.num_frames <= MAX_FRAMES:
        raise CorpusError(f"--seconds={seconds} gives {config.num_frames} frames at "
                          f"{media.FPS} fps; it must give 1 to {MAX_FRAMES}")
    return config


def parse_frame_size(text):
    """'320x240' -> (320, 240).

    Raises:
      CorpusError: for anything else.
    """
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CorpusError(f"--frame_size={text}: write it as WIDTHxHEIGHT, e.g. 320x240") from None
    return width, height


# ---------------------------------------------------------------- rendering


def _write_missing(out_dir, outputs, items):
    """Streams items into the outputs whose files do not exist yet.

    Args:
      out_dir: the corpus folder.
      outputs: (relative path, writer factory, selector) triples; the selector
        picks what its writer takes from each item.
      items: a callable returning an iterator of items; called only if an
        output is missing, so that a resumed run skips finished work.
    """
    missing = [(os.path.join(out_dir, path), make, select) for path, make, select in outputs
               if not os.path.exists(os.path.join(out_dir, path))]
    if not missing:
        return
    with contextlib.ExitStack() as stack:
        writers = [(stack.enter_context(make(path)), select) for path, make, select in missing]
        for item in items():
            for writer, select in writers:
                writer.write(select(item))


def _video_writer(config, codec):
    return lambda path: video_writer.VideoWriter(path, config.frame_size, codec)


def _fake_outputs(config, fake, position):
    """Outputs of a fake whose (frame, alpha) is item `position` of its target's stream."""
    outputs = [(path, _video_writer(config, video_writer.COMPRESSIONS[c]), lambda item: item[position][0])
               for c, path in fake.videos.items()]
    outputs.append((fake.mask_video, _video_writer(config, media.MASK_CODEC),
                    lambda item: np.where(item[position][1] > 0, 255, 0).astype(np.uint8)))
    outputs.append((fake.mask_frames, media.MaskFramesWriter, lambda item: item[position][1]))
    return outputs


def _has_missing(out_dir, fake):
    paths = [*fake.videos.values(), fake.mask_video, fake.mask_frames]
    return not all(os.path.exists(os.path.join(out_dir, path)) for path in paths)


def _stream(original, fakes):
    """Items (original frame, (fake frame, alpha) of each fake), one per frame, in a single pass.

    The fakes consume the original's frames in lockstep, so `tee` holds one
    frame at a time and a video of any length fits in memory.
    """
    frames = itertools.tee(photos.film(original.face.photo.image, original.shot), 1 + len(fakes))
    landmarks = photos.frame_landmarks(original.face, original.shot)
    made = [manipulations.manipulate(fake.method, stream, landmarks, original.face, fake.source.face,
                                     fake.seed)
            for fake, stream in zip(fakes, frames[1:])]
    return zip(frames[0], *made)


def render_target(out_dir, config, original, fakes):
    """Writes an original and its fakes, skipping any file already written.

    Args:
      out_dir: the corpus folder.
      config: the `CorpusConfig`.
      original: the `planning.Original`.
      fakes: the `planning.Fake`s whose target it is.
    """
    pending = [fake for fake in fakes if _has_missing(out_dir, fake)]
    outputs = [(path, _video_writer(config, video_writer.COMPRESSIONS[c]), lambda item: item[0])
               for c, path in original.videos.items()]
    for position, fake in enumerate(pending, start=1):
        outputs.extend(_fake_outputs(config, fake, position))
    _write_missing(out_dir, outputs, lambda: _stream(original, pending))


def render(out_dir, config, plan, workers=0, progress=True):
    """Writes every video and mask of a plan that is not on disk yet.

    Args:
      out_dir: the corpus folder.
      config: the `CorpusConfig`.
      plan: its `planning.Plan`.
      workers: processes, each rendering one original and its fakes at a
        time; 0 means one per CPU core. The output does not depend on it.
      progress: show a tqdm bar counting videos (originals and fakes).
    """
    from tqdm import tqdm

    # Processes, not threads: PyAV holds the GIL while x264 encodes, and
    # encoding is most of the work. "spawn", because the parent has loaded
    # TensorFlow (for MTCNN), which must not be forked.
    context = multiprocessing.get_context("spawn")
    workers = min(workers or os.cpu_count() or 1, len(plan.originals))
    with tqdm(total=len(plan.originals) + len(plan.fakes), unit="video", desc="synthetic corpus",
              disable=not progress) as bar, \
            concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {}
        for original in plan.originals:
            fakes = [fake for fake in plan.fakes if fake.target is original]
            futures[pool.submit(render_target, out_dir, config, original, fakes)] = 1 + len(fakes)
        for future in concurrent.futures.as_completed(futures):
            future.result()
            bar.update(futures[future])


# ---------------------------------------------------------------- the record


def _versions():
    names = ("av", "numpy", "opencv-python-headless", "mtcnn", "scikit-image", "matplotlib")
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe(config, plan, skipped):
    """The corpus record (synthetic.json): settings, and every video with its split and files."""
    return {
        "generator": "data_pipeline.synthetic",
        "config": _as_json(dataclasses.asdict(config)),
        "complete": False,
        "fps": media.FPS,
        "num_frames": config.num_frames,
        "frame_size": list(config.frame_size),
        "photos_without_face": skipped,
        "versions": _versions(),
        "originals": [{"id": o.id, "identity": o.face.photo.identity, "photo": o.face.photo.source,
                       "split": o.split, "videos": o.videos} for o in plan.originals],
        "fakes": [{"id": f.id, "method": f.method, "target": f.target.id, "source": f.source.id,
                   "split": f.target.split, "videos": f.videos, "mask_video": f.mask_video,
                   "mask_frames": f.mask_frames} for f in plan.fakes],
        "pairs": {split: [list(pair) for pair in pairs] for split, pairs in plan.pairs.items()},
    }


def _as_json(value):
    return json.loads(json.dumps(value))


def check_out_dir(out_dir, config):
    """Refuses a folder that holds anything but an unfinished or finished corpus of the same settings.

    Returns:
      True when the folder holds such a corpus (the run resumes it), else False.

    Raises:
      CorpusError: for a file, a non-empty folder without a corpus record, or
        a corpus made with other settings.
    """
    record_path = os.path.join(out_dir, RECORD)
    if os.path.exists(record_path):
        with open(record_path) as f:
            saved = json.load(f).get("config", {})
        wanted = _as_json(dataclasses.asdict(config))
        changed = [f"{key} {saved.get(key)} -> {value}" for key, value in wanted.items()
                   if saved.get(key) != value]
        if changed:
            raise CorpusError(f"--out_dir={out_dir} holds a corpus made with other settings "
                              f"({'; '.join(changed)}); choose another --out_dir")
        return True
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise CorpusError(f"--out_dir={out_dir} is not empty and holds no synthetic corpus; "
                          "choose a new or empty folder")
    return False


def generate(out_dir, *, layout="ffpp", seed=0, num_originals=12, methods=METHODS, compressions=("c23",),
             seconds=2.0, frame_size=(320, 240), workers=0, progress=True):
    """Makes (or finishes) a synthetic deepfake corpus.

    Args:
      out_dir: the corpus folder: new, empty, or an unfinished corpus made
        with the same settings (which is then completed).
      layout: "ffpp" or "dfdc".
      seed: seeds everything random; the same settings give the same frames.
      num_originals: even, 6 to 100; one photograph (identity) each.
      methods: a subset of METHODS.
      compressions: a subset of "c0", "c23", "c40" (exactly one for dfdc).
      seconds: length of every video (25 fps).
      frame_size: (width, height), even.
      workers: rendering processes; 0 means one per CPU core.
      progress: show a progress bar.

    Returns:
      The corpus record, as written to `out_dir/synthetic.json`, with the
      time taken under "seconds".

    Raises:
      CorpusError: bad settings or folder (before anything is written), or
        too few photographs in which MTCNN finds a face.

    Rendering runs in "spawn" worker processes: a script that calls this
    must do so under `if __name__ == "__main__":`.
    """
    started = time.monotonic()
    config = make_config(layout, seed, num_originals, methods, compressions, seconds, frame_size)
    if workers < 0:
        raise CorpusError(f"--workers={workers} must be 0 (one per CPU core) or more")
    check_out_dir(out_dir, config)
    logging.info("finding faces with MTCNN (TensorFlow takes a few seconds to load)")
    faces, skipped = photos.find_faces(photos.catalogue(), config.num_originals)
    if len(faces) < config.num_originals:
        raise CorpusError(f"--num_originals={config.num_originals}: MTCNN finds a face in only "
                          f"{len(faces)} of the photographs")
    plan = planning.make_plan(config, faces)
    record = describe(config, plan, skipped)
    files.write_json(os.path.join(out_dir, RECORD), record)
    render(out_dir, config, plan, workers, progress)
    for path, content in planning.LAYOUTS[config.layout]().index(plan).items():
        files.write_json(os.path.join(out_dir, path), content)
    record.update(complete=True, seconds=round(time.monotonic() - started, 2))
    files.write_json(os.path.join(out_dir, RECORD), record)
    return record


# ---------------------------------------------------------------- ground truth


def true_mask_dir(fake_video_path):
    """The folder of per-frame PNG masks of a fake video of either layout."""
    folder, name = os.path.split(os.path.splitext(fake_video_path)[0])
    if os.path.basename(folder) == "videos":  # manipulated_sequences/<Method>/<c>/videos/
        method_dir = os.path.dirname(os.path.dirname(folder))
        return os.path.join(method_dir, "masks", "frames", name)
    return os.path.join(folder, "masks", "frames", name)  # dfdc_train_part_N/


def read_true_masks(fake_video_path, binary=True):
    """The ground-truth masks of a fake, frame by frame.

    Args:
      fake_video_path: the fake's .mp4 (any compression) in a synthetic corpus.
      binary: True for the fake-pixel mask (bool, alpha > 0: every pixel
        that differs from the original is in it); False for the 8-bit blend
        alpha (uint8, 255 = fully manipulated).

    Returns:
      (T, H, W) array, frame i for video frame i.

    Raises:
      FileNotFoundError: when the fake has no masks.
    """
    directory = true_mask_dir(fake_video_path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no ground-truth masks for {fake_video_path} (expected {directory})")
    alphas = media.read_mask_frames(directory)
    return alphas > 0 if binary else alphas
