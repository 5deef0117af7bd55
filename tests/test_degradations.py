"""unet_industrial.evaluation.degradations: parsing NAME:VALUE and what each degradation does to a crop."""

import numpy as np
import pytest

from unet_industrial.config import ConfigError
from unet_industrial.evaluation import degradations

SIZE = 32


def _batch(pixels):
    """One stored crop as a batch of uint8 crops."""
    return np.asarray(pixels, np.uint8)[None]


def _pixels(crops):
    return crops[0].astype(np.float64)


def _checkerboard():
    """Alternate pixels 64 and 192: all detail, at the finest scale."""
    board = (np.indices((SIZE, SIZE)).sum(axis=0) % 2) * 128 + 64
    return np.repeat(board[..., None], 3, axis=-1)


@pytest.mark.parametrize("spec, name, value, tag", [
    ("blur:0.7", "blur", 0.7, "blur0.7"),
    ("noise:4", "noise", 4.0, "noise4"),
    ("jpeg:50", "jpeg", 50, "jpeg50"),
    ("downscale:2", "downscale", 2.0, "downscale2"),
])
def test_a_spec_parses_to_its_name_value_and_folder_tag(spec, name, value, tag):
    degradation = degradations.parse(spec)
    assert (degradation.name, degradation.value, degradation.tag) == (name, value, tag)


@pytest.mark.parametrize("spec, message", [
    ("sharpen:1", "--degrade='sharpen:1': write NAME:VALUE with NAME one of blur, noise, jpeg, downscale"),
    ("blur", "--degrade='blur': '' is not a number"),
    ("blur:soft", "--degrade='blur:soft': 'soft' is not a number"),
    ("blur:0", "--degrade='blur:0': the blur value must be a number from 0.1 to 10"),
    ("jpeg:50.5", "--degrade='jpeg:50.5': the jpeg value must be a whole number from 1 to 100"),
    ("downscale:1", "--degrade='downscale:1': the downscale value must be a number from 1.1 to 8"),
])
def test_a_bad_spec_is_one_message_naming_the_flag(spec, message):
    with pytest.raises(ConfigError) as raised:
        degradations.parse(spec)
    assert str(raised.value) == message


@pytest.mark.parametrize("spec", ["blur:1", "noise:8", "jpeg:30", "downscale:2"])
def test_crops_keep_their_shape_and_type(spec):
    crops = _batch(_checkerboard())
    degraded = degradations.apply(crops, degradations.parse(spec), np.random.default_rng(0))
    assert degraded.shape == crops.shape and degraded.dtype == np.uint8
    assert not np.array_equal(degraded, crops)


@pytest.mark.parametrize("spec", ["blur:1", "downscale:2"])
def test_blur_and_downscaling_flatten_the_finest_detail_and_keep_the_mean(spec):
    degraded = _pixels(degradations.apply(_batch(_checkerboard()), degradations.parse(spec),
                                          np.random.default_rng(0)))
    inside = degraded[4:-4, 4:-4]  # away from the border, whose padding differs between the two
    assert inside.std() < 5.0  # from 64 (the checkerboard's)
    assert inside.mean() == pytest.approx(128.0, abs=1.0)


def test_noise_has_the_stated_grey_level_deviation_and_its_seed_repeats_it():
    flat = np.full((SIZE, SIZE, 3), 128)
    first = _pixels(degradations.apply(_batch(flat), degradations.parse("noise:8"),
                                       np.random.default_rng(0)))
    again = _pixels(degradations.apply(_batch(flat), degradations.parse("noise:8"),
                                       np.random.default_rng(0)))
    np.testing.assert_array_equal(first, again)
    assert (first - 128).std() == pytest.approx(8.0, rel=0.1)
    assert abs((first - 128).mean()) < 0.5


def test_lower_jpeg_quality_changes_a_crop_more():
    rng = np.random.default_rng(1)
    crop = np.clip(_checkerboard() + rng.integers(-30, 31, (SIZE, SIZE, 3)), 0, 255)
    errors = {quality: np.abs(_pixels(degradations.apply(_batch(crop),
                                                         degradations.parse(f"jpeg:{quality}"),
                                                         rng)) - crop).mean()
              for quality in (95, 50, 10)}
    assert 0 < errors[95] < errors[50] < errors[10]
