"""Atomic files: everything the project writes appears whole or not at all.

A writer goes to a hidden sibling (`temporary_sibling`) and renames it into
place when complete, so a reader never sees half a file and a killed job
leaves the previous version intact. The data pipeline and the training jobs
(`unet_industrial.run_files`) share these helpers.
"""

import json
import os
import tempfile


def temporary_sibling(path):
    """A hidden name beside `path` (same folder, same suffix) to write before renaming.

    The suffix is kept because some writers pick the format from it (Keras
    wants `.keras`, PyAV the container).
    """
    return os.path.join(os.path.dirname(path), f".tmp-{os.path.basename(path)}")


def atomic_write(path, data):
    """Writes bytes or text to `path` through a uniquely named temporary file and a rename.

    The temporary name is unique, so processes racing to write the same
    file (say, two workers caching one original's faces) never mix bytes.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    handle, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, mode) as f:
            f.write(data)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def write_json(path, obj):
    """`atomic_write` of `obj` as indented JSON with sorted keys."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
