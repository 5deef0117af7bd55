"""A trained, calibrated run folder -> a detector folder that can ship: the model without its optimizer.

The shipped detector (`run_files.SHIPPED_RUN_DIR`) is made this way from
the run the model card names:

    python -m unet_industrial.package_run --run_dir=runs/real/e1-base-s0 \
        --out_dir=unet_industrial/pretrained/ffpp_c23

A training checkpoint carries the optimizer's slots (centred RMSProp keeps
three per weight), four times the model's own size; a detector needs none of
them. The package keeps what `inference.load`, `detect` and `evaluate`
read: the best checkpoint for inference, its training state (the step),
calibration.json (thresholds and crop recipe) and config.json, whose
provenance loses the machine's name and the script's absolute path.
"""

import os

from data_pipeline import files
from unet_industrial import run_files, verdicts
from unet_industrial.config import ConfigError

# Provenance fields that name the machine a run was trained on, not how.
_MACHINE_FIELDS = ("host",)


def package_run(run_dir, out_dir):
    """Writes the inference-only detector of a calibrated run into a new `out_dir`.

    Args:
      run_dir: a trained run folder with calibration.json (holding a crop recipe).
      out_dir: a folder that does not exist yet, or is empty.

    Returns:
      The path of the packaged model file.

    Raises:
      ConfigError: for a run without a model, calibration or recipe, or an out_dir in use.
    """
    import keras  # seconds to import: after the cheap checks

    from unet_industrial import inference

    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise ConfigError(f"--out_dir={out_dir!r} is not empty; a package never replaces files")
    try:
        calibration = verdicts.Calibration.load(run_dir)
    except verdicts.CalibrationError as error:
        raise ConfigError(str(error)) from error
    if calibration.recipe is None:
        raise ConfigError(f"{run_dir}'s calibration.json has no crop recipe: recalibrate it on records "
                          "with a manifest.json")
    trained = inference.load(run_dir, calibration.checkpoint)
    model_path = run_files.checkpoint_path(out_dir, "best")
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    # Loaded without compiling, the model has no optimizer, so none is saved.
    keras.saving.save_model(trained.model, model_path)
    files.write_json(run_files.train_state_path(out_dir), {"step": trained.step,
                                                            "best": {"step": trained.step}})
    calibration.save(out_dir)
    record = run_files.read_json(os.path.join(run_dir, run_files.CONFIG))
    record = {key: value for key, value in record.items() if key not in _MACHINE_FIELDS}
    record["command"] = [os.path.relpath(record["command"][0])] + record["command"][1:]
    files.write_json(os.path.join(out_dir, run_files.CONFIG), record)
    return model_path
