"""Frame scores, video aggregation and threshold calibration, against values worked out by hand."""

import numpy as np
import pytest

from unet_industrial import verdicts


def test_frame_scores_area_max_and_mean():
    probabilities = np.array([[[0.9, 0.2], [0.6, 0.1]], [[0.1, 0.1], [0.1, 0.3]]])[..., None]
    np.testing.assert_allclose(verdicts.frame_scores(probabilities), [0.5, 0.0])
    np.testing.assert_allclose(verdicts.frame_scores(probabilities, pixel_threshold=0.15), [0.75, 0.25])
    np.testing.assert_allclose(verdicts.frame_scores(probabilities, "max"), [0.9, 0.3])
    np.testing.assert_allclose(verdicts.frame_scores(probabilities, "mean"), [0.45, 0.15])
    with pytest.raises(ValueError, match="unknown frame score 'sum'"):
        verdicts.frame_scores(probabilities, "sum")


def test_a_frame_scores_the_maximum_over_its_faces():
    keys, scores = verdicts.max_over_faces([("a", 0), ("a", 0), ("a", 5), ("b", 0)], [0.1, 0.7, 0.2, 0.4])
    assert keys == [("a", 0), ("a", 5), ("b", 0)]
    np.testing.assert_allclose(scores, [0.7, 0.2, 0.4])


@pytest.mark.parametrize("aggregation, expected", [
    ("mean", 0.4), ("median", 0.3),
    ("topk_mean", 0.7),  # the top quarter of 5 frames is ceil(1.25) = 2: (0.9 + 0.5) / 2
    ("fake_fraction", 0.4),  # 0.9 and 0.5 are above 0.4
])
def test_video_aggregations(aggregation, expected):
    scores = [0.1, 0.9, 0.3, 0.2, 0.5]
    assert verdicts.video_score(scores, aggregation, frame_threshold=0.4) == pytest.approx(expected)


def test_the_confident_rule_of_the_dfdc_winner():
    many_high = [0.9] * 12 + [0.1] * 8  # 12 > 20 / 2.5 = 8 and 12 > 11: the mean of the confident fakes
    assert verdicts.video_score(many_high, "confident") == pytest.approx(0.9)
    few_high = [0.95] * 11 + [0.1] * 9  # 11 frames are not more than 11: the plain mean
    assert verdicts.video_score(few_high, "confident") == pytest.approx((0.95 * 11 + 0.1 * 9) / 20)
    mostly_low = [0.05] * 19 + [0.5]  # 19 > 0.9 x 20 = 18: the mean of the confident reals
    assert verdicts.video_score(mostly_low, "confident") == pytest.approx(0.05)
    with pytest.raises(ValueError, match="at least one frame score"):
        verdicts.video_score([], "mean")


def test_calibration_maximises_balanced_accuracy_and_bounds_false_positives():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    result = verdicts.calibrate_threshold(labels, scores)
    # At 0.7: tpr 3/4, fpr 0 -> 0.875; at 0.4: tpr 1, fpr 1/4 -> 0.875 too; at 0.6: 3/4, 1/4 -> 0.75.
    assert result["balanced_accuracy"] == pytest.approx(0.875)
    assert result["threshold"] in (0.7, 0.4)
    assert result["threshold_fpr_1pct"] == pytest.approx(0.7)  # the lowest threshold with no false positive
    assert result["threshold_fpr_5pct"] == pytest.approx(0.7)
    assert (result["num_fake"], result["num_real"]) == (4, 4)
    predicted = np.array(scores) >= result["threshold"]
    tpr, tnr = predicted[4:].mean(), 1 - predicted[:4].mean()
    assert (tpr + tnr) / 2 == pytest.approx(result["balanced_accuracy"])


def test_calibration_needs_both_classes():
    with pytest.raises(verdicts.CalibrationError, match="0 real, 3 fake"):
        verdicts.calibrate_threshold([1, 1, 1], [0.2, 0.5, 0.9])


def test_calibration_round_trip_and_missing_file(tmp_path):
    calibration = verdicts.Calibration(
        frame_score="area", pixel_threshold=0.5, frame_threshold=0.12, aggregation="mean", video_threshold=0.2,
        frame={"threshold": 0.12}, video={"threshold": 0.2}, checkpoint="best", data_pattern="d/val-*.tfrecord")
    path = calibration.save(str(tmp_path))
    assert path == str(tmp_path / "calibration.json")
    assert verdicts.Calibration.load(str(tmp_path)) == calibration
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.json"]
    with pytest.raises(verdicts.CalibrationError, match="calibration.json does not exist"):
        verdicts.Calibration.load(str(tmp_path / "elsewhere"))
    (tmp_path / "calibration.json").write_text('{"frame_score": "area"}')
    with pytest.raises(verdicts.CalibrationError, match="is not a calibration"):
        verdicts.Calibration.load(str(tmp_path))
