"""One video -> TFRecord examples of (face crop, fake-pixel mask).

For a fake, faces are found on its ORIGINAL and the same boxes are cut from
both videos, so the two crops are pixel-aligned and their difference says
which pixels are fake. A real video gives its own face crops with all-zero
masks. Each problem that makes a video unusable ends it with a reason
instead of an exception, so one bad file never stops a run.
"""

import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import time

import cv2
import numpy as np

from data_pipeline import faces, files, masks, schema, video
from data_pipeline.layouts import FAKE
from data_pipeline.runners.shards import WORK_DIR

# MTCNN's cost grows with the pixel count; faces in larger frames are found
# as well on a copy whose longer side is this long.
DETECTION_MAX_SIDE = 1280


class StageTimer:
    """Seconds spent per stage (decode, detect, mask, write), for the speed breakdown."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def iterate(self, name, iterable):
        """Yields from `iterable`, counting the time spent producing each element as `name`."""
        iterator = iter(iterable)
        while True:
            with self.stage(name):
                element = next(iterator, StopIteration)
            if element is StopIteration:
                return
            yield element


def encode_png(image_rgb):
    return cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def encode_image(image_rgb, image_format, jpeg_quality):
    if image_format == "jpeg":
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1].tobytes()
    return encode_png(image_rgb)


def encode_mask(mask):
    """A 0/1 mask as a one-channel PNG (values 0 and 1, as the reader expects)."""
    return cv2.imencode(".png", mask.astype(np.uint8))[1].tobytes()


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
# Where cached_track keeps an original's face boxes, and its crops (one file per original and frame plan).
FACES_DIR = "faces"
CROPS_SUFFIX = "-crops.npz"
# MTCNN calls at once. Much of a call is single-threaded NumPy and Python
# (pyramid copies, non-maximum suppression), which a second call overlaps
# with the first one's convolutions: about 1.2-1.6x faster on 2 cores, for
# one more batch in memory (BENCHMARKS.md, "detect per video").
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
      timer: a `StageTimer`.
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


def cached_track(path, indices, config, timer, held_bytes=0):
    """`track`, computed once per original and frame plan and kept in the output's work folder.

    FF++ makes five or six fakes from each original; all of them are cut
    with the original's face boxes, so detection (most of the cost) runs
    once. JSON keeps the floats exactly, so cached and fresh results are the
    same records. The pass that tracks also keeps the original's face
    crops there (`_save_crops`), so that its fakes' masks need no second
    decode of it.

    Returns:
      (faces as `track_decoded` gives them; the `Decoded` pass when it ran
      now, else None: its held frames spare the caller a second decode; the
      crops that an earlier pass kept, as `_load_crops` gives them, else None).
    """
    options = [os.path.abspath(path), list(indices), config.detect_every, config.crop_scale, config.all_faces]
    key = hashlib.sha1(json.dumps(options).encode()).hexdigest()
    cache_path = os.path.join(config.out_dir, WORK_DIR, FACES_DIR, f"{key}.json")
    crops_path = os.path.join(config.out_dir, WORK_DIR, FACES_DIR, f"{key}{CROPS_SUFFIX}")
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            found = {int(index): [Face(number, tuple(box), tuple(crop_box))
                                  for number, box, crop_box in in_frame]
                     for index, in_frame in json.load(f).items()}
        return found, None, _load_crops(crops_path) if os.path.exists(crops_path) else None
    decoded = decode_for_tracking(path, indices, timer, config.detect_every, held_bytes=held_bytes)
    found = track_decoded(decoded, config, timer)
    if len(decoded.held) == len(decoded.indices):  # frames beyond the held ones would be decoded again
        with timer.stage("mask"):
            _save_crops(crops_path, {index: _crops_of(decoded.held[index], found.get(index, ()),
                                                      config.image_size) for index in decoded.indices})
    # Workers may race on one original; each writes the same content whole.
    files.atomic_write(cache_path, json.dumps(
        {index: [[face.number, face.box, face.crop_box] for face in found[index]] for index in found}))
    return found, decoded, None


def remove_kept_crops(out_dir):
    """Removes the originals' crops that `cached_track` kept in a finished run's work folder.

    They spare a second decode only while fakes remain to be cut, and take
    about a megabyte per original (16 frames at 128 pixels); the face boxes
    (a few kilobytes) stay for later runs.
    """
    directory = os.path.join(out_dir, WORK_DIR, FACES_DIR)
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if name.endswith(CROPS_SUFFIX):
            os.remove(os.path.join(directory, name))


def _crops_of(frame, faces_in_frame, size):
    """{face number: its crop} of a frame's faces, cut at their crop boxes and resized to size x size."""
    return {face.number: faces.crop_face(frame, face.crop_box, size) for face in faces_in_frame}


def _save_crops(path, crops):
    """Keeps {frame index: {face number: crop}} of every decoded frame, those without a face included."""
    arrays = {f"{index}/{number}": crop
              for index, in_frame in crops.items() for number, crop in in_frame.items()}
    buffer = io.BytesIO()
    np.savez(buffer, indices=np.asarray(list(crops), np.int64), **arrays)
    files.atomic_write(path, buffer.getvalue())


def _load_crops(path):
    """The {frame index: {face number: crop}} that `_save_crops` kept."""
    with np.load(path) as stored:
        crops = {int(index): {} for index in stored["indices"]}
        for name in stored.files:
            if name != "indices":
                index, number = name.split("/")
                crops[int(index)][int(number)] = stored[name]
    return crops


def _provided_masks(item, indices, timer):
    return {index: masks.binarize_provided(frame)
            for index, frame in timer.iterate("decode", video.read_frames(item.mask_path, indices))}


def _example(item, index, face, image, mask, config, mask_unknown=False):
    return schema.serialize_example({
        schema.IMAGE: encode_image(image, config.image_format, config.jpeg_quality),
        schema.IMAGE_FORMAT: config.image_format,
        schema.HEIGHT: image.shape[0],
        schema.WIDTH: image.shape[1],
        schema.MASK: encode_mask(mask),
        schema.LABEL: item.label,
        schema.VIDEO_ID: item.video_id,
        schema.ORIGINAL_ID: item.original_id,
        schema.IDENTITY: item.identity,
        schema.METHOD: item.method,
        schema.COMPRESSION: item.compression,
        schema.FRAME_INDEX: index,
        schema.FACE_NUMBER: face.number,
        schema.BOX: [float(v) for v in face.crop_box],
        schema.MASK_AREA: float(mask.mean()),
        schema.MASK_UNKNOWN: int(mask_unknown),
    })


def label_only(item):
    """Whether a fake has no original: its label is known, its fake pixels are not."""
    return item.label == FAKE and not item.original_path


def _mask(item, face, crop, original_crop, provided, size):
    """The fake-pixel mask of one face crop: none for a real video or a label-only fake, else the provided
    one or derived from the crop and the original's."""
    if item.label != FAKE or original_crop is None:
        return np.zeros((size, size), np.uint8)
    if provided is not None:
        return faces.crop_face(provided[..., None], face.crop_box, size, nearest=True)[..., 0]
    # The tracked face box tells fake_mask where to look and where to measure compression noise.
    return masks.fake_mask(crop, original_crop, face_box=faces.box_in_crop(face.box, face.crop_box, size))


def in_fake_frame(found, plan, crop_scale):
    """The original's faces moved into the frame of a fake that is a centre cut of it (Face2Face).

    Args:
      found: {frame index: [Face, ...]} in the original's pixels.
      plan: the pair's video.PairPlan.
      crop_scale: the recipe's box enlargement.

    Returns:
      The same faces in the fake's pixels, their crop boxes squared anew inside the fake's frame.
    """
    if plan.offset == (0, 0):
        return found
    (dx, dy), (width, height) = plan.offset, plan.size
    moved = {}
    for index, faces_in_frame in found.items():
        moved[index] = []
        for face in faces_in_frame:
            x0, y0, x1, y1 = face.box
            box = (x0 - dx, y0 - dy, x1 - dx, y1 - dy)
            moved[index].append(Face(face.number, box, faces.square_box(box, crop_scale, height, width)))
    return moved


def _plan(item, config):
    """The PairPlan: a fake is read in lockstep with its original; a real video or a label-only fake alone
    (its PairPlan has no offset)."""
    if item.label == FAKE and item.original_path:
        return video.plan_pair(item.path, item.original_path, config.frames_per_video, config.frame_stride)
    info = video.probe(item.path)
    indices = video.sample_indices(info.frame_count, config.frames_per_video, config.frame_stride)
    return video.PairPlan(indices, size=(info.width, info.height))


def _frames_to_crop(item, plan, decoded, found, original_crops, size):
    """Frame iterator of (index, image RGB, {face number: the original's crop} or None).

    `decoded` is the tracked video's pass when it ran now (its held frames
    are not decoded again), else None. A fake's original is not decoded
    again where an earlier pass kept its crops (`original_crops`), unless
    the fake is a centre cut of it: its crop boxes are then its own.
    """
    tracked = full_frames(decoded) if decoded is not None else None
    if item.label != FAKE or not item.original_path:
        frames = tracked if tracked is not None else video.read_frames(item.path, plan.indices)
        return ((index, frame, None) for index, frame in frames)
    if original_crops is not None and plan.offset == (0, 0):
        # Only where the original decoded, as in lockstep reading.
        frames = video.read_frames(item.path, [index for index in plan.indices if index in original_crops])
        return ((index, frame, original_crops[index]) for index, frame in frames)
    pairs = video.read_pair(item.path, item.original_path, plan, original_frames=tracked)
    return ((index, fake, _crops_of(original, found.get(index, ()), size)) for index, fake, original in pairs)


def extract_video(item, write, config):
    """Writes the examples of one video through `write` and returns its result.

    Args:
      item: a layouts.VideoItem.
      write: called with each serialized example.
      config: a PrepareConfig.

    Returns:
      A JSON-able dict: video_id, split, label, method, compression, status
      ("ok" or "skipped"), reason and detail for a skip, frames (decoded),
      examples (written), mask_empty, label_only (a fake without its
      original: its examples carry schema.MASK_UNKNOWN), note, seconds,
      seconds_by_stage.
    """
    started = time.perf_counter()
    timer = StageTimer()
    result = {"video_id": item.video_id, "split": item.split, "label": item.label, "method": item.method,
              "compression": item.compression, "status": "ok", "frames": 0, "examples": 0,
              "mask_empty": False, "label_only": label_only(item), "note": ""}

    def finish(**updates):
        result.update(updates, seconds=time.perf_counter() - started, seconds_by_stage=dict(timer.seconds))
        return result

    def skip(reason, detail):
        return finish(status="skipped", reason=reason, detail=detail)

    try:
        plan = _plan(item, config)
        result["note"] = plan.note
        # A fake's faces are found on its original (pixel-aligned crops); a real video's or a
        # label-only fake's on itself (a real video's original_path is its own path, or None).
        tracked_path = item.original_path or item.path
        found, decoded, original_crops = cached_track(tracked_path, plan.indices, config, timer,
                                                      HELD_FRAMES_BYTES)
        found = in_fake_frame(found, plan, config.crop_scale)
        frames = _frames_to_crop(item, plan, decoded, found, original_crops, config.image_size)
        if not found:
            return skip("no_face", f"no face in any of {len(plan.indices)} sampled frames")
        if result["label_only"] and config.mask_source == "provided":
            return skip("missing_original", "--mask_source=provided keeps only fakes with a known mask")
        if item.label == FAKE and config.mask_source == "provided" and not item.mask_path:
            return skip("no_provided_mask", "--mask_source=provided but the dataset ships no mask video")
        use_provided = item.label == FAKE and item.mask_path and config.mask_source in ("provided", "auto")
        provided = _provided_masks(item, plan.indices, timer) if use_provided else {}
        fake_frames_with_mask = 0
        for index, image, originals in timer.iterate("decode", frames):
            result["frames"] += 1
            if use_provided and index not in provided:
                continue
            for face in found.get(index, ()):
                with timer.stage("mask"):
                    crop = faces.crop_face(image, face.crop_box, config.image_size)
                    mask = _mask(item, face, crop, None if originals is None else originals.get(face.number),
                                 provided.get(index) if use_provided else None, config.image_size)
                fake_frames_with_mask += not masks.is_empty(mask)
                with timer.stage("write"):
                    write(_example(item, index, face, crop, mask, config, mask_unknown=result["label_only"]))
                result["examples"] += 1
    except video.VideoError as error:
        return skip(error.reason, error.detail)
    if result["examples"] == 0:
        return skip("no_face", "no decoded frame had a face")
    if item.label == FAKE and not result["label_only"] and fake_frames_with_mask == 0:
        # DFDC has fakes whose manipulation is in the audio only.
        result["mask_empty"] = True
        if config.drop_empty_fakes:
            return skip("mask_empty", "the fake does not differ from its original (--drop_empty_fakes)")
    return finish()
