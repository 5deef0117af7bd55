"""The tf.data reader: TFRecord shards of (face crop, fake-pixel mask) to model batches."""

import tensorflow as tf

from data_pipeline import schema


def list_files(file_pattern):
    """Sorted files matching a glob pattern (local or any tf.io.gfile filesystem).

    Raises:
      FileNotFoundError: naming the pattern, when nothing matches.
    """
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord file matches {file_pattern!r}")
    return files


def scale_image(image):
    """uint8 pixels in [0, 255] to the model's input range [-1, 1] (as the reference)."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def decode_record(serialized, image_size, channels):
    """Decodes one record to (image in [-1, 1], mask in {0, 1}), both float32.

    Image and mask are resized to `image_size` when stored at another size:
    bilinear for the image, nearest for the mask so it stays binary.
    """
    features = schema.parse_example(serialized)
    image = tf.io.decode_image(features[schema.IMAGE], channels=channels, expand_animations=False)
    mask = tf.io.decode_png(features[schema.MASK], channels=1)
    size = [image_size, image_size]
    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask, size, method="nearest")
    image = tf.ensure_shape(scale_image(tf.clip_by_value(image, 0.0, 255.0)), [image_size, image_size, channels])
    mask = tf.ensure_shape(tf.cast(mask > 0, tf.float32), [image_size, image_size, 1])
    return image, mask


def augment(image, mask, seed):
    """The reference's augmentation: random flips and a random multiple of 90° rotation.

    Image and mask move together. Stateless ops with a per-example seed keep
    a run reproducible whatever the number of parallel map calls.
    """
    both = tf.concat([image, mask], axis=-1)
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    both = tf.image.stateless_random_flip_left_right(both, seeds[0])
    both = tf.image.stateless_random_flip_up_down(both, seeds[1])
    quarter_turns = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=4, dtype=tf.int32)
    both = tf.image.rot90(both, quarter_turns)
    channels = image.shape[-1]
    return both[..., :channels], both[..., channels:]


def make_dataset(file_pattern, *, image_size, channels, batch_size, training,
                 augment_data=True, seed=0, shuffle_buffer=2048, max_batches=0):
    """Builds the input pipeline for training or evaluation.

    Args:
      file_pattern: glob of TFRecord shards written with `schema`.
      image_size: height and width fed to the model.
      channels: 1 (grayscale) or 3 (RGB).
      batch_size: examples per batch.
      training: shuffle, repeat forever, augment and drop the last partial
        batch; else one pass in file order, keeping the last partial batch.
      augment_data: flips and rot90 when training.
      seed: seeds shuffling and augmentation.
      shuffle_buffer: examples held for shuffling.
      max_batches: if positive, stop after this many batches.

    Returns:
      A `tf.data.Dataset` of (images, masks) batches: float32, shapes
      (batch, image_size, image_size, channels) and (batch, ..., 1).
    """
    files = list_files(file_pattern)
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=autotune,
        deterministic=True)
    if training:
        # Shuffle before repeat so that each pass sees every example once.
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.map(lambda record: decode_record(record, image_size, channels),
                          num_parallel_calls=autotune)
    if training and augment_data:
        # One independent stateless seed per example, drawn from the run's seed.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda pair, example_seed: augment(*pair, example_seed), num_parallel_calls=autotune)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if max_batches:
        dataset = dataset.take(max_batches)
    return dataset.prefetch(autotune)
