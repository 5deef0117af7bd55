"""Reading frames: which frames to sample, and a fake read in lockstep with its original.

OpenCV decodes (its wheel reads H.264). Frames are returned RGB, uint8. A
frame index is the position in decoding order, the same in a fake and in its
original, which is what makes their crops pixel-aligned.
"""

import dataclasses

import cv2
import numpy as np

# Long files (a 4K film) must not exhaust memory: decoding stops after this
# many frames whatever the sampling asks for.
MAX_FRAMES_READ = 100_000


class VideoError(Exception):
    """A video that cannot be used; `reason` is a short machine-readable code."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int


def _open(path):
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoError("unreadable_video", f"cannot open {path}")
    return capture


def probe(path):
    """Frame count (as the container states it), fps and size of a video.

    Raises:
      VideoError: "unreadable_video" for a file OpenCV cannot open,
        "empty_video" for one without a decodable frame.
    """
    capture = _open(path)
    try:
        info = VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS)),
                         int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if info.frame_count <= 0 or info.width <= 0 or info.height <= 0:
        raise VideoError("empty_video", f"{path} has no frames")
    return info


def sample_indices(frame_count, frames_per_video=32, frame_stride=0):
    """Indices of the frames to use.

    Args:
      frame_count: frames in the video.
      frames_per_video: this many evenly spaced frames (first to last) when
        `frame_stride` is 0; all frames if the video has fewer.
      frame_stride: if positive, every `frame_stride`-th frame instead.

    Returns:
      A sorted list of distinct indices.
    """
    if frame_count <= 0:
        return []
    if frame_stride > 0:
        return list(range(0, min(frame_count, MAX_FRAMES_READ), frame_stride))
    count = min(frames_per_video, frame_count)
    return sorted({int(round(i)) for i in np.linspace(0, frame_count - 1, count)})


def read_frames(path, indices):
    """Yields (index, RGB frame) for the wanted indices, decoding sequentially.

    Frames between wanted ones are only grabbed, not converted, which is
    much cheaper. A file that ends early yields what it has.
    """
    wanted = sorted(set(indices))
    capture = _open(path)
    try:
        position = 0
        for index in wanted:
            while position < index:
                if not capture.grab():
                    return
                position += 1
            ok, frame = capture.read()
            if not ok:
                return
            position += 1
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def plan_pair(fake_path, original_path, frames_per_video=32, frame_stride=0):
    """Checks that a fake and its original can be read in lockstep and picks the frames.

    A frame-count mismatch uses the common prefix (the caller logs the note
    returned); frames are sampled within that prefix.

    Returns:
      (indices, note): the frame indices to read from both, and "" or a
      description of the frame-count mismatch.

    Raises:
      VideoError: "unreadable_video" / "empty_video" for either file, or
        "size_mismatch" when the two videos differ in width or height.
    """
    fake_info, original_info = probe(fake_path), probe(original_path)
    if (fake_info.width, fake_info.height) != (original_info.width, original_info.height):
        raise VideoError("size_mismatch", f"{fake_info.width}x{fake_info.height} fake vs "
                                          f"{original_info.width}x{original_info.height} original")
    common = min(fake_info.frame_count, original_info.frame_count)
    note = "" if fake_info.frame_count == original_info.frame_count else (
        f"frame counts differ ({fake_info.frame_count} fake, {original_info.frame_count} original): "
        f"using the first {common}")
    return sample_indices(common, frames_per_video, frame_stride), note


def read_pair(fake_path, original_path, indices):
    """Yields (index, fake RGB, original RGB): frame i of one with frame i of the other.

    One pair of frames is in memory at a time. Stops at the end of the
    shorter file.
    """
    for (index, fake), (_, original) in zip(read_frames(fake_path, indices), read_frames(original_path, indices)):
        yield index, fake, original
