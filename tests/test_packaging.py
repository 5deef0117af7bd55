"""A calibrated run packaged as a detector that can ship: smaller, same predictions, no machine names."""

import json
import os

import numpy as np
import pytest
from conftest import run_module

from data_pipeline import recipe
from unet_industrial import config as config_lib
from unet_industrial import inference, packaging, run_files, verdicts
from unet_industrial.config import ConfigError
from unet_industrial.training import trainer

SIZE = 32
RECIPE = recipe.CropRecipe(image_size=SIZE, crop_scale=1.3, frames_per_video=4, frame_stride=0,
                           detect_every=4, detection_max_side=1280)


def _calibration(crop_recipe):
    return verdicts.Calibration(frame_score="mean", pixel_threshold=0.5, frame_threshold=0.5,
                                aggregation="mean", video_threshold=0.5, frame={}, video={},
                                checkpoint="best", data_pattern="val", crop_recipe=crop_recipe)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run as training leaves it: a checkpoint with its optimizer's state, config.json, a calibration."""
    run = str(tmp_path_factory.mktemp("packaging") / "run")
    config = config_lib.TrainConfig(input_size=SIZE, batch_size=2)
    model = trainer.build_model(config)
    trainer.compile_for_training(model, config)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.uniform(-1, 1, (2, SIZE, SIZE, 3)),
                         (rng.uniform(0, 1, (2, SIZE, SIZE, 1)) > 0.5) * 1.0)
    os.makedirs(os.path.join(run, run_files.CHECKPOINT_DIR))
    model.save(run_files.checkpoint_path(run, "best"))
    with open(run_files.train_state_path(run), "w") as f:
        json.dump({"step": 1, "best": {"step": 1, "value": 0.5}}, f)
    run_files.record_start(run, config, **{recipe.RECIPE_KEY: RECIPE.to_dict()})
    _calibration(RECIPE.to_dict()).save(run)
    return run


def test_a_package_predicts_as_the_run_from_a_smaller_file(run_dir, tmp_path):
    out = str(tmp_path / "detector")
    model_path = packaging.package_run(run_dir, out)
    assert model_path == run_files.checkpoint_path(out, "best")
    # The optimizer's slots are gone: centred RMSProp keeps three per weight.
    assert os.path.getsize(model_path) < os.path.getsize(run_files.checkpoint_path(run_dir, "best")) / 2
    crops = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    packaged, original = inference.load(out), inference.load(run_dir)
    np.testing.assert_array_equal(packaged.probabilities(crops), original.probabilities(crops))
    assert packaged.step == original.step == 1
    assert verdicts.Calibration.load(out) == verdicts.Calibration.load(run_dir)
    assert run_files.crop_recipe(out) == RECIPE
    with open(os.path.join(out, run_files.CONFIG)) as f:
        stored = json.load(f)
    assert "host" not in stored and not os.path.isabs(stored["command"][0])


def test_a_package_is_refused_over_files_or_without_a_recipe(run_dir, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me\n")
    with pytest.raises(ConfigError, match="is not empty"):
        packaging.package_run(run_dir, str(used))
    assert os.listdir(used) == ["notes.txt"]
    old = tmp_path / "old"
    os.makedirs(old / run_files.CHECKPOINT_DIR)
    os.symlink(run_files.checkpoint_path(run_dir, "best"), run_files.checkpoint_path(str(old), "best"))
    _calibration(None).save(str(old))
    with pytest.raises(ConfigError, match="has no crop recipe"):
        packaging.package_run(str(old), str(tmp_path / "out"))


def test_the_command_line_packages_a_run(run_dir, tmp_path):
    out = tmp_path / "cli"
    result = run_module("unet_industrial.package_run", f"--run_dir={run_dir}", f"--out_dir={out}",
                        timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {run_files.checkpoint_path(str(out), 'best')}"
    assert sorted(os.listdir(out)) == ["calibration.json", "checkpoints", "config.json"]
