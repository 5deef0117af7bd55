"""Face boxes: MTCNN on the original, one consistent face track, the FF++ crop.

Faces are found on the ORIGINAL video (MTCNN from the `mtcnn` package, whose
weights ship inside it) and the same boxes are cut from the fake, so the two
crops are pixel-aligned. `track_faces` runs detection on every k-th frame,
follows one face through the video (the largest, most confident one) and
fills the frames between detections by linear interpolation, then smooths
the boxes over time. `square_box` applies FaceForensics++'s recipe (a square
around the face box, enlarged x1.3) and `crop_face` cuts and resizes.

Boxes are (x0, y0, x1, y1) in frame pixels, x1 and y1 exclusive. Frames are
numpy arrays in RGB order (OpenCV's BGR is converted by the video reader);
grayscale and RGBA frames are accepted and converted.
"""

import dataclasses
import functools
import threading

import cv2
import numpy as np

# FaceForensics++'s crop: a square of 1.3 x the longer side of the face box.
CROP_SCALE = 1.3
# Detect on every frame unless told otherwise; videos read frame by frame can
# afford a larger step (faces move little in a few frames at 25 fps).
DETECTION_STEP = 1
# MTCNN's confidence for real faces is almost always above 0.99; 0.9 drops
# the occasional textured background patch without losing profile views.
MIN_CONFIDENCE = 0.9
# A detection continues the track when its box overlaps the track's last box
# by at least this IoU; a face moves far less than its own size between
# detections, while another person's face hardly overlaps it.
MIN_TRACK_IOU = 0.3
# Temporal smoothing of the boxes: a Gaussian over video frames (sigma, in
# frames). It damps MTCNN's frame-to-frame jitter of a few pixels and has no
# effect between frames sampled far apart (weights vanish beyond 3 sigma).
SMOOTH_SIGMA = 2.0
# Frames per MTCNN call: batching is about 2x faster than one at a time on CPU
# and keeps memory bounded for long videos. MTCNN's image pyramid grows with
# the pixels, so a call holds at most BATCH_PIXELS (eight 640x480 frames):
# 1280-pixel detection copies go one at a time (peak memory: BENCHMARKS.md).
BATCH_SIZE = 8
BATCH_PIXELS = 8 * 640 * 480
# MTCNN's smallest window is 12 pixels: a smaller frame cannot hold a face.
MIN_FRAME_SIDE = 12


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face found by the detector.

    Attributes:
      box: (x0, y0, x1, y1) in frame pixels, floats.
      confidence: the detector's score in [0, 1].
      keypoints: name -> (x, y) of the five landmarks MTCNN gives (eyes, nose,
        mouth corners); empty for detectors that give none.
    """

    box: tuple
    confidence: float
    keypoints: dict = dataclasses.field(default_factory=dict)

    @property
    def area(self):
        return box_area(self.box)


def to_rgb(image):
    """An RGB uint8 view or copy of a gray (H, W), (H, W, 1), RGB or RGBA image.

    Raises:
      ValueError: for another shape or a non-uint8 dtype.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected a gray, RGB or RGBA image, got shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def box_area(box):
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def box_iou(a, b):
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    inter = box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


class _GraphStage:
    """One of the `mtcnn` package's stages, its network run as a TensorFlow graph and fed a tensor.

    The package runs its networks layer by layer, and hands each stage the
    frames as a NumPy array, which TensorFlow copies into a new tensor at
    every op that reads it (once per level of PNet's image pyramid). A
    graph (`tf.function`) and one tensor per stage give the same detections
    faster (BENCHMARKS.md, "detect per video").
    """

    def __init__(self, stage_class):
        import tensorflow as tf
        from mtcnn.stages.base import StageBase

        self.stage = stage_class()
        # StageBase's constructor is the package's way to give a stage its model.
        # reduce_retracing: PNet sees a new shape at each pyramid level; one trace covers them all.
        StageBase.__init__(self.stage, self.stage.name, self.stage.id,
                           model=tf.function(self.stage.model, reduce_retracing=True))
        self.name, self.id = self.stage.name, self.stage.id
        self._to_tensor = tf.convert_to_tensor

    def __call__(self, images_normalized, **kwargs):
        return self.stage(images_normalized=self._to_tensor(images_normalized), **kwargs)


# MTCNN calls may run in several threads (tracking.DETECTION_THREADS): the first ones must not each build one.
_DETECTOR_LOCK = threading.Lock()


def get_detector(device="CPU:0"):
    """The process's MTCNN detector on `device`, created on first use.

    Creating it loads TensorFlow and the weights (about a second), so each
    worker process makes one and reuses it. Imported lazily so that modules
    using only the geometry below do not pull in TensorFlow. Its stages are
    the package's own, run as graphs (`_GraphStage`).
    """
    with _DETECTOR_LOCK:
        return _new_detector(device)


@functools.lru_cache(maxsize=None)
def _new_detector(device):
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    return MTCNN(stages=[_GraphStage(stage) for stage in (StagePNet, StageRNet, StageONet)], device=device)


def _to_detection(result):
    x, y, w, h = (float(v) for v in result["box"])
    keypoints = {name: (float(p[0]), float(p[1])) for name, p in result.get("keypoints", {}).items()}
    return Detection((x, y, x + w, y + h), float(result["confidence"]), keypoints)


def batch_size_for(frame_shape, batch_size=BATCH_SIZE):
    """Frames of this shape per MTCNN call: `batch_size`, fewer for large frames (`BATCH_PIXELS`)."""
    height, width = frame_shape[:2]
    return max(1, min(batch_size, BATCH_PIXELS // (height * width)))


def detect_faces(frames, detector=None, batch_size=BATCH_SIZE, min_confidence=MIN_CONFIDENCE):
    """Faces in each frame, with MTCNN, in batches.

    Args:
      frames: a sequence of images (gray, RGB or RGBA, uint8). Frames of a
        batch are padded to the largest, so pass frames of one video.
      detector: an `mtcnn.MTCNN`; the process's own by default.
      batch_size: frames per MTCNN call, fewer for large frames (`batch_size_for`).
      min_confidence: detections scored below this are dropped.

    Returns:
      A list with, for each frame, the list of its `Detection`s (empty when
      the frame has no face or is too small to hold one).
    """
    detector = detector or get_detector()
    results = [[] for _ in frames]
    usable = [i for i, frame in enumerate(frames) if min(np.shape(frame)[:2]) >= MIN_FRAME_SIDE]
    if usable:
        batch_size = batch_size_for(np.shape(frames[usable[0]]), batch_size)
    for start in range(0, len(usable), batch_size):
        batch = usable[start:start + batch_size]
        # The package normalizes pixels in their own dtype: uint8 becomes float64, copied
        # whole into a tensor at every pyramid level. (p - 127.5) / 128 is exact in
        # float32, so float32 pixels give the same detections at half the copying.
        found = detector.detect_faces([to_rgb(frames[i]).astype(np.float32) for i in batch])
        for i, faces in zip(batch, found):
            results[i] = [d for d in map(_to_detection, faces) if d.confidence >= min_confidence]
    return results


def square_box(box, scale, frame_height, frame_width):
    """FaceForensics++'s crop box: a square around `box`, enlarged, kept inside the frame.

    The square's side is `scale` x the longer side of `box`, centred on it.
    Where it would leave the frame it is shifted back inside, so it stays
    square and the same size (the face is then off-centre rather than
    stretched by the later resize); only a square larger than the frame's
    shorter side is shrunk to that side.

    Args:
      box: (x0, y0, x1, y1) face box in frame pixels.
      scale: enlargement, e.g. `CROP_SCALE`.
      frame_height, frame_width: the frame's size.

    Returns:
      (x0, y0, x1, y1) integers with x1 - x0 == y1 - y0 >= 1, inside the frame.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = int(round(min(max(x1 - x0, y1 - y0) * scale, frame_width, frame_height)))
    side = max(side, 1)
    left = int(round((x0 + x1 - side) / 2))
    top = int(round((y0 + y1 - side) / 2))
    left = min(max(left, 0), frame_width - side)
    top = min(max(top, 0), frame_height - side)
    return left, top, left + side, top + side


def crop_face(frame, box, size, nearest=False):
    """Cuts `box` out of `frame` and resizes it to size x size.

    Args:
      frame: (H, W) or (H, W, C) array (RGB for images).
      box: integer (x0, y0, x1, y1) inside the frame, e.g. from `square_box`.
      size: output side in pixels.
      nearest: nearest-neighbour resizing, for masks (values stay as they
        are); otherwise area averaging when shrinking and bilinear when
        enlarging.

    Returns:
      The crop, shaped (size, size) or (size, size, C) like the frame.

    Raises:
      ValueError: for an empty box or one that leaves the frame.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    height, width = frame.shape[:2]
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {box} is empty or outside the {width}x{height} frame")
    crop = frame[y0:y1, x0:x1]
    if nearest:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if x1 - x0 > size else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (size, size), interpolation=interpolation)
    # OpenCV drops a trailing channel axis of length 1; keep the caller's shape.
    return resized.reshape((size, size) + frame.shape[2:])


def box_in_crop(face_box, crop_box, size=None):
    """Where a frame box lies in the crop cut at `crop_box` (and resized to `size`).

    Used to tell `masks.fake_mask` where the face is inside a face crop.

    Returns:
      (x0, y0, x1, y1) floats in crop pixels (may extend past the crop).
    """
    cx0, cy0, cx1, cy1 = crop_box
    factor = 1.0 if size is None else size / (cx1 - cx0)
    x0, y0, x1, y1 = face_box
    return ((x0 - cx0) * factor, (y0 - cy0) * factor, (x1 - cx0) * factor, (y1 - cy0) * factor)


# ---------------------------------------------------------------- tracking


def key_positions(count, detection_step):
    """Positions of the `count` frames where detection runs: every k-th frame and always the last one."""
    positions = list(range(0, count, detection_step))
    if positions[-1] != count - 1:
        positions.append(count - 1)
    return positions


def _follow(detections, start, anchor_box, step, claimed, min_iou):
    """Extends a track from key `start` in direction `step` (+1 / -1).

    At each key frame the unclaimed detection overlapping the last matched
    box best continues the track; a key frame where none overlaps enough is
    a gap (the last box is kept as the reference, so the same face is picked
    up again when it reappears where it was).

    Returns:
      {key: box} of the matched key frames (the anchor excluded).
    """
    matched, last = {}, anchor_box
    key = start + step
    while 0 <= key < len(detections):
        candidates = [(box_iou(last, d.box), j) for j, d in enumerate(detections[key])
                      if (key, j) not in claimed]
        if candidates:
            overlap, j = max(candidates)
            if overlap >= min_iou:
                claimed.add((key, j))
                last = detections[key][j].box
                matched[key] = last
        key += step
    return matched


def _interpolate(key_boxes, positions, times, count):
    """Per-frame boxes: detected at key frames, linear in time between two matched neighbours.

    Frames next to an unmatched key frame get None: a box guessed across a
    missed detection could cut the wrong region.
    """
    boxes = [None] * count
    for a in range(len(positions) - 1):
        if a in key_boxes and a + 1 in key_boxes:
            start, end = positions[a], positions[a + 1]
            box_a, box_b = np.asarray(key_boxes[a]), np.asarray(key_boxes[a + 1])
            for i in range(start, end + 1):
                w = (times[i] - times[start]) / (times[end] - times[start])
                boxes[i] = tuple(float(v) for v in (1 - w) * box_a + w * box_b)
    for key, box in key_boxes.items():
        boxes[positions[key]] = tuple(float(v) for v in box)
    return boxes


def smooth_boxes(boxes, times, sigma=SMOOTH_SIGMA):
    """Gaussian smoothing of a box sequence over time, within runs of frames that have a box.

    Args:
      boxes: per frame, a box or None.
      times: per frame, its index in the video, increasing (frames may be
        sampled sparsely).
      sigma: standard deviation in video frames; 0 leaves the boxes as they are.

    Returns:
      The smoothed list; None stays None and no box borrows from across a gap.
    """
    if sigma <= 0:
        return list(boxes)
    smoothed = list(boxes)
    run = []
    for i in range(len(boxes) + 1):
        if i < len(boxes) and boxes[i] is not None:
            run.append(i)
            continue
        if run:
            t = np.asarray([times[j] for j in run], np.float64)
            values = np.asarray([boxes[j] for j in run], np.float64)
            # Only neighbours within 3 sigma count, so long videos stay linear in cost.
            first = np.searchsorted(t, t - 3 * sigma, side="left")
            last = np.searchsorted(t, t + 3 * sigma, side="right")
            for k, j in enumerate(run):
                weights = np.exp(-0.5 * ((t[first[k]:last[k]] - t[k]) / sigma) ** 2)
                smoothed[j] = tuple(float(v) for v in weights @ values[first[k]:last[k]] / weights.sum())
        run = []
    return smoothed


def track_all_faces(frames, detection_step=DETECTION_STEP, detect=None, frame_indices=None, max_faces=None,
                    min_iou=MIN_TRACK_IOU, smooth_sigma=SMOOTH_SIGMA):
    """Face tracks through a sequence of frames, most prominent first.

    Detection runs on every `detection_step`-th frame and on the last one
    (`key_positions`); `tracks_from_detections` then follows the faces.

    Args:
      frames: a sequence of frames of one video (RGB, gray or RGBA, uint8).
      detection_step: detection step in frames of `frames`.
      detect: function from a list of frames to a list of `Detection` lists,
        one per frame; `detect_faces` (MTCNN) by default. Tests inject fakes.
      frame_indices: the frames' indices in the video, for interpolation and
        smoothing over time when frames are sampled; 0, 1, 2, ... by default.
      max_faces: stop after this many tracks; None for all faces.
      min_iou: overlap that continues a track.
      smooth_sigma: see `smooth_boxes`.

    Returns:
      A list of tracks; each is a list with, per frame, an (x0, y0, x1, y1)
      float box or None where that face was not found. Empty when no frame
      has a face.

    Raises:
      ValueError: for detection_step < 1, or frame_indices that are not one
        increasing index per frame.
    """
    count = len(frames)
    if detection_step < 1:
        raise ValueError(f"detection_step must be at least 1, got {detection_step}")
    times = list(range(count)) if frame_indices is None else list(frame_indices)
    if len(times) != count or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"frame_indices must be {count} increasing numbers, got {times}")
    if count == 0:
        return []
    positions = key_positions(count, detection_step)
    detections = (detect or detect_faces)([frames[i] for i in positions])
    return tracks_from_detections(detections, positions, times, max_faces, min_iou, smooth_sigma)


def tracks_from_detections(detections, positions, times, max_faces=None, min_iou=MIN_TRACK_IOU,
                           smooth_sigma=SMOOTH_SIGMA):
    """Face tracks from the detections at the key frames, most prominent first.

    A track starts from the largest, most confident detection not yet used
    (area x confidence, over all key frames) and is extended forwards and
    backwards by overlap (`MIN_TRACK_IOU`). Frames between two matched key
    frames get linearly interpolated boxes; then boxes are smoothed in time
    (`smooth_boxes`). The next track starts from what the previous ones left.

    Args:
      detections: per key frame, its list of `Detection`s.
      positions: the key frames' positions among all frames (`key_positions`).
      times: per frame (all of them, not only the key ones), its index in the video.
      max_faces, min_iou, smooth_sigma: as in `track_all_faces`.

    Returns:
      The tracks, as `track_all_faces` returns them.
    """
    count = len(times)
    claimed, tracks = set(), []
    while max_faces is None or len(tracks) < max_faces:
        free = [(d.area * d.confidence, key, j) for key, found in enumerate(detections)
                for j, d in enumerate(found) if (key, j) not in claimed]
        if not free:
            break
        _, key, j = max(free)
        claimed.add((key, j))
        anchor = detections[key][j].box
        key_boxes = {key: anchor}
        for step in (1, -1):
            key_boxes.update(_follow(detections, key, anchor, step, claimed, min_iou))
        tracks.append(smooth_boxes(_interpolate(key_boxes, positions, times, count), times, smooth_sigma))
    return tracks


def track_faces(frames, detection_step=DETECTION_STEP, detect=None, frame_indices=None, min_iou=MIN_TRACK_IOU,
                smooth_sigma=SMOOTH_SIGMA):
    """The main face's box in each frame: the first track of `track_all_faces`.

    Returns:
      A list with, per frame, an (x0, y0, x1, y1) float box or None where the
      face was not found; all None when no frame has a face (the caller
      skips the video as "no_face").
    """
    tracks = track_all_faces(frames, detection_step, detect, frame_indices, max_faces=1, min_iou=min_iou,
                             smooth_sigma=smooth_sigma)
    return tracks[0] if tracks else [None] * len(frames)
