"""Dataset layouts on disk -> lists of videos with their labels, pairs and splits.

Each reader scans a dataset root as its publishers lay it out and returns a
`Scan`: the usable videos (`VideoItem`) and the skipped ones with a reason
(a missing file, a path that leaves the dataset root, ...), so that one bad
entry never stops a run over thousands. Scanning only lists files and reads
the small index files; no video is opened here.

Layouts:
  ffpp   FaceForensics++ (and Google/Jigsaw DFD, shipped inside it):
         original_sequences/{youtube,actors}/<c>/videos/*.mp4,
         manipulated_sequences/<Method>/<c>/videos/*.mp4, optional
         manipulated_sequences/<Method>/masks/videos/*.mp4, splits/*.json.
  dfdc   DFDC training parts: dfdc_train_part_*/metadata.json and videos.
  celebdf  Celeb-DF v2: Celeb-real/, YouTube-real/, Celeb-synthesis/ and
         List_of_testing_videos.txt ("1 path" = real, "0 path" = fake).
  folder any folder of videos (labels unknown), for detection.
"""

import dataclasses
import glob
import hashlib
import json
import os
import re

# FF++'s methods, and SelfBlend, the embedded corpus's self-blended family
# (`data_pipeline.synthetic`), which uses the same layout.
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection",
                "SelfBlend")
# FF++ calls its lossless videos "raw" in some releases and "c0" in others.
COMPRESSIONS = ("c0", "c23", "c40")
_COMPRESSION_FOLDERS = {"raw": "c0", "c0": "c0", "c23": "c23", "c40": "c40"}
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
SPLITS = ("train", "val", "test")
# FF++'s official proportions: 720 / 140 / 140 of 1,000 originals.
_HASH_SPLIT_BOUNDS = ((0.72, "train"), (0.86, "val"), (1.0, "test"))
REAL, FAKE, UNKNOWN = 0, 1, -1


@dataclasses.dataclass(frozen=True)
class VideoItem:
    """One video to process.

    Attributes:
      video_id: unique within the scan, e.g. "Deepfakes/c23/519_515".
      path: the video file.
      label: 1 fake, 0 real, -1 unknown.
      method: manipulation method; "original" for real videos.
      compression: "c0", "c23", "c40", or "" when unknown.
      split: "train", "val", "test", or "" when unknown.
      original_id: id of the real video the fake was made from (a real
        video's own id); "" when the dataset gives no pair.
      original_path: that original's file, or None.
      identity: the person / source clip the split is drawn by.
      mask_path: the dataset's own mask video for this fake, or None.
    """

    video_id: str
    path: str
    label: int
    method: str
    compression: str = ""
    split: str = ""
    original_id: str = ""
    original_path: str | None = None
    identity: str = ""
    mask_path: str | None = None


@dataclasses.dataclass(frozen=True)
class Skip:
    """A video (or index entry) left out, and why."""

    video_id: str
    reason: str
    detail: str = ""


@dataclasses.dataclass
class Scan:
    items: list
    skipped: list

    def count(self, attribute):
        """Number of items per value of `attribute` (e.g. "split", "method", "label")."""
        counts = {}
        for item in self.items:
            key = str(getattr(item, attribute))
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


class LayoutError(ValueError):
    """The dataset root does not look like the layout asked for; the message names what is missing."""


def hash_split(key):
    """A deterministic train/val/test split of a key (FF++ proportions 72/14/14 %).

    Used where a dataset has no official split: every video of one original
    or identity lands in the same split, whatever machine or order.
    """
    fraction = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return next(split for bound, split in _HASH_SPLIT_BOUNDS if fraction <= bound)


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _videos_in(folder):
    return sorted(path for path in glob.glob(os.path.join(folder, "*"))
                  if path.lower().endswith(VIDEO_EXTENSIONS) and os.path.isfile(path))


def _inside(root, path):
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


# ----------------------------------------------------------------- FF++ / DFD

def _ffpp_official_splits(data_dir):
    """id -> split from splits/{train,val,test}.json (pairs [target, source]), or {}."""
    splits = {}
    for split in SPLITS:
        path = os.path.join(data_dir, "splits", f"{split}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for pair in json.load(f):
                for video_id in pair:
                    splits[str(video_id)] = split
    return splits


# DFD fakes are "<target>_<source>__<scene>__<hash>", their originals "<target>__<scene>".
_DFD_FAKE = re.compile(r"^(?P<target>[^_]+)_(?P<source>[^_]+)__(?P<scene>.+)__(?P<tag>[^_]+)$")
# FF++ fakes are "<target>_<source>", with three-digit ids.
_FFPP_FAKE = re.compile(r"^(?P<target>\d+)_(?P<source>\d+)$")


def _compression_dirs(parent, compressions):
    """(compression, folder) for each compression folder present under `parent`."""
    found = {}
    for folder_name, compression in _COMPRESSION_FOLDERS.items():
        folder = os.path.join(parent, folder_name, "videos")
        # "raw" and "c0" hold the same lossless videos; the first one present wins.
        if compression in compressions and compression not in found and os.path.isdir(folder):
            found[compression] = folder
    return sorted(found.items())


def read_ffpp(data_dir, compressions=COMPRESSIONS, methods=FFPP_METHODS):
    """Scans a FaceForensics++ root (with DFD inside it if present).

    Splits come from `splits/*.json` when the id is listed there, else from a
    hash of the original's id (DFD: of the actor), so all videos made from one
    original share a split.
    """
    if not os.path.isdir(os.path.join(data_dir, "original_sequences")) and \
            not os.path.isdir(os.path.join(data_dir, "manipulated_sequences")):
        raise LayoutError(f"{data_dir!r} has neither original_sequences/ nor manipulated_sequences/ "
                          "(not a FaceForensics++ root)")
    official = _ffpp_official_splits(data_dir)
    items, skipped = [], []
    originals = {}  # (source kind, compression, id) -> path
    for kind in ("youtube", "actors"):
        for compression, folder in _compression_dirs(os.path.join(data_dir, "original_sequences", kind),
                                                     compressions):
            for path in _videos_in(folder):
                video_id = _stem(path)
                originals[(kind, compression, video_id)] = path
                identity = video_id.split("__")[0] if kind == "actors" else video_id
                items.append(VideoItem(
                    video_id=f"original/{kind}/{compression}/{video_id}", path=path, label=REAL,
                    method="original", compression=compression,
                    split=official.get(video_id) or hash_split(identity), original_id=video_id,
                    original_path=path, identity=identity))
    for method in methods:
        method_dir = os.path.join(data_dir, "manipulated_sequences", method)
        for compression, folder in _compression_dirs(method_dir, compressions):
            for path in _videos_in(folder):
                fake_id = _stem(path)
                video_id = f"{method}/{compression}/{fake_id}"
                match = (_DFD_FAKE if method == "DeepFakeDetection" else _FFPP_FAKE).match(fake_id)
                if match is None:
                    skipped.append(Skip(video_id, "unrecognized_name", path))
                    continue
                if method == "DeepFakeDetection":
                    kind, original_id = "actors", f"{match['target']}__{match['scene']}"
                    identity = match["target"]
                else:
                    kind, original_id = "youtube", match["target"]
                    identity = original_id
                original_path = originals.get((kind, compression, original_id))
                mask_path = os.path.join(method_dir, "masks", "videos", os.path.basename(path))
                items.append(VideoItem(
                    video_id=video_id, path=path, label=FAKE, method=method, compression=compression,
                    split=official.get(original_id) or hash_split(identity), original_id=original_id,
                    original_path=original_path, identity=identity,
                    mask_path=mask_path if os.path.exists(mask_path) else None))
    return Scan(items, skipped)


# ----------------------------------------------------------------------- DFDC

def read_dfdc(data_dir):
    """Scans DFDC training parts (`dfdc_train_part_*/metadata.json`).

    A fake's `original` names a video in the same part. Entries whose file is
    missing, or whose path leaves the dataset root (`../../x.mp4`), are
    skipped with that reason. DFDC's own metadata marks every video "train";
    when the metadata holds a single split value, splits are instead drawn
    by a hash of the original video (one original's fakes stay together);
    metadata naming several splits is followed as it is.
    """
    parts = sorted(glob.glob(os.path.join(data_dir, "dfdc_train_part_*", "metadata.json")))
    if not parts:
        raise LayoutError(f"{data_dir!r} has no dfdc_train_part_*/metadata.json (not a DFDC root)")
    entries, skipped = [], []
    for metadata_path in parts:
        part_dir = os.path.dirname(metadata_path)
        part = os.path.basename(part_dir)
        try:
            with open(metadata_path) as f:
                metadata = json.load(f)
        except (OSError, ValueError) as error:
            skipped.append(Skip(part, "unreadable_metadata", str(error)))
            continue
        for name, entry in sorted(metadata.items()):
            video_id = f"{part}/{name}"
            path = os.path.join(part_dir, name)
            original = entry.get("original")
            original_path = os.path.join(part_dir, original) if original else None
            if not _inside(data_dir, path) or (original_path and not _inside(data_dir, original_path)):
                skipped.append(Skip(video_id, "path_outside_dataset", f"{name} -> {original}"))
            elif not os.path.lexists(path):
                # An entry that exists but cannot be read (a broken link, a
                # folder) is left to the video reader, which says so.
                skipped.append(Skip(video_id, "missing_file", path))
            else:
                entries.append((part, name, entry, path, original_path))
    metadata_splits = {entry.get("split") for _, _, entry, _, _ in entries}
    use_metadata_split = len(metadata_splits) > 1 and metadata_splits <= set(SPLITS)
    items = []
    for part, name, entry, path, original_path in entries:
        fake = str(entry.get("label", "")).upper() == "FAKE"
        original_name = entry.get("original") if fake else name
        # A fake whose original is absent stays a labelled fake (a classifier
        # can use it) with original_path None; mask extraction skips it.
        original_exists = original_path is not None and os.path.isfile(original_path)
        identity = f"{part}/{_stem(original_name or name)}"
        items.append(VideoItem(
            video_id=f"{part}/{_stem(name)}", path=path, label=FAKE if fake else REAL,
            method="dfdc" if fake else "original", split=entry["split"] if use_metadata_split else
            hash_split(identity), original_id=_stem(original_name or ""),
            original_path=original_path if (fake and original_exists) else (path if not fake else None),
            identity=identity))
    return Scan(items, skipped)


# ------------------------------------------------------------------- Celeb-DF

def read_celebdf(data_dir):
    """Scans Celeb-DF v2. No pairs are published, so fakes carry no original (no masks).

    Videos listed in List_of_testing_videos.txt form the test split, as in the
    official protocol; the others are split into train / val by a hash of
    their identity ("id12"). (The official test list shares identities with
    the rest of the dataset; that is the published protocol, kept as it is.)
    """
    list_path = os.path.join(data_dir, "List_of_testing_videos.txt")
    folders = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
    if not any(os.path.isdir(os.path.join(data_dir, folder)) for folder in folders):
        raise LayoutError(f"{data_dir!r} has none of {', '.join(folders)} (not a Celeb-DF root)")
    tested, skipped = {}, []
    if os.path.exists(list_path):
        with open(list_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] in ("0", "1"):
                    # In this list 1 means real and 0 fake.
                    tested[os.path.normpath(parts[1])] = REAL if parts[0] == "1" else FAKE
    items = []
    for folder, label in folders.items():
        for path in _videos_in(os.path.join(data_dir, folder)):
            relative = os.path.normpath(os.path.relpath(path, data_dir))
            name = _stem(path)
            identity = name.split("_")[0] if folder != "YouTube-real" else f"youtube_{name}"
            if relative in tested and tested[relative] != label:
                skipped.append(Skip(relative, "label_conflict", "test list and folder disagree"))
                continue
            items.append(VideoItem(
                video_id=relative, path=path, label=label, method="celebdf" if label == FAKE else "original",
                split="test" if relative in tested else ("train" if hash_split(identity) == "train" else "val"),
                identity=identity))
    return Scan(items, skipped)


# --------------------------------------------------------------------- folder

def read_folder(data_dir):
    """Every video under `data_dir` (recursively), labels unknown: input to detection."""
    if not os.path.isdir(data_dir):
        raise LayoutError(f"{data_dir!r} is not a folder")
    items = []
    for root, _, files in sorted(os.walk(data_dir)):
        for name in sorted(files):
            if name.lower().endswith(VIDEO_EXTENSIONS):
                path = os.path.join(root, name)
                relative = os.path.relpath(path, data_dir)
                items.append(VideoItem(video_id=relative, path=path, label=UNKNOWN, method="",
                                       identity=os.path.splitext(relative)[0]))
    return Scan(items, [])


READERS = {"ffpp": read_ffpp, "dfdc": read_dfdc, "celebdf": read_celebdf, "folder": read_folder}


def scan(layout, data_dir, **options):
    """Scans `data_dir` as `layout` (one of READERS); options go to the reader.

    Raises:
      LayoutError: an unknown layout, or a folder that is not of that layout.
    """
    if layout not in READERS:
        raise LayoutError(f"unknown layout {layout!r}; expected one of {', '.join(READERS)}")
    if not os.path.isdir(data_dir):
        raise LayoutError(f"--data_dir={data_dir!r} is not a folder")
    return READERS[layout](data_dir, **options)
