"""What the synthetic corpus holds and where: splits, pairs, cameras, seeds and file paths.

Everything is decided here, before a frame is rendered, from the settings and
the photographs in which MTCNN found a face: which original goes to which
split, which originals are paired (FF++ fakes both orders of a pair), the
camera of each original, the seed of each fake, and every file's path in the
FaceForensics++ or DFDC layout.
"""

import dataclasses
import hashlib
import os

import numpy as np

from data_pipeline.synthetic import photos
from data_pipeline.synthetic.manipulations import METHODS

SPLITS = ("train", "val", "test")
DFDC_PART = "dfdc_train_part_0"
# Independent random streams, so that changing one part (say, --methods)
# never changes another.
_STREAM_SPLITS, _STREAM_CAMERA, _STREAM_METHOD = 0, 1, 2


class FFppLayout:
    """Paths and index files of FaceForensics++."""

    def original(self, original_id, compression):
        return f"original_sequences/youtube/{compression}/videos/{original_id}.mp4"

    def fake(self, method, fake_id, compression):
        return f"manipulated_sequences/{method}/{compression}/videos/{fake_id}.mp4"

    def mask_video(self, method, fake_id):
        return f"manipulated_sequences/{method}/masks/videos/{fake_id}.mp4"

    def mask_frames(self, method, fake_id):
        return f"manipulated_sequences/{method}/masks/frames/{fake_id}"

    def index(self, plan):
        """{relative path: JSON object}: FF++'s split files, lists of [target, source] pairs."""
        return {f"splits/{split}.json": [list(pair) for pair in plan.pairs[split]] for split in SPLITS}


class DfdcLayout:
    """Paths and metadata of a DFDC training part: random-looking names, labels in metadata.json."""

    def _name(self, key):
        # DFDC names are ten lowercase letters; derive them from the video's
        # FF++-style key so they are stable and say nothing to a reader.
        digest = hashlib.sha256(key.encode()).digest()
        return "".join(chr(ord("a") + byte % 26) for byte in digest[:10])

    def original(self, original_id, compression):
        del compression  # A DFDC part holds one quality.
        return f"{DFDC_PART}/{self._name(f'original/{original_id}')}.mp4"

    def fake(self, method, fake_id, compression):
        del compression
        return f"{DFDC_PART}/{self._name(f'{method}/{fake_id}')}.mp4"

    def mask_video(self, method, fake_id):
        return f"{DFDC_PART}/masks/videos/{self._name(f'{method}/{fake_id}')}.mp4"

    def mask_frames(self, method, fake_id):
        return f"{DFDC_PART}/masks/frames/{self._name(f'{method}/{fake_id}')}"

    def index(self, plan):
        """{relative path: JSON object}: DFDC's metadata.json."""
        metadata = {}
        for original in plan.originals:
            for path in original.videos.values():
                metadata[os.path.basename(path)] = {"label": "REAL", "split": original.split}
        for fake in plan.fakes:
            for path in fake.videos.values():
                original_name = os.path.basename(next(iter(fake.target.videos.values())))
                metadata[os.path.basename(path)] = {"label": "FAKE", "split": fake.target.split,
                                                    "original": original_name}
        return {f"{DFDC_PART}/metadata.json": metadata}


LAYOUTS = {"ffpp": FFppLayout, "dfdc": DfdcLayout}


@dataclasses.dataclass(frozen=True)
class Original:
    """A real video to make: a photograph, its split and camera, and its files."""

    id: str
    face: photos.Face
    split: str
    shot: photos.Shot
    videos: dict  # compression -> path relative to the corpus folder


@dataclasses.dataclass(frozen=True)
class Fake:
    """A fake to make from `target`'s frames, with `source` as donor or driver, and its files."""

    id: str  # TTT_SSS
    method: str
    target: Original
    source: Original
    seed: list  # seeds everything random in this fake
    videos: dict  # compression -> path relative to the corpus folder
    mask_video: str
    mask_frames: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every video of a corpus, decided before any is rendered."""

    originals: list
    fakes: list
    pairs: dict  # split -> [(target id, source id), ...]


def split_sizes(num_originals):
    """Originals per split: FF++'s 72/14/14 %, in whole pairs, at least one pair each."""
    held_out_pairs = max(1, round(0.07 * num_originals))
    held_out = 2 * held_out_pairs
    return {"train": num_originals - 2 * held_out, "val": held_out, "test": held_out}


def assign_splits(num_originals, rng):
    """A split for each original, dealt in catalogue order a round at a time.

    Each round gives one original to each split that still has room, in a
    random order, so the three full-resolution photographs that open the
    catalogue land in three different splits. One original per photograph
    keeps identities out of each other's splits.
    """
    room = split_sizes(num_originals)
    splits = []
    while len(splits) < num_originals:
        for split in rng.permutation(SPLITS):
            if room[split] and len(splits) < num_originals:
                splits.append(str(split))
                room[split] -= 1
    return splits


def make_plan(config, faces):
    """Decides every video: its face, split, camera, partner and paths.

    Args:
      config: a `synthetic.CorpusConfig`.
      faces: `config.num_originals` `photos.Face`s, in catalogue order.

    Returns:
      A `Plan`.
    """
    layout = LAYOUTS[config.layout]()
    split_rng = np.random.default_rng([config.seed, _STREAM_SPLITS])
    splits = assign_splits(config.num_originals, split_rng)
    originals = []
    for index, (face, split) in enumerate(zip(faces, splits)):
        original_id = f"{index:03d}"
        shot = photos.plan_shot(np.random.default_rng([config.seed, _STREAM_CAMERA, index]), face,
                                         config.frame_size, config.num_frames)
        videos = {c: layout.original(original_id, c) for c in config.compressions}
        originals.append(Original(original_id, face, split, shot, videos))
    pairs, fakes = {}, []
    for split in SPLITS:
        members = [o for o in originals if o.split == split]
        order = split_rng.permutation(len(members))
        pairs[split] = [(members[a].id, members[b].id) for a, b in zip(order[0::2], order[1::2])]
        for first, second in pairs[split]:
            for target_id, source_id in ((first, second), (second, first)):
                fakes.extend(_fakes_of(config, layout, originals[int(target_id)], originals[int(source_id)]))
    return Plan(originals, fakes, pairs)


def _fakes_of(config, layout, target, source):
    fake_id = f"{target.id}_{source.id}"
    for method in config.methods:
        seed = [config.seed, _STREAM_METHOD + METHODS.index(method), int(target.id), int(source.id)]
        yield Fake(fake_id, method, target, source, seed,
                   {c: layout.fake(method, fake_id, c) for c in config.compressions},
                   layout.mask_video(method, fake_id), layout.mask_frames(method, fake_id))
