"""What every layout reader shares: items and skips of a scan, labels, skip reasons, the path rule, splits."""

import dataclasses
import glob
import hashlib
import os

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
SPLITS = ("train", "val", "test")
# FF++'s official proportions: 720 / 140 / 140 of 1,000 originals.
_HASH_SPLIT_BOUNDS = ((0.72, "train"), (0.86, "val"), (1.0, "test"))
REAL, FAKE, UNKNOWN = 0, 1, -1
# Skip reasons of the scan itself (the video reader adds its own later).
OUTSIDE = "path_outside_dataset"
MISSING = "missing_file"
UNREADABLE_METADATA = "unreadable_metadata"
MALFORMED_METADATA = "malformed_metadata"
MALFORMED_ENTRY = "malformed_entry"
UNKNOWN_LABEL = "unknown_label"


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


def stem(path):
    """The file name of `path` without its folder and extension (a video's id in most layouts)."""
    return os.path.splitext(os.path.basename(path))[0]


def inside(data_dir, path):
    """Whether `path`, with its symlinks and `..` resolved, lies inside `data_dir` (resolved alike).

    The one rule for paths of every reader: a link or a `..` must not take a
    scan out of the dataset the user named.
    """
    root, real = os.path.realpath(data_dir), os.path.realpath(path)
    return os.path.commonpath([root, real]) == root


def outside_skip(data_dir, path, video_id=None):
    """The Skip of a file that leaves the dataset: it names the path and where it leads."""
    relative = os.path.relpath(path, data_dir)
    return Skip(video_id or relative, OUTSIDE, f"{relative} -> {os.path.realpath(path)}")


def videos_in(data_dir, folder, skipped):
    """The video files directly in `folder`, sorted; those leaving `data_dir` go to `skipped`."""
    videos = []
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        if not path.lower().endswith(VIDEO_EXTENSIONS):
            continue
        if not inside(data_dir, path):
            skipped.append(outside_skip(data_dir, path))
        elif os.path.isfile(path):
            videos.append(path)
    return videos


def index_file(data_dir, path):
    """Opens an index file (FF++ splits, Celeb-DF's test list) that decides splits.

    Raises:
      LayoutError: for a file leaving the dataset or that cannot be read.
    """
    if not inside(data_dir, path):
        raise LayoutError(f"{path} leads out of the dataset (to {os.path.realpath(path)})")
    try:
        return open(path, encoding="utf-8")
    except OSError as error:
        raise LayoutError(f"cannot read {path}: {error.strerror or error}") from error
