"""`python -m unet_industrial.evaluate`: calibration, report figures against scikit-learn, bad input.

The run's "model" has known behaviour: a 1x1 convolution whose logit is
GAIN * (mean of the pixel's channels in [-1, 1]), so a pixel is called fake
exactly when its channel mean exceeds 127.5. The test images are dark
(60-109) with bright patches (+80 or more) on fakes and some reals, so every
crop's score, predicted mask and IoU can be worked out from the images alone.
"""

import csv
import dataclasses
import glob
import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest
from conftest import run_module
from sklearn import metrics

from unet_industrial import evaluation, verdicts
from unet_industrial.config import ConfigError

SIZE = 32
GAIN = 10.0
# (video id, label, method, compression); three frames each.
VIDEOS = (
    ("original/c23/000", 0, "original", "c23"),
    ("original/c23/001", 0, "original", "c23"),
    ("original/c40/002", 0, "original", "c40"),
    ("original/c40/003", 0, "original", "c40"),
    ("Deepfakes/c23/000_001", 1, "Deepfakes", "c23"),
    ("Deepfakes/c40/002_003", 1, "Deepfakes", "c40"),
    ("FaceSwap/c23/001_000", 1, "FaceSwap", "c23"),
    ("FaceSwap/c40/003_002", 1, "FaceSwap", "c40"),
)
FRAMES = 3
# Frames with a second face (face number 1): one real, one fake.
TWO_FACES = {("original/c23/001", 1), ("Deepfakes/c23/000_001", 2)}
# A fake crop whose true mask is empty (as audio-only fakes): left out of IoU / Dice.
EMPTY_MASK = ("FaceSwap/c40/003_002", 0)


def _crop(rng, label, empty_mask):
    image = rng.integers(60, 110, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if label or rng.random() < 0.5:  # reals sometimes carry a small bright spot: false positives
        side = int(rng.integers(6, 17) if label else rng.integers(2, 9))
        top, left = (int(v) for v in rng.integers(1, SIZE - side - 1, size=2))
        image[top:top + side, left:left + side] += np.uint8(rng.integers(80, 111))
        if label and not empty_mask:
            # The true mask is one pixel wider than the bright patch, so IoU is below 1.
            mask[top - 1:top + side + 1, left - 1:left + side + 1] = 1
    return image, mask


def _write_split(directory, split, seed, videos=VIDEOS, label_only=()):
    """Two shards of the videos' crops; the fakes named in `label_only` are written without their masks.

    Returns:
      (pattern, {(video id, frame, face): (image, mask, row of VIDEOS)}).
    """
    import tensorflow as tf

    from data_pipeline import schema

    rng = np.random.default_rng(seed)
    crops = {}
    for video in videos:
        video_id, label = video[:2]
        for frame in range(FRAMES):
            for face in range(2 if (video_id, frame) in TWO_FACES else 1):
                image, mask = _crop(rng, label > 0, (video_id, frame) == EMPTY_MASK or video_id in label_only)
                crops[(video_id, frame, face)] = (image, mask, video)
    writers = [tf.io.TFRecordWriter(os.path.join(directory, f"{split}-{i:05d}-of-00002.tfrecord"))
               for i in range(2)]
    for index, ((video_id, frame, face), (image, mask, video)) in enumerate(crops.items()):
        writers[index % 2].write(schema.serialize_example({
            # OpenCV encodes BGR arrays: reversed, the PNG holds the RGB image.
            schema.IMAGE: cv2.imencode(".png", image[..., ::-1])[1].tobytes(), schema.IMAGE_FORMAT: "png",
            schema.HEIGHT: SIZE, schema.WIDTH: SIZE, schema.MASK: cv2.imencode(".png", mask)[1].tobytes(),
            schema.LABEL: video[1], schema.VIDEO_ID: video_id,
            schema.ORIGINAL_ID: video_id.split("/")[-1][:3],
            schema.METHOD: video[2], schema.COMPRESSION: video[3], schema.FRAME_INDEX: frame,
            schema.FACE_NUMBER: face, schema.BOX: [float(face), 0.0, 32.0, 32.0],
            schema.MASK_AREA: float(mask.mean()), schema.MASK_UNKNOWN: int(video_id in label_only),
        }))
    for writer in writers:
        writer.close()
    return os.path.join(directory, f"{split}-*.tfrecord"), crops


def _brightness_run(run_dir):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    logits = keras.layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(GAIN / 3))(inputs)
    os.makedirs(os.path.join(run_dir, "checkpoints"))
    keras.Model(inputs, logits).save(os.path.join(run_dir, "checkpoints", "last.keras"))
    return run_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("records"))
    return {"val": _write_split(directory, "val", seed=1), "test": _write_split(directory, "test", seed=2)}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, data):
    """A run calibrated on val through the command line (--calibrate), then evaluated on test here."""
    run_dir = _brightness_run(str(tmp_path_factory.mktemp("evaluated") / "run"))
    result = run_module("unet_industrial.evaluate", f"--run_dir={run_dir}",
                        f"--data_pattern={data['val'][0]}", "--split=val", "--batch_size=16", "--calibrate",
                        timeout=300)
    assert result.returncode == 0, result.stderr
    evaluation.evaluate(evaluation.EvalConfig(run_dir, data["test"][0], split="test", batch_size=16))
    return run_dir


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _frames(rows):
    """{(video, frame): (label, frame score, method, compression)} from per_frame.csv rows."""
    frames = {}
    for row in rows:
        key = (row["video_id"], int(row["frame_index"]))
        score = max(float(row["score"]), frames[key][1]) if key in frames else float(row["score"])
        frames[key] = (int(row["label"]), score, row["method"], row["compression"])
    return frames


def _sklearn_figures(labels, scores, threshold):
    labels, scores = np.asarray(labels), np.asarray(scores)
    predicted = (scores >= threshold).astype(int)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    closest = np.argmin(np.abs(1 - tpr - fpr))
    return {"roc_auc": metrics.roc_auc_score(labels, scores),
            "average_precision": metrics.average_precision_score(labels, scores),
            "accuracy": metrics.accuracy_score(labels, predicted),
            "balanced_accuracy": metrics.balanced_accuracy_score(labels, predicted),
            "eer": (fpr[closest] + 1 - tpr[closest]) / 2,
            "log_loss": metrics.log_loss(labels, np.clip(scores, 1e-6, 1 - 1e-6)),
            "confusion_matrix": metrics.confusion_matrix(labels, predicted).tolist()}


def _assert_figures(reported, expected):
    for name, value in expected.items():
        assert reported[name] == (value if isinstance(value, list) else pytest.approx(value)), name


def _load_report(path):
    def refuse(constant):
        raise AssertionError(f"{constant} in {path}: not valid JSON")

    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def test_crop_scores_masks_and_iou_follow_from_the_images(evaluated, data):
    rows = _rows(os.path.join(evaluated, "eval", "test", "per_frame.csv"))
    crops = data["test"][1]
    assert len(rows) == len(crops)
    for row in rows:
        image, mask, video = crops[(row["video_id"], int(row["frame_index"]), int(row["face_number"]))]
        predicted = image.astype(int).sum(-1) > 3 * 127.5
        assert (row["method"], row["compression"], int(row["label"])) == (video[2], video[3], video[1])
        assert float(row["score"]) == pytest.approx(predicted.mean())
        assert float(row["mask_area_pred"]) == pytest.approx(predicted.mean())
        assert float(row["mask_area_true"]) == pytest.approx(mask.mean())
        if mask.any():
            true = mask > 0
            assert float(row["iou"]) == pytest.approx((predicted & true).sum() / (predicted | true).sum())
        else:
            assert row["iou"] == row["dice"] == ""


def test_report_figures_are_scikit_learns_on_the_csv_columns(evaluated):
    folder = os.path.join(evaluated, "eval", "test")
    assert sorted(os.listdir(folder)) == ["overlays.png", "per_frame.csv", "per_video.csv", "pr.png",
                                          "report.json", "roc.png"]
    for name in ("overlays.png", "pr.png", "roc.png"):
        with open(os.path.join(folder, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    report = _load_report(os.path.join(folder, "report.json"))
    calibration = verdicts.Calibration.load(evaluated)
    assert {"frame", "video", "pixel", "checkpoint", "step", "data_pattern", "counts",
            "calibration"} <= set(report)
    assert report["calibration"] == _load_report(os.path.join(evaluated, "calibration.json"))
    assert report["checkpoint"] == os.path.join("checkpoints", "last.keras") and not report["calibrated"]
    assert report["settings"] == {"checkpoint": "best", "frame_score": "area", "pixel_threshold": 0.5,
                                  "aggregation": "mean", "tta": "none"}

    rows = _rows(os.path.join(folder, "per_frame.csv"))
    frames = _frames(rows)
    for row in rows:
        assert float(row["frame_score"]) == frames[(row["video_id"], int(row["frame_index"]))][1]
        assert row["verdict"] == verdicts.verdict(float(row["frame_score"]), calibration.frame_threshold)
    assert report["counts"]["crops"] == {"real": 13, "fake": 13}
    assert report["counts"]["frames"] == {"real": 12, "fake": 12}
    labels, scores, methods, compressions = (np.array(column) for column in zip(*frames.values()))
    assert report["frame"]["threshold"] == calibration.frame_threshold
    _assert_figures(report["frame"], _sklearn_figures(labels, scores, calibration.frame_threshold))
    # A method's subgroup: its fakes and every real frame; a compression's: all its frames.
    assert set(report["frame"]["by_method"]) == {"Deepfakes", "FaceSwap"}
    for method in ("Deepfakes", "FaceSwap"):
        rows_in = (labels == 0) | (methods == method)
        _assert_figures(report["frame"]["by_method"][method],
                        _sklearn_figures(labels[rows_in], scores[rows_in], calibration.frame_threshold))
        assert report["frame"]["by_method"][method]["num_real"] == 12
    for compression in ("c23", "c40"):
        rows_in = compressions == compression
        _assert_figures(report["frame"]["by_compression"][compression],
                        _sklearn_figures(labels[rows_in], scores[rows_in], calibration.frame_threshold))

    videos = _rows(os.path.join(folder, "per_video.csv"))
    assert [video["video_id"] for video in videos] == [video[0] for video in VIDEOS]
    for video in videos:
        own = [score for (video_id, _), (_, score, _, _) in frames.items() if video_id == video["video_id"]]
        assert int(video["num_frames"]) == FRAMES and float(video["score"]) == pytest.approx(np.mean(own))
        assert video["verdict"] == verdicts.verdict(float(video["score"]), calibration.video_threshold)
    video_labels, video_scores = (np.array([float(video[name]) for video in videos])
                                  for name in ("label", "score"))
    _assert_figures(report["video"],
                    _sklearn_figures(video_labels, video_scores, calibration.video_threshold))
    assert report["video"]["by_method"]["FaceSwap"]["num_fake"] == 2
    # The AUC intervals resample originals: a fake belongs to the original it was made from.
    assert [video["original_id"] for video in videos] == ["000", "001", "002", "003",
                                                           "000", "002", "001", "003"]
    frame_groups = [video_id.split("/")[-1][:3] for video_id, _ in frames]
    for section, (section_labels, section_scores, groups) in {
            "frame": (labels, scores, frame_groups),
            "video": (video_labels, video_scores, [video["original_id"] for video in videos])}.items():
        interval = report[section]["roc_auc_interval"]
        assert interval == pytest.approx(evaluation.roc_auc_interval(section_labels, section_scores, groups))
        assert 0.0 <= interval[0] <= report[section]["roc_auc"] <= interval[1] <= 1.0

    fake_iou = [float(row["iou"]) for row in rows if row["label"] == "1" and row["iou"]]
    real_area = [float(row["mask_area_pred"]) for row in rows if row["label"] == "0"]
    assert (report["pixel"]["num_fake"], report["pixel"]["num_fake_empty_mask"]) == (12, 1)
    assert report["pixel"]["iou"] == pytest.approx(np.mean(fake_iou))
    assert report["pixel"]["real_false_positive_area"] == pytest.approx(np.mean(real_area))
    assert np.mean(real_area) > 0
    deepfakes_iou = [float(row["iou"]) for row in rows if row["method"] == "Deepfakes" and row["iou"]]
    assert report["pixel"]["by_method"]["Deepfakes"]["iou"] == pytest.approx(np.mean(deepfakes_iou))
    c23_real_area = [float(row["mask_area_pred"]) for row in rows
                     if row["label"] == "0" and row["compression"] == "c23"]
    assert report["pixel"]["by_compression"]["c23"]["real_false_positive_area"] == pytest.approx(
        np.mean(c23_real_area))


def test_calibration_maximises_balanced_accuracy_on_val(evaluated, data):
    calibration = _load_report(os.path.join(evaluated, "calibration.json"))
    assert {name: calibration[name]
            for name in ("frame_score", "pixel_threshold", "aggregation", "tta", "checkpoint",
                         "data_pattern")} == {
        "frame_score": "area", "pixel_threshold": 0.5, "aggregation": "mean", "checkpoint": "best",
        "data_pattern": data["val"][0], "tta": "none"}
    report = _load_report(os.path.join(evaluated, "eval", "val", "report.json"))
    assert report["calibrated"] and report["calibration"] == calibration
    frames = _frames(_rows(os.path.join(evaluated, "eval", "val", "per_frame.csv")))
    videos = _rows(os.path.join(evaluated, "eval", "val", "per_video.csv"))
    for level, labels, scores in (
            ("frame", [frame[0] for frame in frames.values()], [frame[1] for frame in frames.values()]),
            ("video", [int(row["label"]) for row in videos], [float(row["score"]) for row in videos])):
        labels, scores = np.array(labels), np.array(scores)
        best = max(metrics.balanced_accuracy_score(labels, scores >= t) for t in np.unique(scores))
        threshold = calibration[f"{level}_threshold"]
        assert metrics.balanced_accuracy_score(labels, scores >= threshold) == pytest.approx(best)
        assert calibration[level]["balanced_accuracy"] == pytest.approx(best)
        assert report[level]["balanced_accuracy"] == pytest.approx(best)
    assert 0.5 < calibration["frame"]["balanced_accuracy"] < 1  # the data are not trivially separable


def test_tensorboard_holds_the_eval_scalars_and_images(evaluated):
    import tensorflow as tf

    tags = {value.tag for path in glob.glob(os.path.join(evaluated, "tb", "eval", "events*"))
            for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
    assert {"eval/test/frame_roc_auc", "eval/test/video_eer", "eval/test/pixel_iou", "eval/val/frame_roc_auc",
            "eval/test/image_true_predicted"} <= tags


def test_a_rerun_replaces_the_report_and_keeps_the_earlier_one(evaluated, data):
    earlier = _load_report(os.path.join(evaluated, "eval", "test", "report.json"))
    report = evaluation.evaluate(evaluation.EvalConfig(run_dir=evaluated, data_pattern=data["test"][0]))
    kept = [name for name in os.listdir(os.path.join(evaluated, "eval")) if name.startswith("test-")]
    assert len(kept) == 1 and _load_report(os.path.join(evaluated, "eval", kept[0], "report.json")) == earlier
    assert report["frame"]["roc_auc"] == earlier["frame"]["roc_auc"]
    assert not [name for name in os.listdir(os.path.join(evaluated, "eval")) if name.startswith(".tmp")]


def test_label_only_fakes_count_in_frame_and_video_figures_never_in_pixel_ones(tmp_path, evaluated, data):
    orphan = ("Deepfakes/c23/004_005", 1, "Deepfakes", "c23")
    pattern, _ = _write_split(str(tmp_path), "orphans", seed=2, videos=VIDEOS + (orphan,),
                              label_only=(orphan[0],))
    run_dir = str(tmp_path / "run")
    shutil.copytree(evaluated, run_dir)
    clean = _load_report(os.path.join(run_dir, "eval", "test", "report.json"))
    report = evaluation.evaluate(evaluation.EvalConfig(run_dir=run_dir, data_pattern=pattern,
                                                       split="orphans"))
    assert report["counts"]["videos"] == {"real": clean["counts"]["videos"]["real"],
                                          "fake": clean["counts"]["videos"]["fake"] + 1}
    assert report["video"]["num_fake"] == report["counts"]["videos"]["fake"]
    assert report["frame"]["num_fake"] == clean["frame"]["num_fake"] + FRAMES
    # The pixel figures are those of the fakes with a known mask: the clean split's, the orphan counted apart.
    assert report["pixel"]["num_fake_mask_unknown"] == FRAMES
    assert report["pixel"]["iou"] == pytest.approx(clean["pixel"]["iou"])
    assert report["pixel"]["num_fake_empty_mask"] == clean["pixel"]["num_fake_empty_mask"]
    rows = [row for row in _rows(os.path.join(run_dir, "eval", "orphans", "per_frame.csv"))
            if row["video_id"] == orphan[0]]
    assert len(rows) == FRAMES and {(row["mask_unknown"], row["iou"]) for row in rows} == {("1", "")}


def test_a_degraded_report_scores_the_degraded_crops_beside_the_clean_report(tmp_path, evaluated, data):
    from unet_industrial.evaluation import degradations

    run_dir = str(tmp_path / "run")
    shutil.copytree(evaluated, run_dir)
    clean = _load_report(os.path.join(run_dir, "eval", "test", "report.json"))
    report = evaluation.evaluate(evaluation.EvalConfig(run_dir=run_dir, data_pattern=data["test"][0],
                                                       split="test", degrade="blur:1.5"))
    assert report["degradation"] == {"name": "blur", "value": 1.5} and clean["degradation"] is None
    assert report == _load_report(os.path.join(run_dir, "eval", "test-blur1.5", "report.json"))
    assert _load_report(os.path.join(run_dir, "eval", "test", "report.json")) == clean
    assert report["calibration"] == clean["calibration"]  # judged with the clean thresholds
    # The brightness model calls a pixel fake where the blurred crop is brighter than 127.5.
    blur = degradations.parse("blur:1.5")
    rows = _rows(os.path.join(run_dir, "eval", "test-blur1.5", "per_frame.csv"))
    changed = 0
    for row in rows:
        image = data["test"][1][(row["video_id"], int(row["frame_index"]), int(row["face_number"]))][0]
        blurred = degradations.apply(image[None], blur, np.random.default_rng(0))[0]
        expected = (blurred.astype(np.float32).mean(axis=-1) > 127.5).mean()
        assert float(row["score"]) == pytest.approx(expected)
        changed += not np.isclose(expected, (image.astype(int).sum(-1) > 3 * 127.5).mean())
    assert changed > len(rows) // 2


def test_the_rank_auc_is_scikit_learns_ties_included():
    from unet_industrial.evaluation import figures

    rng = np.random.default_rng(5)
    for size in (2, 7, 60, 500):
        labels = np.r_[0, 1, rng.integers(0, 2, size - 2)]
        # Scores on a coarse grid, so that many are tied across and within the classes.
        scores = rng.integers(0, 6, size) / 5.0
        assert figures.rank_roc_auc(labels, scores) == pytest.approx(metrics.roc_auc_score(labels, scores),
                                                                      abs=1e-12)
    assert figures.rank_roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert figures.rank_roc_auc([1, 0], [0.9, 0.1]) == 1.0 and figures.rank_roc_auc([1, 0], [0.1, 0.9]) == 0.0


def test_the_auc_interval_resamples_whole_originals():
    # Four originals, each with the same two reals and two fakes: a draw of
    # whole originals always holds the same mix, so the AUC never moves; a
    # bootstrap of single rows would widen the interval.
    labels, scores = [0, 0, 1, 1] * 4, [0.1, 0.6, 0.5, 0.9] * 4
    groups = [name for name in "abcd" for _ in range(4)]
    auc = metrics.roc_auc_score(labels, scores)
    assert auc == 0.75 and evaluation.roc_auc_interval(labels, scores, groups) == pytest.approx([auc, auc])
    # One original whose real scores above every fake: AUC 0.8, and the draws
    # that leave it out are perfect, so the interval reaches 1.
    labels = [0, 1] * 5
    scores = [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.3, 0.5, 0.2, 0.4]
    groups = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]
    low, high = evaluation.roc_auc_interval(labels, scores, groups)
    assert metrics.roc_auc_score(labels, scores) == pytest.approx(0.8) and low < 0.8 and high == 1.0
    assert evaluation.roc_auc_interval(labels, scores, groups) == [low, high]  # seeded
    # Undefined: one original, or one class.
    assert evaluation.roc_auc_interval([0, 1], [0.2, 0.8], ["a", "a"]) is None
    assert evaluation.roc_auc_interval([1, 1], [0.2, 0.8], ["a", "b"]) is None


def test_settings_come_from_the_calibration_and_must_match_it():
    calibration = verdicts.Calibration(frame_score="max", pixel_threshold=0.5, frame_threshold=0.7,
                                       aggregation="median", video_threshold=0.6, frame={}, video={},
                                       checkpoint="last", data_pattern="val-*")

    def settings(calibration, **given):
        return evaluation.resolve_settings(evaluation.EvalConfig(run_dir="runs/x", data_pattern="*", **given),
                                           calibration)

    assert settings(None) == evaluation.DEFAULT_SETTINGS
    assert settings(None, aggregation="topk_mean")["aggregation"] == "topk_mean"
    # A calibration written before test-time augmentation existed was made without it.
    assert settings(calibration) == {"checkpoint": "last", "frame_score": "max", "pixel_threshold": 0.5,
                                     "aggregation": "median", "tta": "none"}
    with pytest.raises(ConfigError, match="--tta='dihedral' differs from 'none'"):
        settings(calibration, tta="dihedral")
    with pytest.raises(ConfigError, match="--aggregation='mean' differs from 'median'.*recalibrate"):
        settings(calibration, aggregation="mean")
    with pytest.raises(ConfigError, match="--checkpoint='best' differs"):
        settings(calibration, checkpoint="best")
    # Max scores ignore the pixel threshold: another one changes only the pixel figures.
    assert settings(calibration, pixel_threshold=0.3)["pixel_threshold"] == 0.3
    area = dataclasses.replace(calibration, frame_score="area")
    with pytest.raises(ConfigError, match="--pixel_threshold=0.3 differs"):
        settings(area, pixel_threshold=0.3)


def test_the_prediction_reader_yields_model_range_images_and_metadata(data):
    from data_pipeline import reader

    pattern, crops = data["val"]
    batches = list(reader.make_prediction_dataset(pattern, image_size=SIZE, channels=3,
                                                  batch_size=10).as_numpy_iterator())
    assert [len(batch["image"]) for batch in batches] == [10, 10, 6]
    for batch in batches:
        for i, video_id in enumerate(batch["video_id"]):
            key = (video_id.decode(), int(batch["frame_index"][i]), int(batch["face_number"][i]))
            image, mask, video = crops[key]
            np.testing.assert_allclose(batch["image"][i], image / 255.0 * 2 - 1, atol=1e-6)
            np.testing.assert_array_equal(batch["mask"][i][..., 0], mask)
            metadata = (int(batch["label"][i]), batch["method"][i].decode(), batch["compression"][i].decode())
            assert metadata == video[1:]
            assert batch["original_id"][i].decode() == video_id.decode().split("/")[-1][:3]
            assert float(batch["box"][i][0]) == key[2]
    evaluation_path = np.concatenate([images for images, _ in reader.make_dataset(
        pattern, image_size=SIZE, channels=3, batch_size=10, training=False)])
    np.testing.assert_array_equal(np.concatenate([batch["image"] for batch in batches]), evaluation_path)


@pytest.fixture
def bare_run(tmp_path):
    """A run folder with a model and no calibration."""
    return _brightness_run(str(tmp_path / "bare"))


@pytest.mark.parametrize("videos, error, message", [
    ([("folder/a.mp4", -1, "", "")], ConfigError,
     "holds records without a label (-1), e.g. of video 'folder/a.mp4'"),
    (VIDEOS[:4], verdicts.CalibrationError, "calibration needs real and fake examples; got 12 real, 0 fake"),
])
def test_data_that_cannot_be_evaluated_are_refused_before_anything_is_written(tmp_path, bare_run, videos,
                                                                              error, message):
    pattern, _ = _write_split(str(tmp_path), "val", seed=3, videos=videos)
    before = sorted(os.walk(bare_run))
    with pytest.raises(error, match=re.escape(message)):
        evaluation.evaluate(evaluation.EvalConfig(run_dir=bare_run, data_pattern=pattern, split="val",
                                                  calibrate=True))
    assert sorted(os.walk(bare_run)) == before


@pytest.mark.parametrize("case, flags, message", [
    ("bare", ["--calibrate", "--data_pattern={tmp}/nothing-*.tfrecord"],
     "--data_pattern='{tmp}/nothing-*.tfrecord' matches no file"),
    ("bare", [], "calibration.json does not exist; calibrate the run first"),
    ("empty", ["--calibrate"], "has no trained model (checkpoints/last.keras is missing)"),
    ("missing", ["--calibrate"], "is not a folder"),
    ("bare", ["--calibrate", "--aggregation=vote"], "aggregation"),
    ("bare", ["--calibrate", "--split=../test"], "--split='../test' must be a plain folder name"),
    ("bare", ["--calibrate", "--pixel_threshold=1.5"], "--pixel_threshold=1.5 must be between 0 and 1"),
    ("calibrated", ["--frame_score=max"], "--frame_score='max' differs from 'area'"),
    ("calibrated", ["--tta=dihedral"], "--tta='dihedral' differs from 'none'"),
    ("calibrated", ["--degrade=sharpen:1"], "--degrade='sharpen:1': write NAME:VALUE with NAME one of"),
    ("bare", ["--calibrate", "--degrade=blur:0.7"], "thresholds of clean ones: calibrate without it"),
])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(tmp_path, data, bare_run, evaluated, case, flags,
                                                           message):
    run_dir = {"bare": bare_run, "empty": str(tmp_path), "missing": str(tmp_path / "missing"),
               "calibrated": evaluated}[case]
    before = sorted(os.walk(run_dir)) if os.path.exists(run_dir) else None
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    if not any(flag.startswith("--data_pattern") for flag in flags):
        flags.append(f"--data_pattern={data['val'][0]}")
    result = run_module("unet_industrial.evaluate", f"--run_dir={run_dir}", "--split=other", *flags,
                        timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(tmp=tmp_path) in lines[0], \
        result.stderr
    assert (sorted(os.walk(run_dir)) if os.path.exists(run_dir) else None) == before


def test_a_run_calibrated_with_tta_is_scored_with_it(tmp_path, data, monkeypatch):
    from unet_industrial import inference

    used = []
    original = inference.TrainedModel.model_input_probabilities

    def recording(self, images, tta="none", batch_size=32):
        used.append(tta)
        return original(self, images, tta, batch_size)

    monkeypatch.setattr(inference.TrainedModel, "model_input_probabilities", recording)
    run_dir = _brightness_run(str(tmp_path / "run"))
    evaluation.evaluate(evaluation.EvalConfig(run_dir=run_dir, data_pattern=data["val"][0], split="val",
                                              calibrate=True, tta="dihedral"))
    assert verdicts.Calibration.load(run_dir).tta == "dihedral" and set(used) == {"dihedral"}
    used.clear()
    report = evaluation.evaluate(evaluation.EvalConfig(run_dir=run_dir, data_pattern=data["test"][0]))
    assert report["settings"]["tta"] == "dihedral" and set(used) == {"dihedral"}
