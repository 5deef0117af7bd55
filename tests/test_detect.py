"""`python -m unet_industrial.detect` on real FF++ and DFDC videos with a tiny trained run."""

import csv
import dataclasses
import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from conftest import REALDATA_DIR as REALDATA
from conftest import requires_realdata, run_module, train_here, write_shards, write_video
from data_pipeline import recipe
from unet_industrial import detection, verdicts
from unet_industrial.detection import overlay

FFPP = os.path.join(REALDATA, "ffpp")
FFPP_ORIGINAL = os.path.join(FFPP, "original_sequences", "youtube", "c23", "videos", "519.mp4")
FFPP_FAKE = os.path.join(FFPP, "manipulated_sequences", "Deepfakes", "c23", "videos", "519_515.mp4")
DFDC_PORTRAIT = os.path.join(REALDATA, "dfdc", "dfdc_train_part_0", "brtujopkby.mp4")
FRAMES = 3
VIDEO_THRESHOLD = 0.5
# The recipe the tiny run's 32-pixel crops stand for: prepare's defaults but for the size and frame count.
RECIPE = recipe.CropRecipe(image_size=32, crop_scale=1.3, frames_per_video=FRAMES, frame_stride=0,
                           detect_every=4, detection_max_side=1280)
CALIBRATION = verdicts.Calibration(frame_score="mean", pixel_threshold=0.5, frame_threshold=0.5,
                                   aggregation="mean", video_threshold=VIDEO_THRESHOLD, frame={}, video={},
                                   checkpoint="last", data_pattern="tiny", crop_recipe=RECIPE.to_dict())
VERDICT_LINE = re.compile(r"^(?P<path>.+): (?P<verdict>fake|real) \(score (?P<score>\d\.\d{3}) "
                          r"(?P<relation>>=|<) threshold (?P<threshold>\d\.\d{3}), "
                          r"mean over (?P<frames>\d+) frames, (?P<with_face>\d+) with a face\)$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run trained for 2 steps on 32 px crops, with a calibration.json."""
    root = tmp_path_factory.mktemp("detect")
    pattern = write_shards(str(root / "tfrecords"), "train", 8)
    run = root / "run"
    train_here(exec_mode="train", input_size=32, batch_size=2, num_iter=2, train_pattern=pattern,
               run_dir=str(run))
    CALIBRATION.save(str(run))
    return str(run)


def _noise_video(path, frames=6, size=(160, 120)):
    """An .mp4 of random pixels (OpenCV's mp4v): a video without a face."""
    rng = np.random.default_rng(0)
    write_video(path, [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(frames)])


def _detect(run_dir, video, *flags):
    return run_module("unet_industrial.detect", f"--run_dir={run_dir}", f"--video={video}",
                      f"--frames_per_video={FRAMES}", *flags, timeout=300)


def _check_video_record(record, model, frame_count):
    """A JSON video record is self-consistent and its scores are the model's on full-resolution crops."""
    from data_pipeline import faces, video

    width, height = record["size"]
    indices = [frame["index"] for frame in record["frames"]]
    assert indices == video.sample_indices(frame_count, FRAMES)
    decoded = dict(video.read_frames(record["path"], indices))
    for frame in record["frames"]:
        assert frame["faces"], f"no face in frame {frame['index']} of {record['path']}"
        for face in frame["faces"]:
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            assert face["crop_box"] == list(faces.square_box(face["box"], faces.CROP_SCALE, height, width))
            crop = faces.crop_face(decoded[frame["index"]], face["crop_box"], model.input_size)
            expected = verdicts.frame_scores(model.probabilities(crop[None]), "mean", 0.5)[0]
            assert face["score"] == pytest.approx(expected, abs=1e-5)
            assert 0.0 <= face["score"] <= 1.0
        assert frame["score"] == max(face["score"] for face in frame["faces"])
    assert record["score"] == pytest.approx(np.mean([frame["score"] for frame in record["frames"]]))
    assert record["verdict"] == ("fake" if record["score"] >= VIDEO_THRESHOLD else "real")
    assert (record["threshold"], record["aggregation"]) == (VIDEO_THRESHOLD, "mean")
    assert record["frames_with_face"] == FRAMES and record["reason"] == ""
    assert set(record["seconds"]) >= {"decode", "detect", "model", "total"}


def _check_line(line, record):
    match = VERDICT_LINE.match(line)
    assert match, line
    assert match["path"] == record["path"] and match["verdict"] == record["verdict"]
    assert float(match["score"]) == pytest.approx(record["score"], abs=5e-4)
    assert match["relation"] == (">=" if record["verdict"] == "fake" else "<")
    assert float(match["threshold"]) == VIDEO_THRESHOLD
    assert int(match["frames"]) == int(match["with_face"]) == FRAMES


@requires_realdata
def test_a_portrait_video_gets_a_verdict_a_report_and_an_overlay(run_dir, tmp_path):
    from unet_industrial import inference

    overlay, report = tmp_path / "out" / "overlay.mp4", tmp_path / "out" / "report.json"
    result = _detect(run_dir, DFDC_PORTRAIT, f"--overlay_out={overlay}", f"--json_out={report}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1:] == [f"wrote {overlay}", f"wrote {report}"]
    written = json.loads(report.read_text())
    assert written["checkpoint"].endswith(os.path.join("checkpoints", "last.keras"))
    assert written["calibration"]["video_threshold"] == VIDEO_THRESHOLD
    (record,) = written["videos"]
    assert record["size"] == [1080, 1920]
    _check_video_record(record, inference.load(run_dir), frame_count=300)
    _check_line(lines[0], record)

    # The overlay: the sampled frames at detection size (longer side 1280), boxes drawn in green.
    capture = cv2.VideoCapture(str(overlay))
    drawn = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        drawn.append(frame)
    assert len(drawn) == FRAMES and drawn[0].shape == (1280, 720, 3)
    scale = 1280 / 1920
    x0, y0, x1, y1 = (round(v * scale) for v in record["frames"][0]["faces"][0]["crop_box"])
    edge = drawn[0][y0:y1, x0].astype(int)  # BGR: the box's left edge
    assert (edge[:, 1] > 180).mean() > 0.8 and (edge[:, 0] < 100).mean() > 0.8
    assert not [name for name in os.listdir(overlay.parent) if name.startswith(".tmp")]


@requires_realdata
def test_a_folder_gives_a_row_per_video_and_goes_on_past_a_bad_file(run_dir, tmp_path):
    from unet_industrial import inference

    folder = tmp_path / "inbox"
    (folder / "fakes").mkdir(parents=True)
    shutil.copy(FFPP_ORIGINAL, folder / "519.mp4")
    shutil.copy(FFPP_FAKE, folder / "fakes" / "519_515.mp4")
    # A link that leads out of the folder is not detected on (the layouts' one rule for paths).
    os.symlink(FFPP_FAKE, folder / "outside.mp4")
    _noise_video(folder / "noise.mp4")
    (folder / "broken.mp4").write_bytes(np.random.default_rng(1).bytes(4000))
    (folder / "notes.txt").write_text("not a video")
    report, overlays = tmp_path / "report.json", tmp_path / "overlays"
    result = _detect(run_dir, folder, f"--json_out={report}", f"--overlay_out={overlays}")
    assert result.returncode == 0, result.stderr

    fake = os.path.join("fakes", "519_515.mp4")
    paths = {name: str(folder / name) for name in ("519.mp4", fake, "broken.mp4", "noise.mp4")}
    lines = result.stdout.strip().splitlines()
    # Without --csv_out a folder's table goes into the run folder, and its path is printed last.
    table = lines.pop()[len("wrote "):]
    assert re.fullmatch(re.escape(os.path.join(run_dir, "detections", "inbox-")) + r"\d{8}-\d{6}\.csv", table)
    lines = [line for line in lines if not line.startswith("wrote ")]
    by_path = {line.split(": ")[0]: line for line in lines}
    assert sorted(by_path) == sorted(paths.values())
    noise_line = f"{paths['noise.mp4']}: no face found in {FRAMES} frames; no verdict"
    assert by_path[paths["noise.mp4"]] == noise_line
    assert by_path[paths["broken.mp4"]].startswith(f"{paths['broken.mp4']}: not read (unreadable_video: ")
    assert "skipping outside.mp4: path_outside_dataset" in result.stderr

    with open(table) as f:
        rows = {row["path"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == sorted(paths.values())
    broken, noise = rows[paths["broken.mp4"]], rows[paths["noise.mp4"]]
    assert (broken["reason"], broken["verdict"], broken["score"]) == ("unreadable_video", "", "")
    assert "cannot open" in broken["detail"]
    assert (noise["reason"], noise["verdict"], noise["score"]) == ("no_face", "", "")
    assert (noise["frames"], noise["frames_with_face"]) == (str(FRAMES), "0")

    model = inference.load(run_dir)
    records = {record["path"]: record for record in json.loads(report.read_text())["videos"]}
    for name in ("519.mp4", fake):
        record = records[paths[name]]
        assert record["size"] == [640, 480]
        _check_video_record(record, model, frame_count=751)
        _check_line(by_path[paths[name]], record)
        row = rows[paths[name]]
        assert (row["verdict"], float(row["score"]), int(row["frames_with_face"])) == (
            record["verdict"], pytest.approx(record["score"]), FRAMES)

    made = sorted(os.path.relpath(os.path.join(root, name), overlays)
                  for root, _, names in os.walk(overlays) for name in names)
    assert made == sorted(["519.mp4", fake, "noise.mp4"])


def test_lines_say_the_verdict_or_why_there_is_none():
    frame = detection.FrameResult(4, (detection.FaceResult(0, (1, 2, 3, 4), (0, 0, 5, 5), 0.3),), 0.3)
    empty = detection.FrameResult(9, (), None)

    def result(score, verdict, frames, reason="", detail=""):
        return detection.VideoResult("a.mp4", frames, score, verdict, 0.12, "median", (8, 8), {}, reason,
                                     detail)

    assert result(0.2314, "fake", (frame, empty)).line() == (
        "a.mp4: fake (score 0.231 >= threshold 0.120, median over 2 frames, 1 with a face)")
    assert result(0.05, "real", (frame,)).line() == (
        "a.mp4: real (score 0.050 < threshold 0.120, median over 1 frames, 1 with a face)")
    assert result(None, None, (empty, empty), "no_face").line() == (
        "a.mp4: no face found in 2 frames; no verdict")
    assert result(None, None, (), "unreadable_video", "cannot open a.mp4").line() == (
        "a.mp4: not read (unreadable_video: cannot open a.mp4); no verdict")


def test_overlay_text_is_white_inside_its_black_outline():
    """No white pixel of the caption or a face's score touches the untouched frame: the outline surrounds it.

    Under OpenCV 5 a thicker putText is a bolder, wider font, not an outline: white text drawn over it
    drifts off it and garbles ("frame 0: score ..." doubled).
    """
    blue = (0, 0, 255)  # no blend of the black outline and the white text gives it back
    image = np.full((120, 240, 3), blue, np.uint8)
    face = detection.FaceResult(0, (40, 40, 180, 100), (20, 30, 200, 110), 0.123)
    overlay.draw(image, 1.0, detection.FrameResult(12, (face,), 0.456), [None])
    white = (image > 200).all(axis=2)
    assert white[:32].sum() > 100 and white[80:110].sum() > 30  # the caption and the face's score
    next_to_white = cv2.dilate(white.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert not (next_to_white & (image == blue).all(axis=2)).any()


@pytest.mark.parametrize("case, message", [
    ("corrupt", "unreadable_video: cannot open"),
    ("no_calibration", "calibration.json does not exist"),
    ("no_model", "has no trained model"),
    ("missing_video", "nothing.mp4' does not exist"),
    ("too_many_frames", "--frames_per_video=1000 must be between 1 and 300"),
    ("existing_output", "exists; detection never replaces a file"),
    ("other_frame_count", f"--frames_per_video=5 differs from the {FRAMES} frames per video"),
    ("no_recipe", "records no crop recipe"),
])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(run_dir, tmp_path, case, message):
    out = tmp_path / "out"
    # Any readable video: each case is refused before a frame is read.
    video, run, flags = tmp_path / "clip.mp4", run_dir, []
    _noise_video(video)
    if case == "corrupt":
        video = tmp_path / "corrupt.mp4"
        video.write_bytes(np.random.default_rng(2).bytes(5000))
    elif case == "no_calibration":
        run = tmp_path / "uncalibrated"
        os.makedirs(run / "checkpoints")
        os.symlink(os.path.join(run_dir, "checkpoints", "last.keras"), run / "checkpoints" / "last.keras")
    elif case == "no_model":
        run = tmp_path / "untrained"
        run.mkdir()
        CALIBRATION.save(str(run))
    elif case == "missing_video":
        video = tmp_path / "nothing.mp4"
    elif case == "too_many_frames":
        flags = ["--frames_per_video=1000"]
    elif case == "other_frame_count":
        flags = ["--frames_per_video=5"]
    elif case == "no_recipe":
        # A calibration written before recipes were kept, of a run trained on records without a manifest.
        run = tmp_path / "old"
        os.makedirs(run / "checkpoints")
        os.symlink(os.path.join(run_dir, "checkpoints", "last.keras"), run / "checkpoints" / "last.keras")
        dataclasses.replace(CALIBRATION, crop_recipe=None).save(str(run))
    elif case == "existing_output":
        out.mkdir()
        (out / "table.csv").write_text("earlier results\n")
        flags = [f"--csv_out={out / 'table.csv'}"]
    result = run_module("unet_industrial.detect", f"--run_dir={run}", f"--video={video}",
                        f"--json_out={out / 'report.json'}", f"--overlay_out={out / 'overlay.mp4'}", *flags,
                        timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
    left = sorted(os.listdir(out)) if out.exists() else []
    assert left == (["table.csv"] if case == "existing_output" else [])
    if case == "existing_output":
        assert (out / "table.csv").read_text() == "earlier results\n"


def test_the_model_takes_crops_in_calls_of_bounded_pixels():
    from unet_industrial.detection import job

    calls = []

    class Model:
        """Predicts, per crop, a fake area equal to its index / 100, and records each call's size."""

        input_size, predicts_masks = 128, True

        def probabilities(self, crops, tta):
            calls.append(len(crops))
            return np.stack([np.full((8, 8), crop[0, 0, 0] / 100) for crop in crops])

    crops = [np.full((128, 128, 3), index, np.uint8) for index in range(37)]
    calibration = dataclasses.replace(CALIBRATION, frame_score="max", tta="none")
    scores, _ = job._score_crops(Model(), calibration, crops, keep_areas=False)
    per_call = detection.crops_per_call(128)
    assert per_call * 128 * 128 <= detection.MODEL_CHUNK_PIXELS < (per_call + 1) * 128 * 128
    assert calls == [per_call] * (37 // per_call) + [37 % per_call]
    np.testing.assert_allclose(scores, np.arange(37) / 100)
    assert detection.crops_per_call(4096) == 1
