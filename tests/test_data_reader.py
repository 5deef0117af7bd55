"""The TFRecord schema and the tf.data reader on small shards written through it."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline import reader, schema

from conftest import write_records, write_shards


def test_schema_round_trip():
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    fields = {
        schema.IMAGE: cv2.imencode(".png", image)[1].tobytes(), schema.IMAGE_FORMAT: "png",
        schema.HEIGHT: 8, schema.WIDTH: 8, schema.MASK: cv2.imencode(".png", np.ones((8, 8), np.uint8))[1].tobytes(),
        schema.LABEL: 1, schema.VIDEO_ID: "000_003", schema.ORIGINAL_ID: "000", schema.IDENTITY: "id7",
        schema.METHOD: "Deepfakes", schema.COMPRESSION: "c23", schema.FRAME_INDEX: 12,
        schema.BOX: [1.5, 2.0, 30.0, 40.5], schema.MASK_AREA: 0.25,
    }
    parsed = schema.parse_example(schema.serialize_example(fields))
    assert set(parsed) == set(schema.FEATURES)
    assert parsed[schema.VIDEO_ID].numpy() == b"000_003"
    assert parsed[schema.METHOD].numpy() == b"Deepfakes"
    assert int(parsed[schema.FRAME_INDEX]) == 12
    np.testing.assert_allclose(parsed[schema.BOX].numpy(), [1.5, 2.0, 30.0, 40.5])
    assert float(parsed[schema.MASK_AREA]) == pytest.approx(0.25)
    decoded = tf.io.decode_png(parsed[schema.IMAGE]).numpy()
    # OpenCV encodes its arrays as BGR; the PNG, and so TensorFlow, holds RGB.
    np.testing.assert_array_equal(decoded, image[..., ::-1])


def test_schema_refuses_unknown_keys_and_missing_images():
    with pytest.raises(KeyError, match="not in the TFRecord schema"):
        schema.serialize_example({schema.IMAGE: b"", schema.MASK: b"", "image/colour": b"x"})
    with pytest.raises(KeyError, match="needs"):
        schema.serialize_example({schema.IMAGE: b""})
    with pytest.raises(ValueError, match="4 values"):
        schema.serialize_example({schema.IMAGE: b"", schema.MASK: b"", schema.BOX: [1.0, 2.0]})


def test_pattern_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "train-*.tfrecord")
    with pytest.raises(FileNotFoundError, match="train-\\*.tfrecord"):
        reader.make_dataset(pattern, image_size=32, channels=3, batch_size=2, training=False)


def test_evaluation_pass_reads_every_example_once(tiny_tfrecords):
    _, eval_pattern = tiny_tfrecords
    batches = list(reader.make_dataset(eval_pattern, image_size=32, channels=3, batch_size=3, training=False))
    assert [len(images) for images, _ in batches] == [3, 3, 2]  # the partial batch is kept
    images, masks = (np.concatenate(part) for part in zip(*batches))
    assert images.dtype == np.float32 and images.shape == (8, 32, 32, 3)
    assert masks.shape == (8, 32, 32, 1)
    assert -1.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks)) <= {0.0, 1.0}
    # Half the examples are fakes with a mask, half real with an empty one.
    assert sorted(masks.reshape(8, -1).max(1)) == [0.0] * 4 + [1.0] * 4


def test_every_reader_pipeline_runs_without_the_autotuning_thread(tiny_tfrecords):
    # With it, dropping an iterator waited up to a minute (reader.without_autotuning).
    train_pattern, eval_pattern = tiny_tfrecords
    common = {"image_size": 32, "channels": 3, "batch_size": 2}
    pipelines = {
        "training": reader.make_dataset(train_pattern, training=True, balance_classes=True, **common),
        "one worker's files": reader.make_dataset(train_pattern, training=True, worker=(0, 1), **common),
        "evaluation": reader.make_dataset(eval_pattern, training=False, **common),
        "evaluation shared among workers": reader.share_examples_among_workers(
            reader.make_dataset(eval_pattern, training=False, **common)),
        "prediction": reader.make_prediction_dataset(eval_pattern, **common),
    }
    assert {name: dataset.options().autotune.enabled for name, dataset in pipelines.items()} == dict.fromkeys(
        pipelines, False)


def test_resizing_keeps_masks_binary(tiny_tfrecords):
    _, eval_pattern = tiny_tfrecords
    images, masks = next(iter(reader.make_dataset(eval_pattern, image_size=64, channels=1, batch_size=8,
                                                  training=False)))
    assert images.shape == (8, 64, 64, 1) and masks.shape == (8, 64, 64, 1)
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}


def test_training_stream_is_infinite_augmented_aligned_and_seeded(tiny_tfrecords):
    train_pattern, _ = tiny_tfrecords

    def first_batches(seed, n=8):
        dataset = reader.make_dataset(train_pattern, image_size=32, channels=3, batch_size=4, training=True,
                                      seed=seed, shuffle_buffer=64)
        return [(images.numpy(), masks.numpy()) for images, masks in dataset.take(n)]

    batches = first_batches(seed=3)
    assert len(batches) == 8  # 32 examples from 24: the stream repeats
    assert all(images.shape == (4, 32, 32, 3) for images, _ in batches)
    images = np.concatenate([b[0] for b in batches])
    masks = np.concatenate([b[1] for b in batches])
    # The fake patch is 100 grey levels brighter: after flips and rotations it
    # must still sit under its mask.
    for image, mask in zip(images, masks[..., 0]):
        if mask.any() and not mask.all():
            assert image[mask > 0].mean() > image[mask == 0].mean() + 0.5
    for (a_images, a_masks), (b_images, b_masks) in zip(batches, first_batches(seed=3)):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_masks, b_masks)
    different = first_batches(seed=4)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(batches, different))


def test_reference_augmentation_flips_and_rotates_image_and_mask_together():
    image = tf.reshape(tf.range(16, dtype=tf.float32), [4, 4, 1])
    mask = tf.cast(image > 7, tf.float32)
    outputs = set()
    for seed in range(40):
        augmented_image, augmented_mask = reader.augment(image, mask, tf.constant([seed, 0], tf.int64),
                                                         "reference")
        np.testing.assert_array_equal(augmented_mask.numpy(), (augmented_image.numpy() > 7).astype(np.float32))
        outputs.add(augmented_image.numpy().tobytes())
    assert len(outputs) == 8  # the 8 symmetries of the square all occur


def test_shard_names_follow_the_convention(tmp_path):
    pattern = write_shards(str(tmp_path), "val", 4, num_shards=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val-00000-of-00002.tfrecord",
                                                          "val-00001-of-00002.tfrecord"]
    assert len(reader.list_files(pattern)) == 2


def _patch_example(size=64):
    image = np.full((size, size, 3), 0.3, np.float32)
    image[20:44, 16:40] = 0.9
    mask = np.zeros((size, size, 1), np.float32)
    mask[20:44, 16:40] = 1.0
    return tf.constant(image), tf.constant(mask)


def test_faces_augmentation_moves_the_mask_with_the_image_and_changes_only_the_image_photometrically():
    image, mask = _patch_example()
    changed_geometry = 0
    for seed in range(12):
        out_image, out_mask = (t.numpy() for t in reader.augment(image, mask, tf.constant([seed, 1], tf.int64)))
        assert out_image.shape == (64, 64, 3) and out_mask.shape == (64, 64, 1)
        assert 0.0 <= out_image.min() and out_image.max() <= 1.0
        assert set(np.unique(out_mask)) <= {0.0, 1.0}
        inside, outside = out_mask[..., 0] > 0, out_mask[..., 0] == 0
        # The bright patch is still where the mask is (photometric changes are mild).
        assert out_image[inside].mean() > out_image[outside].mean() + 0.3
        changed_geometry += not np.array_equal(out_mask, mask.numpy())
    assert changed_geometry >= 10  # rotation/scale/shift almost always move the mask


def test_faces_augmentation_is_a_function_of_the_seed():
    image, mask = _patch_example()
    first = reader.augment(image, mask, tf.constant([5, 5], tf.int64))
    again = reader.augment(image, mask, tf.constant([5, 5], tf.int64))
    other = reader.augment(image, mask, tf.constant([6, 5], tf.int64))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def _labels_drawn(pattern, batches=16):
    dataset = reader.make_dataset(pattern, image_size=32, channels=3, batch_size=8, training=True,
                                  augmentation="none", balance_classes=True, shuffle_buffer=16)
    return np.concatenate([masks.numpy().reshape(8, -1).max(1) for _, masks in dataset.take(batches)])


def test_balancing_draws_real_and_fake_equally_from_a_skewed_folder(tmp_path):
    # 3 fakes for every real: write_shards makes every even index fake; take the first of each 4 as real.
    import cv2

    from data_pipeline import schema

    rng = np.random.default_rng(0)
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(40):
            fake = index % 4 != 0
            mask = np.zeros((32, 32), np.uint8)
            mask[4:12, 4:12] = fake
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            writer.write(schema.serialize_example({
                schema.IMAGE: cv2.imencode(".png", image)[1].tobytes(),
                schema.MASK: cv2.imencode(".png", mask)[1].tobytes(), schema.LABEL: int(fake)}))
    fake_share = _labels_drawn(path).mean()
    assert 0.35 < fake_share < 0.65  # 0.75 without balancing


def test_balancing_a_single_class_folder_does_not_stall(tmp_path):
    one_class = write_shards(str(tmp_path), "train", 1, num_shards=1)  # a single fake example
    assert _labels_drawn(one_class, batches=2).tolist() == [1.0] * 16


def test_method_and_compression_selections_keep_every_real_and_only_the_chosen_fakes(tmp_path):
    records = write_records(str(tmp_path / "records"), methods=("Deepfakes", "FaceSwap"),
                            compressions=("c23", "c40"))

    def kept(**selection):
        dataset = reader.make_dataset(f"{records}/train-*.tfrecord", image_size=32, channels=3, batch_size=64,
                                      training=False, **selection)
        masks = np.concatenate([masks.numpy() for _, masks in dataset])
        return len(masks), int((masks.reshape(len(masks), -1).max(1) > 0).sum())

    # Per compression: 4 real and 4 fake crops of each method.
    assert kept() == (24, 16)
    assert kept(methods=("FaceSwap",)) == (16, 8)
    assert kept(compressions=("c40",)) == (12, 8)
    assert kept(methods=("Deepfakes",), compressions=("c23",)) == (8, 4)
