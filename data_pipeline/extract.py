"""One video -> TFRecord examples of (face crop, fake-pixel mask).

For a fake, faces are found on its ORIGINAL and the same boxes are cut from
both videos, so the two crops are pixel-aligned and their difference says
which pixels are fake. A real video gives its own face crops with all-zero
masks. Each problem that makes a video unusable ends it with a reason
instead of an exception, so one bad file never stops a run.
"""

import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import time

import cv2
import numpy as np

from data_pipeline import faces, files, masks, schema, video
from data_pipeline.layouts import FAKE
from data_pipeline.shards import WORK_DIR

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


def detection_copy(frame):
    """The frame MTCNN looks at (longer side at most DETECTION_MAX_SIDE) and its scale to the original."""
    scale = min(1.0, DETECTION_MAX_SIDE / max(frame.shape[:2]))
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


def track(path, indices, config, timer):
    """The faces of the frames of `path` at `indices`, found by MTCNN and tracked.

    Returns:
      {frame index: [Face, ...]} for the frames where a face track is
      present (only the main track unless config.all_faces).
    """
    small_frames, kept, shape, scale = [], [], None, 1.0
    for index, frame in timer.iterate("decode", video.read_frames(path, indices)):
        small, scale = detection_copy(frame)
        shape = frame.shape[:2]
        small_frames.append(small)
        kept.append(index)
    if not small_frames:
        raise video.VideoError("empty_video", f"no frame decoded from {path}")
    with timer.stage("detect"):
        tracks = faces.track_all_faces(small_frames, detect_every=detection_step(kept, config.detect_every),
                                       frame_indices=kept, max_faces=None if config.all_faces else 1)
    found = collections.defaultdict(list)
    for number, boxes in enumerate(tracks):
        for index, box in zip(kept, boxes):
            if box is not None:
                full = tuple(coordinate / scale for coordinate in box)
                found[index].append(Face(number, full, faces.square_box(full, config.crop_scale, *shape)))
    return dict(found)


def cached_track(path, indices, config, timer):
    """`track`, computed once per original and frame plan and kept in the output's work folder.

    FF++ makes five or six fakes from each original; all of them are cut
    with the original's face boxes, so detection (most of the cost) runs
    once. JSON keeps the floats exactly, so cached and fresh results are the
    same records.
    """
    options = [os.path.abspath(path), list(indices), config.detect_every, config.crop_scale, config.all_faces]
    key = hashlib.sha1(json.dumps(options).encode()).hexdigest()
    cache_path = os.path.join(config.out_dir, WORK_DIR, "faces", f"{key}.json")
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            return {int(index): [Face(number, tuple(box), tuple(crop_box)) for number, box, crop_box in found]
                    for index, found in json.load(f).items()}
    found = track(path, indices, config, timer)
    # Workers may race on one original; each writes the same content whole.
    files.atomic_write(cache_path, json.dumps(
        {index: [[face.number, face.box, face.crop_box] for face in found[index]] for index in found}))
    return found


def _provided_masks(item, indices, timer):
    return {index: masks.binarize_provided(frame)
            for index, frame in timer.iterate("decode", video.read_frames(item.mask_path, indices))}


def _example(item, index, face, image, mask, config):
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
    })


def _mask(item, face, fake, original, provided, size):
    """The fake-pixel mask of one face crop: none for a real video, else the provided one or derived."""
    if item.label != FAKE:
        return np.zeros((size, size), np.uint8)
    if provided is not None:
        return faces.crop_face(provided[..., None], face.crop_box, size, nearest=True)[..., 0]
    # The tracked face box tells fake_mask where to look and where to measure compression noise.
    return masks.fake_mask(faces.crop_face(fake, face.crop_box, size),
                           faces.crop_face(original, face.crop_box, size),
                           face_box=faces.box_in_crop(face.box, face.crop_box, size))


def _frames_to_crop(item, config):
    """(indices, note, frame iterator of (index, image RGB, original RGB or None))."""
    if item.label == FAKE:
        indices, note = video.plan_pair(item.path, item.original_path, config.frames_per_video,
                                        config.frame_stride)
        return indices, note, video.read_pair(item.path, item.original_path, indices)
    info = video.probe(item.path)
    indices = video.sample_indices(info.frame_count, config.frames_per_video, config.frame_stride)
    return indices, "", ((index, frame, None) for index, frame in video.read_frames(item.path, indices))


def extract_video(item, write, config):
    """Writes the examples of one video through `write` and returns its result.

    Args:
      item: a layouts.VideoItem.
      write: called with each serialized example.
      config: a PrepareConfig.

    Returns:
      A JSON-able dict: video_id, split, label, method, compression, status
      ("ok" or "skipped"), reason and detail for a skip, frames (decoded),
      examples (written), mask_empty, note, seconds, seconds_by_stage.
    """
    started = time.perf_counter()
    timer = StageTimer()
    result = {"video_id": item.video_id, "split": item.split, "label": item.label, "method": item.method,
              "compression": item.compression, "status": "ok", "frames": 0, "examples": 0,
              "mask_empty": False, "note": ""}

    def finish(**updates):
        result.update(updates, seconds=time.perf_counter() - started, seconds_by_stage=dict(timer.seconds))
        return result

    def skip(reason, detail):
        return finish(status="skipped", reason=reason, detail=detail)

    if item.label == FAKE and not item.original_path:
        return skip("missing_original", "no original video to derive the mask from")
    try:
        indices, result["note"], frames = _frames_to_crop(item, config)
        found = cached_track(item.original_path if item.label == FAKE else item.path, indices, config, timer)
        if not found:
            return skip("no_face", f"no face in any of {len(indices)} sampled frames")
        if item.label == FAKE and config.mask_source == "provided" and not item.mask_path:
            return skip("no_provided_mask", "--mask_source=provided but the dataset ships no mask video")
        use_provided = item.label == FAKE and item.mask_path and config.mask_source in ("provided", "auto")
        provided = _provided_masks(item, indices, timer) if use_provided else {}
        fake_frames_with_mask = 0
        for index, image, original in timer.iterate("decode", frames):
            result["frames"] += 1
            if use_provided and index not in provided:
                continue
            for face in found.get(index, ()):
                with timer.stage("mask"):
                    crop = faces.crop_face(image, face.crop_box, config.image_size)
                    mask = _mask(item, face, image, original, provided.get(index) if use_provided else None,
                                 config.image_size)
                fake_frames_with_mask += not masks.is_empty(mask)
                with timer.stage("write"):
                    write(_example(item, index, face, crop, mask, config))
                result["examples"] += 1
    except video.VideoError as error:
        return skip(error.reason, error.detail)
    if result["examples"] == 0:
        return skip("no_face", "no decoded frame had a face")
    if item.label == FAKE and fake_frames_with_mask == 0:
        # DFDC has fakes whose manipulation is in the audio only.
        result["mask_empty"] = True
        if config.drop_empty_fakes:
            return skip("mask_empty", "the fake does not differ from its original (--drop_empty_fakes)")
    return finish()
