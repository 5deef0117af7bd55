"""Frame sampling and lockstep reading, including the bad files met in real datasets."""

import os

import numpy as np
import pytest

from data_pipeline import video

from conftest import SHARED_DIR, write_video

FFPP = os.path.join(SHARED_DIR, "realdata", "ffpp")
FAKE = os.path.join(FFPP, "manipulated_sequences", "Deepfakes", "c23", "videos", "519_515.mp4")
ORIGINAL = os.path.join(FFPP, "original_sequences", "youtube", "c23", "videos", "519.mp4")


def numbered_frames(count, size=(48, 64)):
    """Frames whose grey level encodes their index, so order can be checked after decoding."""
    return [np.full((*size, 3), 10 + 5 * i, np.uint8) for i in range(count)]


@pytest.mark.parametrize("count, per_video, stride, expected", [
    (751, 4, 0, [0, 250, 500, 750]),
    (3, 32, 0, [0, 1, 2]),
    (10, 32, 4, [0, 4, 8]),
    (0, 32, 0, []),
])
def test_sample_indices(count, per_video, stride, expected):
    assert video.sample_indices(count, per_video, stride) == expected


def test_real_pair_is_read_in_lockstep():
    indices, note = video.plan_pair(FAKE, ORIGINAL, frames_per_video=4)
    assert indices == [0, 250, 500, 750] and note == ""
    frames = list(video.read_pair(FAKE, ORIGINAL, indices))
    assert [index for index, _, _ in frames] == indices
    for _, fake, original in frames:
        assert fake.shape == original.shape == (480, 640, 3)
        # Aligned frames: the fake differs from its original, but only a little on average.
        difference = np.abs(fake.astype(int) - original.astype(int)).mean()
        assert 0.2 < difference < 10


def test_frames_come_in_order_and_rgb(tmp_path):
    frames = numbered_frames(12)
    frames[0][..., 0] = 200  # red channel marks frame 0
    path = write_video(tmp_path / "v.mp4", frames)
    decoded = dict(video.read_frames(path, [0, 5, 11]))
    assert sorted(decoded) == [0, 5, 11]
    assert decoded[0][..., 0].mean() > decoded[0][..., 2].mean() + 100  # RGB, not BGR
    assert abs(decoded[5][..., 1].mean() - (10 + 5 * 5)) < 4


def test_count_mismatch_uses_the_common_prefix(tmp_path):
    fake = write_video(tmp_path / "fake.mp4", numbered_frames(10))
    original = write_video(tmp_path / "original.mp4", numbered_frames(14))
    indices, note = video.plan_pair(fake, original, frames_per_video=32)
    assert indices == list(range(10)) and "first 10" in note


def test_size_mismatch_is_refused(tmp_path):
    fake = write_video(tmp_path / "fake.mp4", numbered_frames(5, (48, 64)))
    original = write_video(tmp_path / "original.mp4", numbered_frames(5, (64, 48)))
    with pytest.raises(video.VideoError) as error:
        video.plan_pair(fake, original)
    assert error.value.reason == "size_mismatch"


def _truncated(tmp_path):
    path = write_video(tmp_path / "whole.mp4", numbered_frames(30))
    data = open(path, "rb").read()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return str(tmp_path / "truncated.mp4")


@pytest.mark.parametrize("make, reasons", [
    (lambda tmp: str(tmp / "missing.mp4"), {"unreadable_video"}),
    (lambda tmp: (tmp / "empty.mp4").write_bytes(b"") or str(tmp / "empty.mp4"), {"unreadable_video", "empty_video"}),
    (lambda tmp: (tmp / "text.mp4").write_text("not a video\n" * 50) or str(tmp / "text.mp4"),
     {"unreadable_video", "empty_video"}),
    (lambda tmp: os.symlink(tmp / "nowhere.mp4", tmp / "broken.mp4") or str(tmp / "broken.mp4"), {"unreadable_video"}),
])
def test_bad_files_raise_a_video_error_with_a_reason(tmp_path, make, reasons):
    with pytest.raises(video.VideoError) as error:
        video.probe(make(tmp_path))
    assert error.value.reason in reasons


def test_truncated_file_yields_what_it_has(tmp_path):
    path = _truncated(tmp_path)
    try:
        frames = list(video.read_frames(path, range(30)))
    except video.VideoError as error:  # some containers cannot even be opened once cut
        assert error.reason == "unreadable_video"
        return
    assert len(frames) < 30
