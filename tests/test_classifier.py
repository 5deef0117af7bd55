"""The classification baseline (--model_kind=classifier): backbones, input range, training, evaluation.

Tiny sizes throughout (64-80 px, two training steps, random initialization).
"""

import csv
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from conftest import run_module, write_shards

from unet_industrial import config as config_lib
from unet_industrial import detection, inference, run_files, verdicts
from unet_industrial.detection import job as detection_job
from unet_industrial.detection import overlay as detection_overlay
from unet_industrial.models import classifier
from unet_industrial.training import trainer

SIZES = {"xception": 80, "efficientnet_b0": 64, "efficientnet_b4": 64, "unet_encoder": 32}
# What each backbone expects of the pixels it is given, [0, 255] in: keras.applications' own
# preprocess_input, and for the UNet's encoder the segmenter's [-1, 1].
PREPROCESS = {"xception": keras.applications.xception.preprocess_input,
              "efficientnet_b0": keras.applications.efficientnet.preprocess_input,
              "efficientnet_b4": keras.applications.efficientnet.preprocess_input,
              "unet_encoder": lambda pixels: pixels / 127.5 - 1.0}
# The UNet-encoder backbone for the command-line runs: the smallest graph to trace, at 32 px.
CLI_SIZE = 32
CLI_FLAGS = ["--model_kind=classifier", "--classifier=unet_encoder", f"--input_size={CLI_SIZE}",
             "--batch_size=4", "--log_every=1", "--augmentation=none"]


@pytest.fixture(scope="module")
def models():
    return {name: classifier.build_classifier(name, (size, size, 3)) for name, size in SIZES.items()}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_backbone_gives_one_logit_per_image(models, name):
    size = SIZES[name]
    images = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    logits = np.asarray(models[name](images, training=False))
    assert models[name].output_shape == (None, 1)
    assert logits.shape == (2, 1) and logits.dtype == np.float32 and np.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_backbone_sees_what_its_own_preprocess_input_makes_of_pixels(models, name):
    size = SIZES[name]
    pixels = np.random.default_rng(1).integers(0, 256, (2, size, size, 3)).astype(np.float32)
    model = models[name]
    to_backbone = keras.Model(model.inputs, model.get_layer(classifier.INPUT_RANGE_LAYER).output)
    # Our reader's range: pixels / 255 * 2 - 1 (data_pipeline.model_input.to_model_input).
    seen = np.asarray(to_backbone([pixels / 127.5 - 1.0]))
    np.testing.assert_allclose(seen, PREPROCESS[name](pixels.copy()), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_unet_encoder_classifier_has_the_segmenters_own_encoder(channels):
    from unet_industrial.models.unet import build_unet

    shape = (32, 32, channels)
    model = classifier.build_classifier("unet_encoder", shape)
    segmenter = build_unet("tinyUNet", shape)

    def shapes(layers):
        return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in layers if layer.weights}

    encoder = {name: value for name, value in shapes(segmenter.layers).items()
               if not name.startswith(("upsample", "output", "logits")) and "deconv" not in name}
    # The backbone: every encoder layer of the segmenter, by name and shape, and nothing else.
    assert len(encoder) == 10 and shapes(model.get_layer("unet_encoder").layers) == encoder
    assert shapes(model.layers)["logits"] == [(256, 1), (1,)]
    assert model.output_shape == (None, 1) and model.get_layer("dropout").rate == 0.0
    with pytest.raises(ValueError, match="unet_encoder has no pretrained weights"):
        classifier.build_classifier("unet_encoder", shape, weights="imagenet")


def test_frame_labels_loss_and_metrics_follow_the_masks():
    masks = np.zeros((3, 8, 8, 1), np.float32)
    masks[0, 2, 3, 0] = 1.0
    logits = np.array([[2.0], [-1.0], [0.5]], np.float32)
    labels = np.array([1.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(classifier.frame_labels(masks))[:, 0], labels)
    probabilities = 1 / (1 + np.exp(-logits[:, 0]))
    expected = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    np.testing.assert_allclose(float(classifier.FrameLoss()(masks, logits)), expected, rtol=1e-5)
    results = {}
    for metric in classifier.frame_metrics(with_loss=True):
        metric.update_state(masks, logits)
        results[metric.name] = float(metric.result())
    assert results["accuracy"] == pytest.approx(2 / 3)
    assert results["auc"] == pytest.approx(1.0)
    assert results["frame_bce"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["efficientnet_b0", "unet_encoder"])
def test_a_saved_classifier_reloads_with_its_loss_metrics_and_outputs(tmp_path, models, name):
    size = SIZES[name]
    config = config_lib.TrainConfig(model_kind="classifier", classifier=name, input_size=size)
    model = models[name]
    trainer.compile_for_training(model, config)
    # As in a training checkpoint: the optimizer's slots are saved too.
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(2).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), rtol=1e-6)
    assert isinstance(loaded.loss, classifier.FrameLoss)
    masks = np.zeros((2, size, size, 1), np.float32)
    masks[0, :8, :8] = 1.0
    # One batch, without `evaluate`'s tf.data pipeline (see reader.without_autotuning).
    assert set(loaded.test_on_batch(images, masks, return_dict=True)) == {"loss", "accuracy", "auc"}
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)


def test_old_saved_configs_load_as_segmenters(tmp_path):
    saved = dataclasses.asdict(config_lib.TrainConfig())
    for name in ("model_kind", "classifier", "weights"):
        del saved[name]
    values = dataclasses.asdict(config_lib.TrainConfig(model_kind="classifier"))
    resolved = config_lib.resolve(values, present=[], saved=saved)
    assert (resolved.model_kind, resolved.weights) == ("classifier", "none")  # the flag value: not saved
    default_flags = dataclasses.asdict(config_lib.TrainConfig())
    assert config_lib.resolve(default_flags, [], saved).model_kind == "segmenter"
    (tmp_path / "config.json").write_text(json.dumps({"config": saved}))
    assert run_files.model_kind(str(tmp_path)) == "segmenter"


def _mean_brightness_classifier(size=32):
    """A classifier whose logit is 10 x the mean of the crop in [-1, 1]."""
    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(10 / 3))(pooled)
    return inference.TrainedModel(keras.Model(inputs, logits), size, 3, "in-memory", None, "classifier")


def test_inference_and_detection_score_a_classifier_by_its_probability():
    trained = _mean_brightness_classifier()
    crops = np.stack([np.full((32, 32, 3), value, np.uint8) for value in (40, 128, 230)])
    expected = verdicts.sigmoid(10 * (crops.mean(axis=(1, 2, 3)) / 127.5 - 1)).astype(np.float32)
    np.testing.assert_allclose(trained.probabilities(crops), expected, rtol=1e-4)
    # The mean is invariant under the dihedral views: test-time augmentation changes nothing.
    np.testing.assert_allclose(trained.probabilities(crops, tta="dihedral"), expected, rtol=1e-4)
    calibration = verdicts.Calibration(frame_score=verdicts.CLASSIFIER_FRAME_SCORE, pixel_threshold=None,
                                       frame_threshold=0.5, aggregation="mean", video_threshold=0.5, frame={},
                                       video={}, checkpoint="best", data_pattern="val")
    scores, areas = detection_job._score_crops(trained, calibration, list(crops), keep_areas=True)
    np.testing.assert_allclose(scores, expected, rtol=1e-4)
    assert areas == [None] * 3
    # The overlay of a classifier: the box and the score, no tint inside the box.
    image = np.full((100, 100, 3), 90, np.uint8)
    face = detection.FaceResult(0, (20, 20, 80, 80), (20, 20, 80, 80), float(scores[2]))
    frame = detection.FrameResult(0, (face,), float(scores[2]))
    drawn = detection_overlay.draw(image.copy(), 1.0, frame, [None])
    assert (drawn[32:50, 30:75] == 90).all() and (drawn[30:55, 79] == detection.BOX_COLOUR).all()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_tfrecords):
    """A classifier trained two steps through the command line, with evaluation (the best checkpoint)."""
    train_pattern, eval_pattern = tiny_tfrecords
    run_dir = tmp_path_factory.mktemp("classifier") / "run"
    result = run_module("unet_industrial.train", "--exec_mode=train_and_evaluate", "--num_iter=2",
                        "--save_every=2", f"--train_pattern={train_pattern}",
                        f"--eval_pattern={eval_pattern}", f"--run_dir={run_dir}", *CLI_FLAGS, timeout=300)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_the_classifier_learns_frame_labels_it_can_see(tmp_path):
    """The training path end to end on crops whose fakes carry a bright patch: separable, so learnt.

    Guards the labels (frame_labels of the masks, through the reader and
    the loss): a classifier at chance on real data must be the data's doing.
    """
    from unet_industrial.training import jobs

    records = str(tmp_path / "records")
    config = config_lib.TrainConfig(
        exec_mode="train_and_evaluate", model_kind="classifier", classifier="unet_encoder", input_size=32,
        batch_size=8, num_iter=30, save_every=30, learning_rate=1e-3, augmentation="none",
        train_pattern=write_shards(records, "train", 64, seed=0, fake_videos=True),
        eval_pattern=write_shards(records, "val", 32, seed=1, fake_videos=True),
        run_dir=str(tmp_path / "run"))
    results = jobs.run(config, config.run_dir)
    assert results["auc"] > 0.95 and results["accuracy"] > 0.9, results


def test_the_training_job_writes_a_classifier_run(trained_run):
    saved = json.loads((trained_run / "config.json").read_text())["config"]
    assert (saved["model_kind"], saved["classifier"], saved["weights"]) == ("classifier", "unet_encoder",
                                                                             "none")
    state = json.loads((trained_run / "checkpoints" / "train_state.json").read_text())
    assert state["step"] == 2 and state["best_metric"] == "auc" and state["best"]["step"] == 2
    evaluations = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()
                   if json.loads(line)["split"] == "eval"]
    assert {"auc", "accuracy", "frame_bce"} <= set(evaluations[-1])
    assert (trained_run / "checkpoints" / "best.keras").exists()


def _per_frame_scores(folder):
    with open(os.path.join(folder, "per_frame.csv")) as f:
        rows = list(csv.DictReader(f))
    assert all(row["iou"] == row["dice"] == row["mask_area_pred"] == "" for row in rows)
    return {(row["video_id"], int(row["frame_index"])): float(row["score"]) for row in rows}


def _model_scores(model, pattern, size):
    """{(video id, frame index): sigmoid(logit)} of a model on the records, read as evaluation reads them."""
    from data_pipeline import reader

    scores = {}
    for batch in reader.make_prediction_dataset(pattern, image_size=size, channels=3,
                                                batch_size=16).as_numpy_iterator():
        logits = np.asarray(model.predict_on_batch(batch["image"]), np.float32)[:, 0]
        for video_id, frame, score in zip(batch["video_id"], batch["frame_index"], verdicts.sigmoid(logits)):
            scores[(video_id.decode(), int(frame))] = float(score)
    return scores


def test_evaluate_reports_frames_and_videos_of_a_trained_classifier(trained_run, tmp_path, caplog):
    from unet_industrial import evaluation

    pattern = write_shards(str(tmp_path / "records"), "val", 16, seed=3, fake_videos=True)
    # The job in this process (the command line's own checks run below): it spares a TensorFlow start-up.
    with caplog.at_level("INFO"):
        evaluation.evaluate(evaluation.EvalConfig(str(trained_run), pattern, split="val", calibrate=True,
                                                  batch_size=16))
    assert "no pixel section and no overlays.png" in caplog.text
    folder = trained_run / "eval" / "val"
    report = json.loads((folder / "report.json").read_text())
    assert "pixel" not in report and report["model_kind"] == "classifier"
    assert report["frame"]["num_fake"] == 8 and report["video"]["num_fake"] == 2
    assert report["settings"]["frame_score"] == verdicts.CLASSIFIER_FRAME_SCORE
    assert sorted(os.listdir(folder)) == ["per_frame.csv", "per_video.csv", "pr.png", "report.json",
                                          "roc.png"]
    model = keras.saving.load_model(str(trained_run / "checkpoints" / "best.keras"), compile=False)
    reported, expected = _per_frame_scores(folder), _model_scores(model, pattern, CLI_SIZE)
    assert reported.keys() == expected.keys() and len(reported) == 16
    # Two steps from random weights score every crop about alike; the comparison is exact (same batch).
    np.testing.assert_allclose([reported[key] for key in expected], list(expected.values()), rtol=1e-6)

    refused = run_module("unet_industrial.evaluate", f"--run_dir={trained_run}", f"--data_pattern={pattern}",
                         "--split=test", "--frame_score=max", timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: --frame_score scores predicted masks") and "classifier run" in lines[0]
    assert not (trained_run / "eval" / "test").exists()


def test_evaluation_scores_are_the_classifiers_probabilities(tmp_path):
    """A classifier run with a known model (the crop's brightness), whose scores differ from crop to crop."""
    from unet_industrial import evaluation

    pattern = write_shards(str(tmp_path / "records"), "val", 16, seed=4, fake_videos=True)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    saved = dataclasses.asdict(config_lib.TrainConfig(model_kind="classifier", input_size=32))
    (run_dir / "config.json").write_text(json.dumps({"config": saved}))
    model = _mean_brightness_classifier().model
    model.save(str(run_dir / "checkpoints" / "last.keras"))
    report = evaluation.evaluate(evaluation.EvalConfig(str(run_dir), pattern, split="val", calibrate=True,
                                                       tta="dihedral"))
    assert "pixel" not in report and report["frame"]["roc_auc"] > 0.9  # fakes carry a bright patch
    reported, expected = _per_frame_scores(run_dir / "eval" / "val"), _model_scores(model, pattern, 32)
    assert reported.keys() == expected.keys() and np.ptp(list(expected.values())) > 0.1
    np.testing.assert_allclose([reported[key] for key in expected], list(expected.values()), rtol=1e-5)


def test_a_checkpoint_is_restored_into_a_backbone_built_without_fetching_weights(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # offline, whatever the machine
    config = config_lib.TrainConfig(model_kind="classifier", classifier="efficientnet_b0", weights="imagenet",
                                    input_size=32)
    assert trainer.build_model(config, pretrained=False).output_shape == (None, 1)


def test_imagenet_weights_offline_give_one_clear_line(tmp_path, tiny_tfrecords):
    run_dir = tmp_path / "run"
    # An empty weights cache and a proxy that refuses every connection: offline, whatever the machine.
    offline = {"KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9"}
    # EfficientNet-B0: the UNet encoder has no ImageNet weights to fetch.
    result = run_module("unet_industrial.train", "--weights=imagenet", "--num_iter=1",
                        f"--train_pattern={tiny_tfrecords[0]}", f"--run_dir={run_dir}", *CLI_FLAGS,
                        "--classifier=efficientnet_b0", "--input_size=64", env=offline, timeout=120)
    # TensorFlow's own start-up lines (it is imported to build the model) may precede the error.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert errors[0] == result.stderr.strip().splitlines()[-1] and "Traceback" not in result.stderr
    assert errors[0].startswith("error: --weights=imagenet: cannot load the efficientnet_b0 ImageNet weights")
    assert not run_dir.exists()
