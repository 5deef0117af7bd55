"""The detector that ships in the package: its files, its recipe, and its verdicts on the
held-out 519 pair."""

import json
import os

import numpy as np
import pytest

from conftest import REALDATA_DIR, requires_realdata
from data_pipeline import faces, recipe
from unet_industrial import detection, run_files, verdicts

FFPP = os.path.join(REALDATA_DIR, "ffpp")
ORIGINAL = os.path.join(FFPP, "original_sequences", "youtube", "c23", "videos", "519.mp4")
FAKE = os.path.join(FFPP, "manipulated_sequences", "Deepfakes", "c23", "videos", "519_515.mp4")
# The model file's cap, so that the repository stays small.
MAX_MODEL_BYTES = 15 * 1024 * 1024


def test_the_shipped_detector_is_complete():
    shipped = run_files.SHIPPED_RUN_DIR
    model = run_files.checkpoint_path(shipped, "best")
    assert os.path.isfile(model) and os.path.getsize(model) <= MAX_MODEL_BYTES
    calibration = verdicts.Calibration.load(shipped)
    # detect follows the recipe it carries; training copied the same one into config.json.
    assert calibration.recipe is not None and calibration.recipe == run_files.crop_recipe(shipped)
    with open(os.path.join(shipped, "MODEL_CARD.md")) as f:
        card = f.read()
    for heading in ("## Data", "## Recipe", "## Figures", "## Limits", "## Terms of use"):
        assert heading in card, heading
    assert "FaceForensics" in card and "519" in card


@pytest.fixture(scope="module")
def shipped():
    """The shipped model and its calibration with its recipe, loaded once."""
    from unet_industrial import inference

    calibration = detection.with_recipe(run_files.SHIPPED_RUN_DIR,
                                        verdicts.Calibration.load(run_files.SHIPPED_RUN_DIR))
    return inference.load(run_files.SHIPPED_RUN_DIR), calibration


@requires_realdata
# A known failure, recorded rather than hidden: the shipped detector scores 519_515 well above 519 but
# below its calibrated video threshold, so it calls both real (its model card's "Limits"; issue 19).
# strict: the day a new detector calls the pair right, this marker must go.
@pytest.mark.xfail(strict=True, reason="the shipped detector calls 519_515 real: it is near chance across "
                                       "identities (MODEL_CARD.md, issue 19)")
def test_the_shipped_detector_calls_the_held_out_pair_right(shipped):
    model, calibration = shipped
    fake, _ = detection.detect_video(FAKE, model, calibration)
    real, _ = detection.detect_video(ORIGINAL, model, calibration)
    assert (fake.verdict, real.verdict) == ("fake", "real"), (fake.score, real.score,
                                                              calibration.video_threshold)
    assert fake.frames_with_face == real.frames_with_face == calibration.recipe.frames_per_video


@requires_realdata
def test_the_fakes_predicted_mask_lies_on_the_face(shipped):
    """Most pixels the model calls fake in 519_515's crops fall inside the tracked face box."""
    from data_pipeline import extract

    model, calibration = shipped
    crop_recipe = calibration.recipe
    cut = detection.cut_faces(FAKE, crop_recipe, extract.StageTimer())
    main = [i for i, (_, face) in enumerate(cut.owners) if face.number == 0]
    probabilities = model.probabilities(np.stack([cut.crops[i] for i in main]))
    fake_pixels = probabilities > calibration.pixel_threshold
    size = fake_pixels.shape[1]
    inside = np.zeros_like(fake_pixels)
    for row, i in enumerate(main):
        _, face = cut.owners[i]
        x0, y0, x1, y1 = (int(round(v)) for v in faces.box_in_crop(face.box, face.crop_box, size))
        inside[row, max(0, y0):y1, max(0, x0):x1] = True
    assert fake_pixels.mean() > 0.02  # the fake's face is marked at all
    assert (fake_pixels & inside).sum() / fake_pixels.sum() > 0.8


def test_detect_and_evaluate_default_to_the_shipped_detector():
    from unet_industrial import evaluation

    assert detection.DetectConfig().run_dir == run_files.SHIPPED_RUN_DIR
    assert evaluation.EvalConfig(data_pattern="x").run_dir == run_files.SHIPPED_RUN_DIR
    # Its reports never go into the installed package.
    assert evaluation.EvalConfig(data_pattern="x").output_dir == evaluation.SHIPPED_REPORTS
    with open(os.path.join(run_files.SHIPPED_RUN_DIR, "config.json")) as f:
        stored = json.load(f)[recipe.RECIPE_KEY]
    assert recipe.CropRecipe(**stored).image_size % 16 == 0
