"""FaceForensics++ (and Google/Jigsaw DFD, shipped inside it): originals, fakes, masks, official splits."""

import json
import os
import re

from data_pipeline.layouts.common import (FAKE, REAL, SPLITS, LayoutError, Scan, Skip, VideoItem, hash_split,
                                          index_file, inside, outside_skip, stem, videos_in)

# FF++'s methods, and SelfBlend, the embedded corpus's self-blended family
# (`data_pipeline.synthetic`), which uses the same layout.
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection",
                "SelfBlend")
# FF++ calls its lossless videos "raw" in some releases and "c0" in others.
COMPRESSIONS = ("c0", "c23", "c40")
_COMPRESSION_FOLDERS = {"raw": "c0", "c0": "c0", "c23": "c23", "c40": "c40"}


def _ffpp_official_splits(data_dir):
    """id -> split from splits/{train,val,test}.json (pairs [target, source]), or {} without them.

    Raises:
      LayoutError: for a split file that is not JSON, not a list of id
        lists, or that lists an id another split file lists too; the user
        fixes or removes it (without split files, splits are drawn by hash).
    """
    splits = {}
    for split in SPLITS:
        path = os.path.join(data_dir, "splits", f"{split}.json")
        if not os.path.lexists(path):
            continue
        try:
            with index_file(data_dir, path) as f:
                pairs = json.load(f)
        except (ValueError, RecursionError) as error:
            raise LayoutError(f"{path} is not valid JSON ({error}); fix or remove it") from error
        # Ids are strings ("953") or numbers; not True, which is an int to isinstance.
        if not isinstance(pairs, list) or not all(
                isinstance(pair, list) and all(type(video_id) in (str, int) for video_id in pair)
                for pair in pairs):
            raise LayoutError(f"{path} is not a list of id lists such as [[\"953\", \"974\"], ...]; "
                              "fix or remove it")
        for pair in pairs:
            for video_id in map(str, pair):
                if splits.get(video_id, split) != split:
                    raise LayoutError(f"{path} lists {video_id!r}, which splits/{splits[video_id]}.json "
                                      "lists too; fix or remove one of them")
                splits[video_id] = split
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
            for path in videos_in(data_dir, folder, skipped):
                video_id = stem(path)
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
            for path in videos_in(data_dir, folder, skipped):
                fake_id = stem(path)
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
                if os.path.lexists(mask_path) and not inside(data_dir, mask_path):
                    # The mask is left out, the fake kept: its mask can come from the difference.
                    skipped.append(outside_skip(data_dir, mask_path))
                    mask_path = None
                items.append(VideoItem(
                    video_id=video_id, path=path, label=FAKE, method=method, compression=compression,
                    split=official.get(original_id) or hash_split(identity), original_id=original_id,
                    original_path=original_path, identity=identity,
                    mask_path=mask_path if mask_path and os.path.exists(mask_path) else None))
    return Scan(items, skipped)
