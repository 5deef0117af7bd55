"""The export job: a trained, calibrated run as a SavedModel or a TFLite model, to serve without this project.

Both formats hold one function (the SavedModel's `serving_default`
signature, the TFLite model's only one):

    crops: uint8 [N, S, S, 3], RGB face crops cut by the run's crop recipe
           (S is its image_size: the crops `detect` cuts)
    -> probabilities: float32 [N, H, W], each pixel's fake probability
                      (a classifier run's: [N], one per crop)
       scores:        float32 [N], each crop's score under the run's
                      calibration (its frame score rule and pixel threshold)

It is the whole of `inference.TrainedModel.probabilities` followed by
`verdicts.frame_scores`: the input transform is the one every stage uses
(`data_pipeline.model_input.to_model_input`: resize to the model's side
when it differs, [0, 1], ITU-R 601 luma for a one-channel model, [-1, 1]),
the sigmoid of the logits, the calibration's test-time augmentation if it
has one, then the score. A frame's score is the maximum over its faces'
and a video's the calibrated aggregation of its frames' (see verdicts.py);
the SavedModel carries the calibration as assets.extra/calibration.json for
that step, which is the caller's.

TensorFlow is imported here, unlike the rest of unet_industrial: both
formats are TensorFlow's, and the Keras model is traced by the TensorFlow
backend (KERAS_BACKEND=tensorflow, the default).
"""

import dataclasses
import os
import shutil
import tempfile

from data_pipeline import files
from unet_industrial import run_files, verdicts
from unet_industrial.config import ConfigError

FORMATS = ("saved_model", "tflite")
PRECISIONS = ("float32", "float16")
SIGNATURE = "serving_default"
INPUT = "crops"
# TF Serving reads extra files of a model version from here and ignores them.
CALIBRATION_ASSET = os.path.join("assets.extra", verdicts.CALIBRATION)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What an export depends on; the fields are the flags of `python -m unet_industrial.export`.

    Attributes:
      run_dir: a trained run folder with calibration.json; the shipped detector by default.
      checkpoint: "best" (falling back to "last") or "last".
      format: "saved_model" (a folder) or "tflite" (a .tflite file).
      precision: the TFLite weights' type, "float32" or "float16"; a SavedModel's are float32.
      out: the folder or file to write; it must not exist.
    """

    run_dir: str = run_files.SHIPPED_RUN_DIR
    checkpoint: str = "best"
    format: str = "saved_model"
    precision: str = "float32"
    out: str = ""


def validate(config):
    """Checks an ExportConfig before the model loads.

    Raises:
      ConfigError: naming the first problem.
    """
    run_files.check_run_folder(config.run_dir, config.checkpoint)
    if config.format not in FORMATS:
        raise ConfigError(f"--format={config.format!r} is not one of {', '.join(FORMATS)}")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"--precision={config.precision!r} is not one of {', '.join(PRECISIONS)}")
    if config.format == "saved_model" and config.precision != "float32":
        raise ConfigError("--precision=float16 is for --format=tflite; a SavedModel keeps float32 weights")
    if not config.out:
        raise ConfigError("--out is required: the SavedModel folder or the .tflite file to write")
    if config.format == "tflite" and not config.out.endswith(".tflite"):
        raise ConfigError(f"--out={config.out!r} must name a .tflite file")
    if os.path.exists(config.out):
        raise ConfigError(f"--out={config.out!r} exists; export never replaces a file, choose another path")


def crop_size(run_dir, trained, calibration):
    """The side of the crops the export takes: the crop recipe's image_size, else the model's input side.

    The recipe is the calibration's, else the one training copied into the run (as `detection.with_recipe`).
    """
    recipe = run_files.crop_recipe(run_dir, calibration)
    return recipe.image_size if recipe else trained.input_size


def _rot90(images, turns):
    """numpy's rot90 over axes (1, 2), in TensorFlow."""
    import tensorflow as tf

    return tf.experimental.numpy.rot90(images, turns, axes=(1, 2)) if turns % 4 else images


def scoring_function(trained, calibration):
    """The exported computation as a Python function of a uint8 crops tensor (see the module docstring).

    Args:
      trained: an `inference.TrainedModel`.
      calibration: the run's `verdicts.Calibration`.

    Returns:
      A function crops -> {"probabilities": ..., "scores": ...}, to be traced by tf.function.
    """
    import tensorflow as tf

    from data_pipeline import model_input
    from unet_industrial import inference

    views = inference.TTA_VIEWS[calibration.tta]
    rule, pixel_threshold = calibration.frame_score, calibration.pixel_threshold

    def probabilities_of(images):
        # As TrainedModel.model_input_probabilities: the mean over the views, each turned back.
        total = 0.0
        for turns, flip in views:
            view = _rot90(images, turns)
            view = tf.reverse(view, axis=[2]) if flip else view
            logits = tf.cast(trained.model(view, training=False), tf.float32)[..., 0]
            probabilities = tf.sigmoid(logits)
            if trained.predicts_masks:
                probabilities = tf.reverse(probabilities, axis=[2]) if flip else probabilities
                probabilities = _rot90(probabilities, -turns)
            total += probabilities
        return total / len(views)

    def score(crops):
        images = model_input.to_model_input(crops, trained.input_size, trained.channels)
        probabilities = probabilities_of(images)
        if rule == verdicts.CLASSIFIER_FRAME_SCORE:
            scores = probabilities
        else:
            flat = tf.reshape(probabilities, [tf.shape(probabilities)[0], -1])
            if rule == "area":
                scores = tf.reduce_mean(tf.cast(flat > pixel_threshold, tf.float32), axis=1)
            elif rule == "max":
                scores = tf.reduce_max(flat, axis=1)
            else:
                scores = tf.reduce_mean(flat, axis=1)
        return {"probabilities": tf.identity(probabilities, name="probabilities"),
                "scores": tf.identity(scores, name="scores")}

    return score


def write_saved_model(trained, calibration, size, out):
    """Writes the SavedModel folder `out` (through a temporary sibling renamed when complete).

    Args:
      trained: an `inference.TrainedModel`.
      calibration: the run's `verdicts.Calibration`.
      size: the side of the crops it takes (`crop_size`).
      out: the folder to write.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(trained.model)
    archive.add_endpoint(SIGNATURE, scoring_function(trained, calibration),
                         input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name=INPUT)])
    partial = files.temporary_sibling(out)
    shutil.rmtree(partial, ignore_errors=True)  # left by an export that was killed
    try:
        archive.write_out(partial, verbose=False)
        files.write_json(os.path.join(partial, CALIBRATION_ASSET), dataclasses.asdict(calibration))
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def tflite_from_saved_model(saved_model, precision="float32"):
    """Converts a SavedModel folder written by `write_saved_model` into a TFLite model's bytes.

    float16 stores the weights as float16 (half the size); the interpreter
    computes in float32 on CPUs.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_bytes(trained, calibration, size, precision="float32"):
    """The TFLite model (arguments as `write_saved_model`'s), through a SavedModel in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        saved_model = os.path.join(folder, "saved_model")
        write_saved_model(trained, calibration, size, saved_model)
        return tflite_from_saved_model(saved_model, precision)


def export(config, report=print):
    """Runs the export job: checks the config, loads the run, writes the model.

    Args:
      config: an ExportConfig.
      report: called with the line that says what was written.

    Raises:
      ConfigError: for a bad flag value, an output that exists, a run without
        a model, a Keras backend other than TensorFlow.
      verdicts.CalibrationError: for a run without a usable calibration.
    """
    validate(config)
    calibration = verdicts.Calibration.load(config.run_dir)
    import keras  # Keras and TensorFlow: seconds to import, paid once the input is known good.

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(f"export traces the model with TensorFlow; run it with KERAS_BACKEND=tensorflow "
                          f"(not {keras.backend.backend()})")
    from unet_industrial import inference

    trained = inference.load(config.run_dir, config.checkpoint)
    size = crop_size(config.run_dir, trained, calibration)
    if config.format == "saved_model":
        write_saved_model(trained, calibration, size, config.out)
    else:
        files.atomic_write(config.out, tflite_bytes(trained, calibration, size, config.precision))
    output = "[N, H, W]" if trained.predicts_masks else "[N]"
    report(f"wrote {config.out}: {config.format} ({config.precision}), {INPUT} uint8 [N, {size}, {size}, 3] "
           f"-> probabilities {output}, scores [N] ({calibration.frame_score} rule)")
