"""Face boxes: MTCNN on real frames, the FF++ square crop, and the tracker on scripted detections."""

import os

import numpy as np
import pytest
from conftest import REALDATA_DIR, requires_realdata

from data_pipeline import faces
from data_pipeline.tools import mask_quality

EXAMPLES_DIR = os.path.join(REALDATA_DIR, "ffpp_examples")
ORIGINALS = ("ex_original.png", "ex_original_actors.png")


@pytest.fixture(scope="module")
def originals():
    return {name: mask_quality.read_rgb(os.path.join(EXAMPLES_DIR, name)) for name in ORIGINALS}


@pytest.fixture(scope="module")
def detections(originals):
    """MTCNN's detections on each real original (one call per frame size)."""
    return {name: faces.detect_faces([frame])[0] for name, frame in originals.items()}


# ---------------------------------------------------------------- MTCNN on real frames


@requires_realdata
@pytest.mark.parametrize("name", ORIGINALS)
def test_mtcnn_finds_the_face_inside_the_frame(originals, detections, name):
    height, width = originals[name].shape[:2]
    (face,) = detections[name]
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert face.confidence > 0.95
    assert 40 < x1 - x0 < width / 4 and set(face.keypoints) >= {"left_eye", "right_eye", "nose"}
    # The face is where the official masks say the manipulation is.
    mask_name = {"ex_original.png": "ex_deepfakes_mask.png",
                 "ex_original_actors.png": "ex_deepfakedetection_mask.png"}
    ys, xs = np.nonzero(mask_quality.read_rgb(os.path.join(EXAMPLES_DIR, mask_name[name])).max(axis=-1))
    assert x0 < xs.mean() < x1 and y0 < ys.mean() < y1


@requires_realdata
def test_mtcnn_takes_gray_frames_and_ignores_tiny_ones(originals, detections):
    frame = originals["ex_original.png"]
    gray, tiny = frame.mean(axis=-1).astype(np.uint8), frame[:8, :8]
    found_gray, found_tiny = faces.detect_faces([gray, tiny])
    assert len(found_gray) == 1
    assert faces.box_iou(found_gray[0].box, detections["ex_original.png"][0].box) > 0.8
    assert found_tiny == []


@requires_realdata
def test_track_faces_with_mtcnn_on_a_real_clip(originals):
    frame = originals["ex_original.png"]
    clip = [np.roll(frame, 2 * i, axis=1) for i in range(3)]
    boxes = faces.track_faces(clip, detection_step=2, smooth_sigma=0)
    assert all(box is not None for box in boxes)
    assert boxes[2][0] - boxes[0][0] == pytest.approx(4, abs=2)


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1), (4, 5, 3), (4, 5, 4)])
def test_to_rgb_gives_three_channels(shape):
    image = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    rgb = faces.to_rgb(image)
    assert rgb.shape == (4, 5, 3)
    np.testing.assert_array_equal(rgb[..., 0], image if image.ndim == 2 else image[..., 0])


def test_to_rgb_refuses_other_images():
    with pytest.raises(ValueError):
        faces.to_rgb(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError):
        faces.to_rgb(np.zeros((4, 5, 2), np.uint8))


def test_box_iou():
    assert faces.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert faces.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert faces.box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_square_box_is_a_centred_enlarged_square():
    x0, y0, x1, y1 = faces.square_box((100, 50, 200, 250), 1.3, 480, 640)
    assert x1 - x0 == y1 - y0 == 260
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (150, 150)


@pytest.mark.parametrize("box, expected", [
    ((0, 0, 100, 100), (0, 0, 130, 130)),  # top-left corner: shifted in
    ((560, 400, 640, 480), (536, 376, 640, 480)),  # bottom-right corner
    ((-20, 100, 60, 180), (0, 88, 104, 192)),  # box partly outside the frame
])
def test_square_box_is_shifted_inside_the_frame_keeping_its_size(box, expected):
    assert faces.square_box(box, 1.3, 480, 640) == expected


def test_square_box_larger_than_the_frame_shrinks_to_its_shorter_side():
    assert faces.square_box((100, 0, 500, 480), 1.3, 480, 640) == (60, 0, 540, 480)
    x0, y0, x1, y1 = faces.square_box((3, 3, 3, 3), 1.3, 10, 10)
    assert x1 - x0 == y1 - y0 == 1  # never empty


def test_crop_face_keeps_the_channel_layout_and_mask_values():
    frame = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
    assert faces.crop_face(frame, (10, 5, 30, 25), 16).shape == (16, 16, 3)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:20] = 1
    for layout in (mask, mask[..., None]):
        crop = faces.crop_face(layout, (10, 5, 30, 25), 64, nearest=True)
        assert crop.shape == (64, 64) + layout.shape[2:] and set(np.unique(crop)) == {0, 1}
    with pytest.raises(ValueError):
        faces.crop_face(frame, (50, 5, 70, 25), 16)


def test_box_in_crop_maps_frame_pixels_to_crop_pixels():
    assert faces.box_in_crop((110, 60, 150, 100), (100, 50, 200, 150)) == (10, 10, 50, 50)
    assert faces.box_in_crop((110, 60, 150, 100), (100, 50, 200, 150), size=200) == (20, 20, 100, 100)


# ---------------------------------------------------------------- tracking (scripted detector)


class ScriptedDetector:
    """Stands in for MTCNN: frame i "contains" the faces script(i); frames are their own index."""

    def __init__(self, script):
        self.script = script
        self.seen = []

    def __call__(self, frames):
        self.seen.extend(frames)
        return [[faces.Detection(tuple(map(float, box)), confidence) for box, confidence in self.script(i)]
                for i in frames]


def moving(i, speed=2.0):
    return (10 + speed * i, 20, 60 + speed * i, 80)


def test_tracker_detects_every_kth_frame_and_interpolates_linearly():
    detector = ScriptedDetector(lambda i: [(moving(i), 0.99)])
    boxes = faces.track_faces(list(range(10)), detection_step=4, detect=detector, smooth_sigma=0)
    assert detector.seen == [0, 4, 8, 9]  # the last frame is always detected
    for i, box in enumerate(boxes):
        assert box == pytest.approx(moving(i))


def test_tracker_interpolates_in_video_time_for_sampled_frames():
    detector = ScriptedDetector(lambda i: [(moving(i, speed=0.5), 0.99)] if i in (0, 30) else [])
    boxes = faces.track_faces([0, 10, 30], detection_step=2, detect=detector, frame_indices=[0, 10, 30])
    assert detector.seen == [0, 30]
    # Frames 10 or more video frames apart are too far for the smoothing to mix them.
    assert boxes[0] == pytest.approx(moving(0, 0.5)) and boxes[2] == pytest.approx(moving(30, 0.5))
    assert boxes[1] == pytest.approx(moving(10, 0.5))


def test_tracker_smoothing_damps_jitter_without_shifting_a_still_face():
    rng = np.random.default_rng(0)
    jitter = rng.normal(0, 3, (40, 4))
    detector = ScriptedDetector(lambda i: [(np.add((100, 100, 200, 220), jitter[i]), 0.99)])
    raw = np.array(faces.track_faces(list(range(40)), detect=detector, smooth_sigma=0))
    smooth = np.array(faces.track_faces(list(range(40)), detect=detector))
    interior = slice(6, -6)  # away from the ends, where fewer neighbours average
    assert smooth[interior].std(axis=0).max() < 0.6 * raw[interior].std(axis=0).min()
    assert smooth.mean(axis=0) == pytest.approx(raw.mean(axis=0), abs=1.0)


def test_tracker_follows_the_largest_face_not_a_newcomer():
    small, other = (300, 300, 330, 330), (70, 20, 115, 75)

    def script(i):
        found = [(small, 1.0), (moving(i), 0.99)]
        if i >= 5:  # a second, slightly smaller face appears next to the tracked one
            found.append((np.add(other, (2 * i, 0, 2 * i, 0)), 0.99))
        return found

    boxes = faces.track_faces(list(range(10)), detect=ScriptedDetector(script), smooth_sigma=0)
    for i, box in enumerate(boxes):
        assert box == pytest.approx(moving(i))


def test_tracker_gives_none_around_a_missed_detection_and_all_faces_on_request():
    def script(i):
        return ([] if i == 4 else [(moving(i), 0.99)]) + [((300, 300, 330, 330), 0.95)]

    detector = ScriptedDetector(script)
    tracks = faces.track_all_faces(list(range(9)), detection_step=2, detect=detector, smooth_sigma=0)
    assert len(tracks) == 2
    main, second = tracks
    assert [box is None for box in main] == [False, False, False, True, True, True, False, False, False]
    assert all(box == pytest.approx((300, 300, 330, 330)) for box in second)


def test_tracker_reports_no_face_anywhere():
    detector = ScriptedDetector(lambda i: [])
    assert faces.track_faces(list(range(5)), detection_step=2, detect=detector) == [None] * 5
    assert faces.track_all_faces(list(range(5)), detect=detector) == []
    assert faces.track_faces([], detect=detector) == []


def test_tracker_refuses_bad_arguments():
    detector = ScriptedDetector(lambda i: [])
    with pytest.raises(ValueError):
        faces.track_faces([0, 1], detection_step=0, detect=detector)
    with pytest.raises(ValueError):
        faces.track_faces([0, 1], detect=detector, frame_indices=[3, 3])
