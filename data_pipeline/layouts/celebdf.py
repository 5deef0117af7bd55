"""Celeb-DF v2: Celeb-real/, YouTube-real/, Celeb-synthesis/ and the official test list."""

import os

from data_pipeline.layouts.common import (FAKE, REAL, LayoutError, Scan, Skip, VideoItem, hash_split,
                                          index_file, stem, videos_in)


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
    if os.path.lexists(list_path):
        try:
            with index_file(data_dir, list_path) as f:
                lines = f.read().splitlines()
        except ValueError as error:
            raise LayoutError(f"{list_path} is not a text file ({error}); fix or remove it") from error
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("0", "1"):
                # In this list 1 means real and 0 fake.
                tested[os.path.normpath(parts[1])] = REAL if parts[0] == "1" else FAKE
    items = []
    for folder, label in folders.items():
        for path in videos_in(data_dir, os.path.join(data_dir, folder), skipped):
            relative = os.path.normpath(os.path.relpath(path, data_dir))
            name = stem(path)
            identity = name.split("_")[0] if folder != "YouTube-real" else f"youtube_{name}"
            if relative in tested and tested[relative] != label:
                skipped.append(Skip(relative, "label_conflict", "test list and folder disagree"))
                continue
            items.append(VideoItem(
                video_id=relative, path=path, label=label, method="celebdf" if label == FAKE else "original",
                split="test" if relative in tested
                else ("train" if hash_split(identity) == "train" else "val"),
                identity=identity))
    return Scan(items, skipped)
