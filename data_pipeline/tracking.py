"""The tracking pass: a video's sampled frames decoded once, its faces found by MTCNN and tracked.

`decode_for_tracking` decodes the sampled frames in a thread and keeps a
detection-size copy of each (`detection_copy`) and the first full frames,
while MTCNN looks at the key frames already decoded; `track_decoded` follows
the faces through the frames and gives each its square crop box. prepare
(`extract`) and detect (`unet_industrial.detection.cutting`) both cut their
crops from it, so they cut the same ones.
"""

import collections
import concurrent.futures
import dataclasses

import cv2

from data_pipeline import faces, video

# MTCNN's cost grows with the pixel count; faces in larger frames are found
# as well on a copy whose longer side is this long.
DETECTION_MAX_SIDE = 1280


def detection_copy(frame, max_side=DETECTION_MAX_SIDE):
    """The frame MTCNN looks at (longer side at most `max_side`) and its scale to the original."""
    scale = min(1.0, max_side / max(frame.shape[:2]))
    if scale == 1.0:
        return frame, 1.0
    size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale


def detection_step(indices, detect_every):
    """Detection step in sampled frames so that MTCNN runs at least every `detect_every` video frames.

    Sparse samples (32 frames of a 10 s video are ~10 frames apart) are each
    detected, since a face moves too far between them to interpolate; dense
    samples (--frame_stride=1) are detected every k-th frame.
    """
    if len(indices) < 2:
        return 1
    gap = (indices[-1] - indices[0]) / (len(indices) - 1)
    return max(1, int(detect_every // max(gap, 1)))


@dataclasses.dataclass(frozen=True)
class Face:
    """One tracked face in one frame.

    Attributes:
      number: 0 for the main face track, 1, 2, ... for the others.
      box: the tracked face box (x0, y0, x1, y1) in frame pixels.
      crop_box: the square, enlarged, clipped integer box that is cut out.
    """

    number: int
    box: tuple
    crop_box: tuple


# The tracking pass keeps the sampled full-resolution frames up to this many
# bytes, so that the crops are cut without decoding the file again (32 frames
# of 1080p fit); frames beyond it are decoded a second time, one at a time,
# so memory stays bounded whatever the resolution.
HELD_FRAMES_BYTES = 256 * 2**20
# Frames the decoding thread may run ahead of MTCNN. What waits is mostly
# detection-size copies (full frames only within HELD_FRAMES_BYTES), and a
# few keep MTCNN fed when a frame takes long to decode.
DECODE_AHEAD = 8
# MTCNN calls at once. Much of a call is single-threaded NumPy and Python
# (pyramid copies, non-maximum suppression), which a second call overlaps
# with the first one's convolutions: faster on 2 cores, for one more batch
# in memory (BENCHMARKS.md, "detect per video").
DETECTION_THREADS = 2


@dataclasses.dataclass
class Decoded:
    """The tracking pass over a video's sampled frames.

    Attributes:
      path: the video file.
      indices: the sampled frames decoded, in order.
      small_frames: each one's detection-size copy (`detection_copy`).
      scale: the copies' scale to full resolution.
      shape: (height, width) of the full-resolution frames.
      held: {index: full-resolution RGB frame} for the first frames that fit `HELD_FRAMES_BYTES`.
      positions: the positions (in `indices`) of the key frames MTCNN looked at (`faces.key_positions`).
      detections: per key frame, the `faces.Detection`s found in its copy.
    """

    path: str
    indices: list
    small_frames: list
    scale: float
    shape: tuple
    held: dict
    positions: list
    detections: list


def _detection_copies(path, indices, max_side, held_bytes):
    """Yields (index, detection-size copy, its scale, the full frame's shape, the full frame or None):
    the full frames are kept while they fit `held_bytes`, the first ones only."""
    budget = held_bytes
    for index, frame in video.read_frames(path, indices):
        small, scale = detection_copy(frame, max_side)
        held = frame if frame.nbytes <= budget else None
        budget = budget - frame.nbytes if held is not None else 0
        yield index, small, scale, frame.shape[:2], held


def decode_for_tracking(path, indices, timer, detect_every, max_side=DETECTION_MAX_SIDE, held_bytes=0):
    """Decodes the sampled frames once and finds the faces in them: a detection-size copy of each, the
    full frames that fit `held_bytes`, and MTCNN's detections on the key frames.

    The frames decode in a thread (`video.read_ahead`) while MTCNN looks at
    the key frames already decoded, `DETECTION_THREADS` batches at a time.
    The batches are those `faces.detect_faces` makes of all the key frames
    at once (a frame's detections can differ by a pixel or two in another
    batch), so the detections are the same. The timer's "decode" is the
    time until the last frame is decoded, and "detect" the time MTCNN takes
    after that.

    Args:
      path: the video file.
      indices: the frames to sample.
      timer: an `extract.StageTimer`.
      detect_every: MTCNN runs at least every this many video frames (`detection_step`).
      max_side: the detection copies' longer side at most.
      held_bytes: full-resolution frames kept, in bytes.

    Raises:
      video.VideoError: for a file that cannot be read or has no decodable frame.
    """
    decoded = Decoded(path, [], [], 1.0, None, {}, [], [])
    # From the planned frames, known before decoding; a file that ends early keeps their step.
    step = detection_step(indices, detect_every)
    batches, waiting = [], []
    copies = video.read_ahead(_detection_copies(path, indices, max_side, held_bytes), DECODE_AHEAD)
    with concurrent.futures.ThreadPoolExecutor(DETECTION_THREADS, thread_name_prefix="mtcnn") as pool:

        def detect_waiting():
            batches.append(pool.submit(faces.detect_faces, [decoded.small_frames[p] for p in waiting]))
            decoded.positions.extend(waiting)
            waiting.clear()

        for position, (index, small, scale, shape, full) in enumerate(timer.iterate("decode", copies)):
            decoded.indices.append(index)
            decoded.small_frames.append(small)
            decoded.scale, decoded.shape = scale, shape
            if full is not None:
                decoded.held[index] = full
            if position % step == 0:
                waiting.append(position)
                if len(waiting) == faces.batch_size_for(small.shape):
                    detect_waiting()
        if not decoded.indices:
            raise video.VideoError("empty_video", f"no frame decoded from {path}")
        last = len(decoded.indices) - 1
        if last % step:
            waiting.append(last)  # the last frame is always a key frame (faces.key_positions)
        if waiting:
            detect_waiting()
        with timer.stage("detect"):
            for batch in batches:
                decoded.detections.extend(batch.result())
    return decoded


def full_frames(decoded):
    """Yields (index, full-resolution RGB frame) of the decoded sampled frames, in order.

    Held frames are handed over (and released); the others are decoded again.
    """
    again = video.read_frames(decoded.path, [index for index in decoded.indices if index not in decoded.held])
    for index in decoded.indices:
        if index in decoded.held:
            yield index, decoded.held.pop(index)
            continue
        decoded_again = next(again, None)
        if decoded_again is None:
            return
        yield decoded_again


def track_decoded(decoded, config, timer):
    """The faces of a tracking pass's frames, tracked from MTCNN's detections on the key frames.

    Returns:
      {frame index: [Face, ...]} in full-resolution pixels, for the frames
      where a face track is present (only the main track unless config.all_faces).
    """
    kept, scale, (height, width) = decoded.indices, decoded.scale, decoded.shape
    with timer.stage("detect"):
        tracks = faces.tracks_from_detections(decoded.detections, decoded.positions, kept,
                                              max_faces=None if config.all_faces else 1)
    found = collections.defaultdict(list)
    for number, boxes in enumerate(tracks):
        for index, box in zip(kept, boxes):
            if box is not None:
                full = tuple(coordinate / scale for coordinate in box)
                found[index].append(Face(number, full,
                                         faces.square_box(full, config.crop_scale, height, width)))
    return dict(found)
