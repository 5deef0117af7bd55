"""One crop recipe from prepare to detect, and one transform from a stored crop to the model's input."""

import json
import os

import cv2
import numpy as np
import pytest
import skimage.data

from conftest import read_records, run_module, write_video
from data_pipeline import extract, model_input, recipe, schema, tracking

# Not prepare's defaults, so that a stage that assumed them would cut other pixels.
CROP_SCALE, IMAGE_SIZE, FRAMES = 1.0, 48, 3


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """An FF++-layout folder holding one real video of a face (the astronaut), prepared at 48 px, x1.0."""
    root = tmp_path_factory.mktemp("recipe")
    videos = root / "data" / "original_sequences" / "youtube" / "c23" / "videos"
    videos.mkdir(parents=True)
    face = skimage.data.astronaut()[:320, 64:384]
    # A slow pan, so that the face box moves between the sampled frames.
    frames = [np.ascontiguousarray(np.roll(face, 4 * i, axis=1)) for i in range(8)]
    video_path = write_video(videos / "000.mp4", frames)
    out = root / "records"
    result = run_module("data_pipeline.prepare", "--layout=ffpp", f"--data_dir={root / 'data'}",
                        f"--out_dir={out}", f"--frames_per_video={FRAMES}", f"--image_size={IMAGE_SIZE}",
                        f"--crop_scale={CROP_SCALE}", timeout=300)
    assert result.returncode == 0, result.stderr
    return video_path, str(out)


def _decoded(encoded):
    """A stored PNG crop as RGB uint8."""
    return cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_prepare_records_its_crop_recipe_in_the_manifest(prepared):
    _, out = prepared
    with open(os.path.join(out, "manifest.json")) as f:
        stored = json.load(f)[recipe.RECIPE_KEY]
    assert stored == {"image_size": IMAGE_SIZE, "crop_scale": CROP_SCALE, "frames_per_video": FRAMES,
                      "frame_stride": 0, "detect_every": 4, "detection_max_side": tracking.DETECTION_MAX_SIDE}
    assert recipe.from_manifest(os.path.join(out, "manifest.json")) == recipe.CropRecipe(**stored)


def test_detect_cuts_what_prepare_cut_bit_for_bit(prepared):
    from unet_industrial import detection

    video_path, out = prepared
    crop_recipe = recipe.from_manifest(os.path.join(out, "manifest.json"))
    cut = detection.cut_faces(video_path, crop_recipe, extract.StageTimer())
    records = {int(r[schema.FRAME_INDEX]): r for r in read_records(out)}
    assert sorted(records) == cut.indices and len(records) == FRAMES
    main_faces = [(index, face, crop) for (index, face), crop in zip(cut.owners, cut.crops)
                  if face.number == 0]
    assert len(main_faces) == FRAMES
    for index, face, crop in main_faces:
        record = records[index]
        assert tuple(record[schema.BOX]) == pytest.approx(face.crop_box)
        stored = _decoded(record[schema.IMAGE])
        assert crop.shape == stored.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        np.testing.assert_array_equal(crop, stored)


@pytest.mark.parametrize("model_size, channels", [(IMAGE_SIZE, 3), (32, 3), (64, 1)])
def test_the_reader_and_inference_feed_a_stored_crop_alike(prepared, model_size, channels):
    """Stored at 48 px, fed at 48 (no resize), 32 (down) and 64 (up, one channel)."""
    from data_pipeline import reader

    _, out = prepared
    batch = next(reader.make_prediction_dataset(os.path.join(out, "train-*.tfrecord"), image_size=model_size,
                                                channels=channels, batch_size=FRAMES).as_numpy_iterator())
    crops = np.stack([_decoded(record[schema.IMAGE]) for record in read_records(out)])
    fed = np.asarray(model_input.to_model_input(crops, model_size, channels))
    assert fed.shape == batch["image"].shape == (FRAMES, model_size, model_size, channels)
    np.testing.assert_allclose(fed, batch["image"], atol=1e-6)
    assert -1.0 <= fed.min() < fed.max() <= 1.0
    if model_size == IMAGE_SIZE:
        np.testing.assert_allclose(fed, crops / 127.5 - 1.0, atol=1e-6)
