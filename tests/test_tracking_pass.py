"""The tracking pass: a video decoded once, MTCNN on its key frames while the next ones decode.

Its detections must be those MTCNN gives the key frames in one call, batch for
batch: a frame's detections can move by a pixel or two in another batch, and
the crops would then differ from the ones prepare cut.
"""

import dataclasses
import os

import numpy as np
import pytest
import skimage.data
from conftest import REALDATA_DIR, requires_realdata, write_video

from data_pipeline import extract, faces, tracking, video

ORIGINAL = os.path.join(REALDATA_DIR, "ffpp", "original_sequences", "youtube", "c23", "videos", "519.mp4")


def test_key_frames_go_to_mtcnn_in_the_batches_of_one_call(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = write_video(tmp_path / "v.mp4", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(12)])
    batches = []

    def scripted(frames):
        """One detection per frame, its box's x0 the frame's mean grey level."""
        batches.append(len(frames))
        return [[faces.Detection((float(frame.mean()), 0.0, 1.0, 1.0), 0.99)] for frame in frames]

    monkeypatch.setattr(faces, "detect_faces", scripted)
    monkeypatch.setattr(faces, "batch_size_for", lambda shape: 3)
    decoded = tracking.decode_for_tracking(path, list(range(12)), extract.StageTimer(), detect_every=2)
    # Every second frame and the last: in threes, as one call over all of them would batch them.
    assert decoded.positions == faces.key_positions(12, 2) == [0, 2, 4, 6, 8, 10, 11]
    assert batches == [3, 3, 1]
    assert [found[0].box[0] for found in decoded.detections] == [
        float(decoded.small_frames[position].mean()) for position in decoded.positions]
    assert decoded.indices == list(range(12))


def test_a_video_shorter_than_planned_still_detects_its_last_frame(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(5)])
    monkeypatch.setattr(faces, "detect_faces", lambda frames: [[] for _ in frames])
    decoded = tracking.decode_for_tracking(path, list(range(0, 12)), extract.StageTimer(), detect_every=2)
    assert decoded.indices == [0, 1, 2, 3, 4]
    assert decoded.positions == [0, 2, 4]


def test_mtcnn_as_a_graph_finds_what_the_package_finds():
    from mtcnn import MTCNN

    face = skimage.data.astronaut()
    frames = [face, np.ascontiguousarray(face[:, ::-1]), face // 2 + 60]
    expected = [[((d["box"][0], d["box"][1], d["box"][0] + d["box"][2], d["box"][1] + d["box"][3]),
                  d["confidence"]) for d in found if d["confidence"] >= faces.MIN_CONFIDENCE]
                for found in MTCNN().detect_faces(frames)]
    found = [[(d.box, d.confidence) for d in in_frame] for in_frame in faces.detect_faces(frames)]
    assert found == expected
    assert all(len(in_frame) >= 1 for in_frame in found)


@requires_realdata
def test_the_tracking_pass_finds_on_real_video_what_one_mtcnn_call_finds():
    indices = video.sample_indices(video.probe(ORIGINAL).frame_count, 12)
    decoded = tracking.decode_for_tracking(ORIGINAL, indices, extract.StageTimer(), detect_every=4)
    at_once = faces.detect_faces([decoded.small_frames[position] for position in decoded.positions])
    assert decoded.positions == list(range(12))
    assert [[dataclasses.astuple(d) for d in found] for found in decoded.detections] == [
        [dataclasses.astuple(d) for d in found] for found in at_once]
    assert all(len(found) == 1 for found in decoded.detections)
