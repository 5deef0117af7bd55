"""Self-blended pseudo-fakes: what one looks like, and how the reader mixes them into training."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline import reader, schema
from data_pipeline.reader import pseudo_fakes
from unet_industrial import config as config_lib

SIZE = 96


def _face(seed=0):
    """A smooth bright oval on a darker textured backdrop, in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.1, 0.3, (SIZE, SIZE, 3))
    cv2.ellipse(image, (SIZE // 2, SIZE // 2), (SIZE // 3, SIZE // 2 - 8), 0, 0, 360, (0.8, 0.6, 0.5), -1)
    return tf.constant(image + rng.normal(0, 0.02, image.shape), tf.float32)


def _seed(*values):
    return tf.constant(values, tf.int64)


def test_choices_agree_with_the_configs_copy():
    assert config_lib.PSEUDO_FAKES == pseudo_fakes.PSEUDO_FAKES
    assert config_lib.AUGMENTATIONS == reader.AUGMENTATIONS


@pytest.mark.parametrize("seed", range(6))
def test_blend_region_is_one_face_sized_blob_around_the_crop_centre(seed):
    region = pseudo_fakes.blend_region(SIZE, _seed(seed, 1)).numpy()[..., 0]
    assert set(np.unique(region)) == {0.0, 1.0}
    assert 0.12 < region.mean() < 0.55
    count, _ = cv2.connectedComponents(region.astype(np.uint8))
    assert count == 2  # the background and one region
    rows, columns = np.nonzero(region)
    assert abs(columns.mean() / SIZE - 0.5) < 0.08 and abs(rows.mean() / SIZE - 0.52) < 0.08


@pytest.mark.parametrize("seed", range(4))
def test_a_pseudo_fake_changes_its_mask_and_leaves_the_far_background_untouched(seed):
    image = _face()
    blended, mask = (t.numpy() for t in pseudo_fakes.self_blend(image, _seed(seed, 7)))
    assert blended.shape == image.shape and mask.shape == (SIZE, SIZE, 1)
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert 0.0 <= blended.min() and blended.max() <= 1.0
    change = np.abs(blended - image.numpy()).max(axis=-1)
    inside = mask[..., 0] > 0
    assert change[inside].mean() > 0.01
    # Beyond the widest blur kernel (a square of 3 sigma each side, sigma up to
    # 5 % of the crop) nothing is blended: what changes there is float rounding.
    distance = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_C, 3)
    far = distance > np.ceil(3 * 0.05 * SIZE) + 1
    assert far.sum() > 100
    np.testing.assert_allclose(change[far], 0.0, atol=1e-6)


def test_a_pseudo_fake_is_a_function_of_its_seed():
    image = _face()
    first, first_mask = pseudo_fakes.self_blend(image, _seed(1, 2))
    again, again_mask = pseudo_fakes.self_blend(image, _seed(1, 2))
    other, _ = pseudo_fakes.self_blend(image, _seed(2, 2))
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    np.testing.assert_array_equal(first_mask.numpy(), again_mask.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())


def test_only_real_crops_are_replaced():
    image, empty = _face(), tf.zeros((SIZE, SIZE, 1))
    fake_mask = tf.ones((SIZE, SIZE, 1))
    for seed in range(5):
        fake, real = tf.constant(1, tf.int64), tf.constant(0, tf.int64)
        kept_fake = pseudo_fakes.replace_reals(image, fake_mask, fake, _seed(seed, 0), 1.0)
        np.testing.assert_array_equal(kept_fake[0].numpy(), image.numpy())
        np.testing.assert_array_equal(kept_fake[1].numpy(), fake_mask.numpy())
        kept_real = pseudo_fakes.replace_reals(image, empty, real, _seed(seed, 0), 0.0)
        np.testing.assert_array_equal(kept_real[0].numpy(), image.numpy())
        replaced = pseudo_fakes.replace_reals(image, empty, real, _seed(seed, 0), 1.0)
        assert replaced[1].numpy().max() == 1.0


def _write_reals(path, count, size=32):
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(count):
            image = rng.integers(40, 200, (size, size, 3), dtype=np.uint8)
            writer.write(schema.serialize_example({
                schema.IMAGE: cv2.imencode(".png", image)[1].tobytes(),
                schema.MASK: cv2.imencode(".png", np.zeros((size, size), np.uint8))[1].tobytes(),
                schema.LABEL: 0}))
    return path


def _training_masks(pattern, batches=4, **options):
    dataset = reader.make_dataset(pattern, image_size=32, channels=3, batch_size=8, training=True,
                                  shuffle_buffer=16, seed=5, **options)
    return [(images.numpy(), masks.numpy()) for images, masks in dataset.take(batches)]


def test_the_reader_mixes_pseudo_fakes_into_a_real_only_folder_at_the_ratio(tmp_path):
    pattern = _write_reals(str(tmp_path / "train-00000-of-00001.tfrecord"), 16)
    masked = np.concatenate([masks.reshape(8, -1).max(1) for _, masks in _training_masks(
        pattern, batches=32, pseudo_fakes="sbi", pseudo_fake_ratio=0.25)])
    assert 0.15 < masked.mean() < 0.35  # 256 draws at probability 0.25
    every = _training_masks(pattern, pseudo_fakes="sbi", pseudo_fake_ratio=1.0)
    assert all(masks.reshape(8, -1).max(1).min() == 1.0 for _, masks in every)


def test_pseudo_fakes_draw_their_own_seeds_and_leave_the_augmentation_as_it_was(tmp_path):
    # A ratio of 0 replaces nothing, so the stream must equal the plain one exactly.
    pattern = _write_reals(str(tmp_path / "train-00000-of-00001.tfrecord"), 16)
    plain = _training_masks(pattern, augmentation="faces")
    with_none_replaced = _training_masks(pattern, augmentation="faces", pseudo_fakes="sbi",
                                         pseudo_fake_ratio=0.0)
    for (images, masks), (same_images, same_masks) in zip(plain, with_none_replaced):
        np.testing.assert_array_equal(images, same_images)
        np.testing.assert_array_equal(masks, same_masks)


@pytest.mark.parametrize("options, message", [
    ({"pseudo_fakes": "gan"}, "unknown pseudo_fakes 'gan'"),
    ({"pseudo_fakes": "sbi", "pseudo_fake_ratio": -0.1}, "must lie in \\[0, 1\\], got -0.1"),
])
def test_bad_pseudo_fake_options_are_refused(tmp_path, options, message):
    pattern = _write_reals(str(tmp_path / "train-00000-of-00001.tfrecord"), 2)
    with pytest.raises(ValueError, match=message):
        reader.make_dataset(pattern, image_size=32, channels=3, batch_size=2, training=True, **options)
