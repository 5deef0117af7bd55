"""Frame sampling and lockstep reading, including the bad files met in real datasets."""

import os
import threading

import numpy as np
import pytest

from data_pipeline import video

from conftest import REALDATA_DIR, requires_realdata, write_video

FFPP = os.path.join(REALDATA_DIR, "ffpp")
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


@requires_realdata
def test_real_pair_is_read_in_lockstep():
    plan = video.plan_pair(FAKE, ORIGINAL, frames_per_video=4)
    assert plan.indices == [0, 250, 500, 750] and plan.note == "" and plan.offset == (0, 0)
    frames = list(video.read_pair(FAKE, ORIGINAL, plan))
    assert [index for index, _, _ in frames] == plan.indices
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
    plan = video.plan_pair(fake, original, frames_per_video=32)
    assert plan.indices == list(range(10)) and "first 10" in plan.note


def test_size_mismatch_is_refused(tmp_path):
    fake = write_video(tmp_path / "fake.mp4", numbered_frames(5, (48, 64)))
    original = write_video(tmp_path / "original.mp4", numbered_frames(5, (64, 48)))
    with pytest.raises(video.VideoError) as error:
        video.plan_pair(fake, original)
    assert error.value.reason == "size_mismatch"


def textured_frames(count, size=(64, 96), seed=0):
    """Frames of smooth random texture, so that a misaligned cut differs visibly from an aligned one."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), np.uint8)
    frame = np.kron(base, np.ones((8, 8, 1), np.uint8))
    return [np.roll(frame, i, axis=1) for i in range(count)]


def test_a_centre_cut_fake_is_aligned_with_its_original(tmp_path):
    frames = textured_frames(6, (64, 96))
    original = write_video(tmp_path / "original.mp4", frames)
    # Face2Face's way: the fake keeps the centre 64 x 80 of a 64 x 96 original.
    fake = write_video(tmp_path / "fake.mp4", [frame[:, 8:88] for frame in frames])
    plan = video.plan_pair(fake, original, frames_per_video=3)
    assert plan.offset == (8, 0) and plan.size == (80, 64)
    assert "centre of the 96x64 original" in plan.note
    pairs = list(video.read_pair(fake, original, plan))
    assert len(pairs) == 3
    for _, fake_frame, original_frame in pairs:
        assert fake_frame.shape == original_frame.shape == (64, 80, 3)
        assert np.abs(fake_frame.astype(int) - original_frame.astype(int)).mean() < 6


@pytest.mark.parametrize("fake_size, original_size, expected", [
    ((832, 480), (854, 480), (11, 0)),
    ((640, 480), (654, 480), (7, 0)),
    ((640, 480), (640, 480), (0, 0)),
    ((854, 480), (832, 480), None),  # a larger fake is no cut of its original
    ((600, 480), (854, 480), None),  # a cut this large is no codec's rounding
])
def test_centre_cut_offset(fake_size, original_size, expected):
    assert video.centre_cut_offset(fake_size, original_size) == expected


def test_real_face2face_fakes_are_their_originals_centre(realdata_train):
    fake = os.path.join(realdata_train, "manipulated_sequences", "Face2Face", "c23", "videos", "469_481.mp4")
    original = os.path.join(realdata_train, "original_sequences", "youtube", "c23", "videos", "469.mp4")
    plan = video.plan_pair(fake, original, frames_per_video=2)
    assert plan.offset == (11, 0) and plan.size == (832, 480)

    def difference(offset):
        (_, fake_frame, original_frame), = video.read_pair(fake, original,
                                                           video.PairPlan([10], "", offset, plan.size))
        return np.abs(fake_frame.astype(int) - original_frame.astype(int)).mean()

    # The centre cut matches best: one pixel either way differs clearly more.
    assert difference(plan.offset) + 0.5 < min(difference((10, 0)), difference((12, 0)))


def _truncated(tmp_path):
    path = write_video(tmp_path / "whole.mp4", numbered_frames(30))
    data = open(path, "rb").read()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return str(tmp_path / "truncated.mp4")


@pytest.mark.parametrize("make, reasons", [
    (lambda tmp: str(tmp / "missing.mp4"), {"unreadable_video"}),
    (lambda tmp: (tmp / "empty.mp4").write_bytes(b"") or str(tmp / "empty.mp4"),
     {"unreadable_video", "empty_video"}),
    (lambda tmp: (tmp / "text.mp4").write_text("not a video\n" * 50) or str(tmp / "text.mp4"),
     {"unreadable_video", "empty_video"}),
    (lambda tmp: os.symlink(tmp / "nowhere.mp4", tmp / "broken.mp4") or str(tmp / "broken.mp4"),
     {"unreadable_video"}),
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


def _opencv_sequential(path, indices):
    """Every frame decoded in order by OpenCV, the wanted ones kept: what the reader used to do."""
    import cv2

    capture, frames, position = cv2.VideoCapture(path), {}, 0
    while position <= max(indices):
        ok, frame = capture.read()
        if not ok:
            break
        if position in indices:
            frames[position] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        position += 1
    capture.release()
    return frames


@requires_realdata
@pytest.mark.parametrize("path, count", [
    (ORIGINAL, 12),  # 640x480 with B-frames
    (os.path.join(REALDATA_DIR, "dfdc", "dfdc_train_part_0", "brtujopkby.mp4"), 8),  # 1080x1920 portrait
    (os.path.join(REALDATA_DIR, "real_faces", "grid", "bbaf2n.mpg"), 8),  # MPEG-1 in an MPEG program stream
])
def test_skipping_decode_gives_opencvs_frames_pixel_for_pixel(path, count):
    indices = video.sample_indices(video.probe(path).frame_count, count) + [1, 2]  # neighbours too
    expected = _opencv_sequential(path, set(indices))
    decoded = list(video.read_frames(path, indices))
    assert [index for index, _ in decoded] == sorted(set(indices)) == sorted(expected)
    for index, frame in decoded:
        np.testing.assert_array_equal(frame, expected[index], err_msg=f"frame {index} of {path}")


def test_frames_beyond_the_end_are_not_invented(tmp_path):
    path = write_video(tmp_path / "v.mp4", numbered_frames(6))
    assert [index for index, _ in video.read_frames(path, [2, 5, 9, 40])] == [2, 5]


def test_held_original_frames_are_paired_instead_of_decoding_the_original_again(tmp_path):
    frames = textured_frames(5)
    fake = write_video(tmp_path / "fake.mp4", frames)
    original = write_video(tmp_path / "original.mp4", frames[::-1])
    plan = video.plan_pair(fake, original, frames_per_video=3)
    # Raw pixels, which no decode of the (lossy) original gives: they must come out as they went in.
    held = {index: frames[::-1][index] for index in plan.indices}
    pairs = list(video.read_pair(fake, original, plan, original_frames=iter(held.items())))
    decoded = dict(video.read_frames(fake, plan.indices))
    assert [index for index, _, _ in pairs] == plan.indices
    for index, fake_frame, original_frame in pairs:
        np.testing.assert_array_equal(fake_frame, decoded[index])
        np.testing.assert_array_equal(original_frame, held[index])


def test_a_frame_lost_from_one_file_leaves_the_others_paired_by_index(tmp_path):
    frames = textured_frames(6)
    fake = write_video(tmp_path / "fake.mp4", frames)
    plan = video.plan_pair(fake, write_video(tmp_path / "original.mp4", frames), frames_per_video=6)
    # The original lost frame 2 (a damaged packet): 3 must still meet 3, not 2.
    held = [(index, np.full((8, 8, 3), index, np.uint8)) for index in plan.indices if index != 2]
    pairs = list(video.read_pair(fake, None, plan, original_frames=iter(held)))
    assert [index for index, _, _ in pairs] == [0, 1, 3, 4, 5]
    assert [int(original[0, 0, 0]) for _, _, original in pairs] == [0, 1, 3, 4, 5]

# ---------------------------------------------------------------- decoding in a thread ahead of its reader


def test_read_ahead_yields_in_order_and_raises_where_the_error_was():
    def items():
        yield from range(5)
        raise ValueError("broken after 4")

    got = []
    with pytest.raises(ValueError, match="broken after 4"):
        for item in video.read_ahead(items(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    assert list(video.read_ahead(iter([]), depth=2)) == []


def test_leaving_read_ahead_early_closes_its_source_and_stops_its_thread():
    produced, closed = [], threading.Event()

    def items():
        try:
            for item in range(1000):
                produced.append(item)
                yield item
        finally:
            closed.set()

    reader = video.read_ahead(items(), depth=3)
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()
    assert closed.is_set()
    # Two taken, three waiting in the queue, one more made while waiting for room.
    assert len(produced) <= 6
    assert not [thread for thread in threading.enumerate() if thread.name == "read_ahead"]
