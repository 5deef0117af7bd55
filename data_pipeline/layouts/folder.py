"""Any folder of videos, labels unknown: the input of detection."""

import os

from data_pipeline.layouts.common import (UNKNOWN, VIDEO_EXTENSIONS, LayoutError, Scan, VideoItem, inside,
                                          outside_skip)


def read_folder(data_dir):
    """Every video under `data_dir` (recursively), labels unknown: input to detection.

    Linked folders are not entered; a linked file that leads out of
    `data_dir` is skipped (OUTSIDE), as in every layout.
    """
    if not os.path.isdir(data_dir):
        raise LayoutError(f"{data_dir!r} is not a folder")
    items, skipped = [], []
    for root, _, files in sorted(os.walk(data_dir)):
        for name in sorted(files):
            if name.lower().endswith(VIDEO_EXTENSIONS):
                path = os.path.join(root, name)
                relative = os.path.relpath(path, data_dir)
                if not inside(data_dir, path):
                    skipped.append(outside_skip(data_dir, path))
                    continue
                items.append(VideoItem(video_id=relative, path=path, label=UNKNOWN, method="",
                                       identity=os.path.splitext(relative)[0]))
    return Scan(items, skipped)
