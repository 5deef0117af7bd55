"""Dataset layouts on disk -> lists of videos with their labels, pairs and splits.

Each reader scans a dataset root as its publishers lay it out and returns a
`Scan`: the usable videos (`VideoItem`) and the skipped ones with a reason
(a missing file, a path that leaves the dataset root, ...), so that one bad
entry never stops a run over thousands. Scanning only lists files and reads
the small index files; no video is opened here.

One rule for paths holds in every reader (`inside`): a file counts only if
its real path, symlinks and `..` resolved, stays inside the dataset root;
one that leaves it is a Skip with reason OUTSIDE naming the path. An index
file that decides splits (FF++'s `splits/*.json`, Celeb-DF's test list) and
cannot be used is a LayoutError: guessing splits instead would quietly mix
test videos into training. A DFDC metadata.json that cannot be used skips
its part only.

Layouts:
  ffpp   FaceForensics++ (and Google/Jigsaw DFD, shipped inside it):
         original_sequences/{youtube,actors}/<c>/videos/*.mp4,
         manipulated_sequences/<Method>/<c>/videos/*.mp4, optional
         manipulated_sequences/<Method>/masks/videos/*.mp4, splits/*.json.
  dfdc   DFDC training parts: dfdc_train_part_*/metadata.json and videos.
  celebdf  Celeb-DF v2: Celeb-real/, YouTube-real/, Celeb-synthesis/ and
         List_of_testing_videos.txt ("1 path" = real, "0 path" = fake).
  folder any folder of videos (labels unknown), for detection.

Modules: common (what every reader shares), ffpp, dfdc, celebdf, folder.
"""

import os

from data_pipeline.layouts.celebdf import read_celebdf
from data_pipeline.layouts.common import (FAKE, MALFORMED_ENTRY, MALFORMED_METADATA, MISSING, OUTSIDE, REAL,
                                          SPLITS, UNKNOWN, UNKNOWN_LABEL, UNREADABLE_METADATA,
                                          VIDEO_EXTENSIONS, LayoutError, Scan, Skip, VideoItem, hash_split,
                                          inside)
from data_pipeline.layouts.dfdc import read_dfdc
from data_pipeline.layouts.ffpp import COMPRESSIONS, FFPP_METHODS, read_ffpp
from data_pipeline.layouts.folder import read_folder

__all__ = ["COMPRESSIONS", "FAKE", "FFPP_METHODS", "MALFORMED_ENTRY", "MALFORMED_METADATA", "MISSING",
           "OUTSIDE", "READERS", "REAL", "SPLITS", "UNKNOWN", "UNKNOWN_LABEL", "UNREADABLE_METADATA",
           "VIDEO_EXTENSIONS", "LayoutError", "Scan", "Skip", "VideoItem", "hash_split", "inside",
           "read_celebdf", "read_dfdc", "read_ffpp", "read_folder", "scan"]

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
