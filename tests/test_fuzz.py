"""A bounded, seeded fuzz pass: mutated bytes of a small video and of a small DFDC metadata.json.

The readers must end every case with the project's own error (VideoError,
LayoutError) or a counted skip, never with another exception. The cases are
fixed by their seeds, so a failure names a case that reproduces.
"""

import json
import os

import numpy as np
import pytest

from data_pipeline import layouts, video, video_writer

VIDEO_CASES = 200
METADATA_CASES = 300
FRAMES = 6


def _mutate(data, rng):
    """One random damage to `data`: flipped bytes, a cut, inserted or zeroed bytes, or a repeated chunk."""
    data = bytearray(data)
    kind = int(rng.integers(5))
    start = int(rng.integers(len(data)))
    length = int(rng.integers(1, 64))
    if kind == 0:
        for position in rng.integers(len(data), size=int(rng.integers(1, 9))):
            data[position] = int(rng.integers(256))
    elif kind == 1:
        del data[start:]
    elif kind == 2:
        data[start:start] = rng.bytes(length)
    elif kind == 3:
        data[start:start + length] = bytes(len(data[start:start + length]))
    else:
        data[start:start] = data[start:start + length] * int(rng.integers(2, 5))
    return bytes(data)


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    """The bytes of a 32x32 H.264 .mp4 of FRAMES frames, written with the project's writer."""
    path = str(tmp_path_factory.mktemp("fuzz") / "small.mp4")
    rng = np.random.default_rng(0)
    with video_writer.VideoWriter(path, (32, 32), video_writer.COMPRESSIONS["c23"]) as writer:
        for _ in range(FRAMES):
            writer.write(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    with open(path, "rb") as f:
        return f.read()


def test_mutated_videos_give_frames_or_a_video_error(tmp_path, small_video):
    assert len(list(video.read_frames(_write(tmp_path / "whole.mp4", small_video), range(FRAMES)))) == FRAMES
    rng = np.random.default_rng(22)
    outcomes = {"frames": 0, "video_error": 0}
    for case in range(VIDEO_CASES):
        path = _write(tmp_path / f"case{case}.mp4", _mutate(small_video, rng))
        try:
            info = video.probe(path)
            frames = list(video.read_frames(path, range(min(info.frame_count, FRAMES * 2))))
        except video.VideoError:
            outcomes["video_error"] += 1
        except Exception as error:  # any other type is the failure this test looks for
            pytest.fail(f"case {case} (seed 22): {type(error).__name__}: {error}")
        else:
            assert all(frame.ndim == 3 and frame.shape[2] == 3 for _, frame in frames), case
            outcomes["frames"] += 1
        os.remove(path)
    # Both outcomes occur: the mutations reach past the header and into it.
    assert outcomes["frames"] and outcomes["video_error"], outcomes


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


_METADATA = {
    "a.mp4": {"label": "REAL", "split": "train", "original": None},
    "b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"},
    "c.mp4": {"label": "FAKE", "split": "train", "original": "absent.mp4"},
}
# What a structural mutation puts in place of a value or an entry.
_ODD_VALUES = [None, 0, -1, 1.5, True, "", "FAKE", "REAL", "../../x.mp4", "a.mp4", "\u0000", [], ["a.mp4"],
               {}, {"label": "FAKE"}, "x" * 300]


def _mutate_structure(rng):
    """The sample metadata with one entry, field or the whole document replaced by an odd value."""
    metadata = json.loads(json.dumps(_METADATA))
    odd = _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
    name = sorted(metadata)[int(rng.integers(len(metadata)))]
    where = int(rng.integers(4))
    if where == 0:
        return odd
    if where == 1:
        metadata[name] = odd
    elif where == 2:
        metadata[name][("label", "split", "original")[int(rng.integers(3))]] = odd
    else:
        metadata[odd if isinstance(odd, str) else name] = {"label": "FAKE", "original": odd}
    return metadata


def test_mutated_dfdc_metadata_gives_items_and_counted_skips(tmp_path):
    root = tmp_path / "dfdc"
    part = root / "dfdc_train_part_0"
    part.mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (part / name).write_bytes(b"\0")
    (part / "metadata.json").write_text(json.dumps(_METADATA))
    baseline = layouts.scan("dfdc", str(root))
    assert len(baseline.items) == 2 and [s.reason for s in baseline.skipped] == [layouts.MISSING]
    original = json.dumps(_METADATA).encode()
    rng = np.random.default_rng(22)
    reasons = {}
    for case in range(METADATA_CASES):
        if case % 2:
            content = _mutate(original, rng)
        else:
            content = json.dumps(_mutate_structure(rng)).encode()
        (part / "metadata.json").write_bytes(content)
        try:
            scan = layouts.scan("dfdc", str(root))
        except layouts.LayoutError:
            reasons["LayoutError"] = reasons.get("LayoutError", 0) + 1
            continue
        except Exception as error:  # any other type is the failure this test looks for
            pytest.fail(f"case {case} (seed 22) {content[:200]!r}: {type(error).__name__}: {error}")
        for skip in scan.skipped:
            reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
        for item in scan.items:
            assert layouts.inside(str(root), item.path) and item.label in (layouts.REAL, layouts.FAKE), case
    # The damage is seen for what it is: broken JSON, a wrong shape, a bad entry or label.
    assert {layouts.UNREADABLE_METADATA, layouts.MALFORMED_METADATA, layouts.MALFORMED_ENTRY,
            layouts.UNKNOWN_LABEL} <= set(reasons), reasons
