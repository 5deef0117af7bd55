"""One video -> TFRecord examples of (face crop, fake-pixel mask).

For a fake, faces are found on its ORIGINAL and the same boxes are cut from
both videos, so the two crops are pixel-aligned and their difference says
which pixels are fake. A real video gives its own face crops with all-zero
masks. Each problem that makes a video unusable ends it with a reason
instead of an exception, so one bad file never stops a run.
"""

import collections
import contextlib
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
from data_pipeline.tracking import HELD_FRAMES_BYTES, Face, decode_for_tracking, full_frames, track_decoded


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


# Where cached_track keeps an original's face boxes, and its crops (one file per original and frame plan).
FACES_DIR = "faces"
CROPS_SUFFIX = "-crops.npz"


def cached_track(path, indices, config, timer, held_bytes=0):
    """The tracking pass's faces (`tracking.track_decoded`), found once per original and frame plan and kept
    in the output's work folder.

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

    They spare a second decode only while fakes remain to be cut, and their
    size grows with the frames and the crop size (BENCHMARKS.md, "MTCNN as
    graphs, beside the decoder"); the face boxes stay for later runs.
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
