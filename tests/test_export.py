"""`python -m unet_industrial.export`: SavedModel and TFLite models against the Keras model on the same crops.

Tiny untrained models: parity holds for any weights.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_module

from data_pipeline import recipe
from unet_industrial import exporting, inference, verdicts
from unet_industrial.models import unet as model_lib

SIZE = 32
CROPS = 5
# The exported probabilities against the Keras model's (the tolerances).
FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 1e-2
# Runs to export: the input paths (RGB, luma, crops resized to the model), each frame score rule,
# test-time augmentation and a classifier. The project's tinyUNet once; elsewhere a two-layer
# stand-in, since what is tested there is the graph around the model, and tracing it is cheap.
CASES = {
    "unet_rgb_area": dict(model="unet", channels=3, frame_score="area", tta="none", crop_size=SIZE),
    "luma_mean_resized": dict(model="conv", channels=1, frame_score="mean", tta="none", crop_size=40),
    "dihedral_max": dict(model="conv", channels=3, frame_score="max", tta="dihedral", crop_size=SIZE),
    "classifier": dict(model="classifier", channels=3, frame_score=verdicts.CLASSIFIER_FRAME_SCORE,
                       tta="none", crop_size=SIZE),
}
# tf.lite.Interpreter says it will move to another package; it runs the models today.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
# Loads the SavedModel and scores crops with TensorFlow and numpy alone, as a TF Serving user would.
FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
outputs = model.signatures["serving_default"](crops=tf.constant(np.load(sys.argv[2])))
ours = sorted(name for name in sys.modules if name.split(".")[0] in ("unet_industrial", "data_pipeline"))
print(json.dumps({"scores": outputs["scores"].numpy().tolist(),
                  "probabilities": list(outputs["probabilities"].shape), "ours": ours}))
"""


def make_calibration(frame_score="mean", pixel_threshold=0.5, tta="none", crop_size=SIZE, frames=2):
    """A calibration of a tiny run, with a crop recipe of `crop_size` pixels and `frames` frames per video."""
    crop_recipe = recipe.CropRecipe(image_size=crop_size, crop_scale=1.3, frames_per_video=frames,
                                    frame_stride=0, detect_every=4, detection_max_side=1280)
    return verdicts.Calibration(frame_score=frame_score, pixel_threshold=pixel_threshold,
                                frame_threshold=0.5, aggregation="mean", video_threshold=0.5, frame={},
                                video={}, checkpoint="last", data_pattern="tiny", tta=tta,
                                crop_recipe=crop_recipe.to_dict())


def _stand_in(channels, classifies):
    """An untrained two-layer model: a logit per pixel, or (`classifies`) one per crop."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, channels))
    net = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    if classifies:
        logits = layers.Dense(1)(layers.GlobalAveragePooling2D()(net))
    else:
        logits = layers.Conv2D(1, 3, padding="same")(net)
    return keras.Model(inputs, logits)


def write_run(folder, calibration, channels=3, model="unet"):
    """A run folder with an untrained 32-pixel model (checkpoints/last.keras) and `calibration`; its path.

    `model` is "unet" (the project's tinyUNet), "conv" or "classifier" (two-layer stand-ins).
    """
    import keras

    keras.utils.set_random_seed(0)
    if model == "unet":
        model = model_lib.build_unet("tinyUNet", (SIZE, SIZE, channels))
    else:
        model = _stand_in(channels, classifies=model == "classifier")
    os.makedirs(os.path.join(folder, "checkpoints"))
    model.save(os.path.join(folder, "checkpoints", "last.keras"))
    calibration.save(str(folder))
    return str(folder)


def _threshold_in_widest_gap(probabilities):
    """A pixel threshold midway in the widest gap between probabilities, so that no pixel is near it.

    An exported model's probabilities differ from Keras' by rounding; a
    threshold in a wide gap gives both the same "area" scores.
    """
    values = np.unique(probabilities)
    gaps = np.diff(values)
    widest = int(np.argmax(gaps))
    assert gaps[widest] > 20 * FLOAT32_TOLERANCE, "the model's probabilities leave no gap for a threshold"
    return float((values[widest] + values[widest + 1]) / 2)


class Case:
    """A tiny run, its crops, and the Keras model's probabilities and scores on them (detection's scoring)."""

    def __init__(self, folder, model, channels, frame_score, tta, crop_size):
        self.run_dir = write_run(folder, make_calibration(frame_score, 0.5, tta, crop_size), channels, model)
        self.trained = inference.load(self.run_dir)
        shape = (CROPS, crop_size, crop_size, 3)
        self.crops = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        self.probabilities = self.trained.probabilities(self.crops, tta)
        if frame_score == "area":
            threshold = _threshold_in_widest_gap(self.probabilities)
            make_calibration(frame_score, threshold, tta, crop_size).save(self.run_dir)
        self.calibration = verdicts.Calibration.load(self.run_dir)
        self.scores = verdicts.frame_scores(self.probabilities, frame_score, self.calibration.pixel_threshold)

    def export(self, out, format_name="saved_model", precision="float32"):
        lines = []
        exporting.export(exporting.ExportConfig(run_dir=self.run_dir, format=format_name, precision=precision,
                                                out=str(out)), report=lines.append)
        assert lines == [f"wrote {out}: {format_name} ({precision}), crops uint8 [N, {len(self.crops[0])}, "
                         f"{len(self.crops[0])}, 3] -> probabilities "
                         f"{'[N, H, W]' if self.trained.predicts_masks else '[N]'}, scores [N] "
                         f"({self.calibration.frame_score} rule)"]
        return str(out)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return {name: Case(root / name, **values) for name, values in CASES.items()}


@pytest.fixture(scope="module")
def unet_saved_model(cases, tmp_path_factory):
    return cases["unet_rgb_area"].export(tmp_path_factory.mktemp("saved") / "unet_rgb_area")


@pytest.fixture(scope="module")
def unet_tflite(unet_saved_model):
    """The tinyUNet's TFLite models, by precision, converted from its exported SavedModel."""
    return {precision: exporting.tflite_from_saved_model(unet_saved_model, precision)
            for precision in exporting.PRECISIONS}


def _saved_model_outputs(path, crops):
    import tensorflow as tf

    outputs = tf.saved_model.load(path).signatures[exporting.SIGNATURE](crops=tf.constant(crops))
    return outputs["probabilities"].numpy(), outputs["scores"].numpy()


@pytest.mark.parametrize("name", ["luma_mean_resized", "dihedral_max", "classifier"])
def test_a_saved_model_gives_the_keras_probabilities_and_detections_scores(cases, tmp_path, name):
    case = cases[name]
    probabilities, scores = _saved_model_outputs(case.export(tmp_path / name), case.crops)
    assert probabilities.shape == case.probabilities.shape
    assert np.abs(probabilities - case.probabilities).max() <= FLOAT32_TOLERANCE
    np.testing.assert_allclose(scores, case.scores, atol=1e-6)
    with open(os.path.join(tmp_path, name, exporting.CALIBRATION_ASSET)) as f:
        assert f.read() == open(os.path.join(case.run_dir, verdicts.CALIBRATION)).read()


def test_a_saved_model_in_a_fresh_process_scores_as_detection_does(cases, unet_saved_model, tmp_path):
    case = cases["unet_rgb_area"]
    probabilities, scores = _saved_model_outputs(unet_saved_model, case.crops)
    assert np.abs(probabilities - case.probabilities).max() <= FLOAT32_TOLERANCE
    np.testing.assert_array_equal(scores, case.scores.astype(np.float32))

    np.save(tmp_path / "crops.npy", case.crops)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # Isolated mode, outside the repository: this project cannot be imported even by accident.
    result = subprocess.run([sys.executable, "-I", "-c", FRESH_PROCESS, unet_saved_model,
                             str(tmp_path / "crops.npy")], cwd=tmp_path,
                            env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    assert fresh["ours"] == []
    assert fresh["probabilities"] == [CROPS, SIZE, SIZE]
    # Area scores: counts of pixels over a threshold no pixel is near, the same in both processes.
    np.testing.assert_array_equal(np.float32(fresh["scores"]), case.scores.astype(np.float32))


def _check_tflite(case, model, tolerance):
    """Runs a TFLite model with the interpreter on the case's crops and compares it with the Keras model."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model)
    assert list(interpreter.get_signature_list()) == [exporting.SIGNATURE]
    outputs = interpreter.get_signature_runner(exporting.SIGNATURE)(crops=case.crops)
    assert outputs["probabilities"].shape == case.probabilities.shape
    assert np.abs(outputs["probabilities"] - case.probabilities).max() <= tolerance
    if case.calibration.frame_score == "area":
        # A pixel crosses the threshold only if its probability is within the tolerance of it.
        near = np.abs(case.probabilities - case.calibration.pixel_threshold) <= tolerance
        bound = near.reshape(CROPS, -1).mean(axis=1) + 1e-6
        assert (np.abs(outputs["scores"] - case.scores) <= bound).all()
    else:
        assert np.abs(outputs["scores"] - case.scores).max() <= tolerance


@pytest.mark.parametrize("precision, tolerance", [("float32", FLOAT32_TOLERANCE),
                                                  ("float16", FLOAT16_TOLERANCE)])
def test_the_tflite_unet_run_by_the_interpreter_gives_the_keras_probabilities(cases, unet_tflite, precision,
                                                                              tolerance):
    _check_tflite(cases["unet_rgb_area"], unet_tflite[precision], tolerance)


def test_float16_weights_halve_the_tflite_model(unet_tflite):
    assert len(unet_tflite["float16"]) < 0.6 * len(unet_tflite["float32"])


def test_the_tflite_export_of_a_luma_model_on_larger_crops(cases, tmp_path):
    case = cases["luma_mean_resized"]
    path = case.export(tmp_path / "luma.tflite", "tflite")
    with open(path, "rb") as f:
        _check_tflite(case, f.read(), FLOAT32_TOLERANCE)


def test_a_bad_flag_gets_one_line_and_writes_nothing(cases, tmp_path):
    result = run_module("unet_industrial.export", f"--run_dir={cases['unet_rgb_area'].run_dir}",
                        "--format=saved_model", "--precision=float16", f"--out={tmp_path / 'model'}")
    assert result.returncode == 2
    assert result.stderr == ("error: --precision=float16 is for --format=tflite; a SavedModel keeps float32 "
                             "weights\n")
    assert os.listdir(tmp_path) == []


def test_an_existing_output_is_never_replaced(cases, tmp_path):
    from unet_industrial.config import ConfigError

    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="exists; export never replaces a file"):
        exporting.export(exporting.ExportConfig(run_dir=cases["unet_rgb_area"].run_dir,
                                                out=str(tmp_path / "model")))
