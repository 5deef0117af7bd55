"""DFDC training parts: dfdc_train_part_*/metadata.json and the videos it names."""

import glob
import json
import os

from data_pipeline.layouts.common import (FAKE, MALFORMED_ENTRY, MALFORMED_METADATA, MISSING, OUTSIDE, REAL,
                                          SPLITS, UNKNOWN_LABEL, UNREADABLE_METADATA, LayoutError, Scan, Skip,
                                          VideoItem, hash_split, inside, outside_skip, stem)

_DFDC_LABELS = {"REAL": REAL, "FAKE": FAKE}


def _dfdc_entry_problem(name, entry):
    """(reason, detail) of a metadata.json entry that cannot be used, or None for a good one."""
    if not isinstance(entry, dict):
        return MALFORMED_ENTRY, f"the entry is {type(entry).__name__} {entry!r:.60}, not an object"
    label = entry.get("label")
    if not isinstance(label, str) or label.upper() not in _DFDC_LABELS:
        return UNKNOWN_LABEL, f"label {label!r:.60} is neither REAL nor FAKE"
    original, split = entry.get("original"), entry.get("split")
    if original is not None and not isinstance(original, str):
        return MALFORMED_ENTRY, f"original {original!r:.60} is not a file name"
    if split is not None and not isinstance(split, str):
        return MALFORMED_ENTRY, f"split {split!r:.60} is not a name"
    if "\0" in name or "\0" in (original or ""):
        return MALFORMED_ENTRY, "a file name holds a NUL character"
    return None


def _dfdc_part_entries(data_dir, metadata_path, skipped):
    """The usable entries of one part's metadata.json: (part, name, entry, path, original path) each.

    Whatever is wrong with the file or an entry goes to `skipped` with its
    reason; nothing in it ends the scan of the other parts.
    """
    part_dir = os.path.dirname(metadata_path)
    part = os.path.basename(part_dir)
    if not inside(data_dir, metadata_path):
        skipped.append(outside_skip(data_dir, metadata_path, part))
        return []
    try:
        with open(metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError, RecursionError) as error:
        skipped.append(Skip(part, UNREADABLE_METADATA, str(error)))
        return []
    if not isinstance(metadata, dict):
        skipped.append(Skip(part, MALFORMED_METADATA,
                            f"{metadata_path} holds a {type(metadata).__name__}, not an object of videos"))
        return []
    entries = []
    for name, entry in sorted(metadata.items()):
        video_id = f"{part}/{name}"
        problem = _dfdc_entry_problem(name, entry)
        if problem:
            skipped.append(Skip(video_id, *problem))
            continue
        path = os.path.join(part_dir, name)
        original = entry.get("original") or None
        original_path = os.path.join(part_dir, original) if original else None
        if not inside(data_dir, path) or (original_path and not inside(data_dir, original_path)):
            skipped.append(Skip(video_id, OUTSIDE, f"{name} -> {original}"))
        elif not os.path.lexists(path):
            # An entry that exists but cannot be read (a broken link, a
            # folder) is left to the video reader, which says so.
            skipped.append(Skip(video_id, MISSING, path))
        else:
            entries.append((part, name, entry, path, original_path))
    return entries


def read_dfdc(data_dir):
    """Scans DFDC training parts (`dfdc_train_part_*/metadata.json`).

    A fake's `original` names a video in the same part. Entries whose file is
    missing, or whose path leaves the dataset root (`../../x.mp4`), are
    skipped with that reason; so are entries of the wrong shape (not an
    object, a label other than REAL / FAKE, a non-string original or
    split), and whole parts whose metadata.json is not a JSON object. DFDC's
    own metadata marks every video "train"; when the metadata holds a single
    split value, splits are instead drawn by a hash of the original video
    (one original's fakes stay together); metadata naming several splits is
    followed as it is.
    """
    parts = sorted(glob.glob(os.path.join(data_dir, "dfdc_train_part_*", "metadata.json")))
    if not parts:
        raise LayoutError(f"{data_dir!r} has no dfdc_train_part_*/metadata.json (not a DFDC root)")
    entries, skipped = [], []
    for metadata_path in parts:
        entries += _dfdc_part_entries(data_dir, metadata_path, skipped)
    metadata_splits = {entry.get("split") for _, _, entry, _, _ in entries}
    use_metadata_split = len(metadata_splits) > 1 and metadata_splits <= set(SPLITS)
    items = []
    for part, name, entry, path, original_path in entries:
        fake = _DFDC_LABELS[entry["label"].upper()] == FAKE
        original_name = (entry.get("original") or None) if fake else name
        # A fake whose original is absent stays a labelled fake (a classifier
        # can use it) with original_path None; mask extraction skips it.
        original_exists = original_path is not None and os.path.isfile(original_path)
        identity = f"{part}/{stem(original_name or name)}"
        items.append(VideoItem(
            video_id=f"{part}/{stem(name)}", path=path, label=FAKE if fake else REAL,
            method="dfdc" if fake else "original", split=entry["split"] if use_metadata_split else
            hash_split(identity), original_id=stem(original_name or ""),
            original_path=original_path if (fake and original_exists) else (path if not fake else None),
            identity=identity))
    return Scan(items, skipped)
