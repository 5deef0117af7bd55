"""The tf.data reader: TFRecord shards of (face crop, fake-pixel mask) to model batches.

file pattern -> interleave -> parse -> (balance real/fake) -> shuffle -> repeat
-> decode -> joint augmentation of image and mask -> batch -> prefetch,
with AUTOTUNE parallelism throughout (one call per core: autotuning is off).

A shard that cannot be read (not a TFRecord file, cut short, a record
without its image or with an image that does not decode) makes TensorFlow
raise an error that does not name the file; `naming_bad_shards` turns it
into a `RecordError` that does.
"""

import contextlib
import math
import re

import tensorflow as tf
from absl import logging

from data_pipeline import model_input, schema
from data_pipeline.reader import image_ops
from data_pipeline.reader import pseudo_fakes as pseudo_fakes_lib
from data_pipeline.reader.image_ops import uniform

AUGMENTATIONS = ("faces", "reference", "none")
# Ranges of the "faces" policy (small, so a face stays a face).
_MAX_ROTATION_DEGREES = 10.0
_MAX_SCALE_CHANGE = 0.1
_MAX_SHIFT_FRACTION = 0.06
# The DFDC winner re-compressed training images at JPEG quality 60-100.
_JPEG_QUALITY = (60, 100)
_BLUR_PROBABILITY = 0.25
_MAX_NOISE_STDDEV = 0.03
# Pseudo-fakes draw from a random stream of their own, so that turning them
# on leaves the augmentation's seeds as they were.
_PSEUDO_FAKE_SEED_OFFSET = 1_000_003


# What TensorFlow raises while reading a shard: DataLossError for bytes that
# are not TFRecord framing (or a checksum that fails), InvalidArgumentError
# for a record that does not parse or whose image or mask does not decode.
_READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError)


class RecordError(ValueError):
    """A TFRecord shard that cannot be read, parsed or decoded; the message names the shard."""


def list_files(file_pattern):
    """Sorted files matching a glob pattern (local or any tf.io.gfile filesystem).

    Raises:
      FileNotFoundError: naming the pattern, when nothing matches.
    """
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord file matches {file_pattern!r}")
    return files


def decode_crop(features):
    """The stored face crop of parsed features, RGB uint8 at its stored size."""
    return tf.io.decode_image(features[schema.IMAGE], channels=3, expand_animations=False)


def decode_record(features, image_size, channels, crop=None):
    """Decodes parsed features to (image in [0, 1], mask in {0, 1}), both float32.

    The image goes through `model_input.to_unit_range` (resized when stored
    at another size, as inference resizes a crop cut at the recipe's size);
    the mask is resized nearest, so it stays binary. `crop` is the stored
    crop where the caller has decoded it already (`decode_crop`).
    """
    crop = decode_crop(features) if crop is None else crop
    image = model_input.to_unit_range(crop, image_size, channels)
    mask = tf.io.decode_png(features[schema.MASK], channels=1)
    mask = tf.cast(tf.image.resize(mask, [image_size, image_size], method="nearest") > 0, tf.float32)
    return (tf.ensure_shape(image, [image_size, image_size, channels]),
            tf.ensure_shape(mask, [image_size, image_size, 1]))


def _affine(image, mask, seed):
    """One random small rotation, scale and shift, applied to image and mask alike."""
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    size = tf.cast(tf.shape(image)[0], tf.float32)
    angle = uniform(seeds[0], -1.0, 1.0) * _MAX_ROTATION_DEGREES * math.pi / 180.0
    scale = 1.0 + uniform(seeds[1], -_MAX_SCALE_CHANGE, _MAX_SCALE_CHANGE)
    shift_x = uniform(seeds[2], -_MAX_SHIFT_FRACTION, _MAX_SHIFT_FRACTION) * size
    shift_y = uniform(seeds[3], -_MAX_SHIFT_FRACTION, _MAX_SHIFT_FRACTION) * size
    transform = image_ops.centred_affine(size, angle, scale, shift_x, shift_y)
    return image_ops.warp(image, transform, "BILINEAR"), image_ops.warp(mask, transform, "NEAREST")


def _photometric(image, seed):
    """Colour jitter, occasional blur, sensor noise and JPEG re-compression (image only)."""
    seeds = tf.random.experimental.stateless_split(seed, num=8)
    image = tf.image.stateless_random_brightness(image, 0.1, seeds[0])
    image = tf.image.stateless_random_contrast(image, 0.8, 1.2, seeds[1])
    if image.shape[-1] == 3:
        image = tf.image.stateless_random_saturation(image, 0.8, 1.2, seeds[2])
        image = tf.image.stateless_random_hue(image, 0.03, seeds[3])
    image = tf.clip_by_value(image, 0.0, 1.0)
    blur = uniform(seeds[4], 0.0, 1.0) < _BLUR_PROBABILITY
    image = tf.cond(blur, lambda: image_ops.gaussian_blur(image, uniform(seeds[5], 0.5, 1.2), radius=2),
                    lambda: image)
    noise = tf.random.stateless_normal(tf.shape(image), seeds[6]) * uniform(seeds[7], 0.0, _MAX_NOISE_STDDEV)
    image = tf.clip_by_value(image + noise, 0.0, 1.0)
    jpeg_seed = tf.random.experimental.stateless_split(seeds[7], num=1)[0]
    return tf.image.stateless_random_jpeg_quality(image, *_JPEG_QUALITY, seed=jpeg_seed)


def augment(image, mask, seed, policy="faces"):
    """Random joint augmentation of an (image in [0, 1], mask) pair.

    Policies:
      faces: horizontal flip, small rotation / scale / shift (mask moved with
        the image), colour jitter, occasional blur, noise and JPEG
        re-compression at quality 60-100 (as the DFDC winner); photometric
        changes touch the image only, since they do not move fake pixels.
      reference: NVIDIA's flips and a random multiple of 90 degrees.
      none: unchanged.

    Stateless ops with a per-example seed keep a run reproducible whatever
    the number of parallel map calls.
    """
    if policy == "none":
        return image, mask
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    both = tf.concat([image, mask], axis=-1)
    channels = image.shape[-1]
    both = tf.image.stateless_random_flip_left_right(both, seeds[0])
    if policy == "reference":
        both = tf.image.stateless_random_flip_up_down(both, seeds[1])
        quarter_turns = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=4, dtype=tf.int32)
        both = tf.image.rot90(both, quarter_turns)
        return both[..., :channels], both[..., channels:]
    image, mask = _affine(both[..., :channels], both[..., channels:], seeds[1])
    return tf.ensure_shape(_photometric(image, seeds[2]), image.shape), mask


def _selected(features, methods, compressions):
    """Whether a parsed example is a real one or a fake of `methods`, and of `compressions`."""
    keep = tf.constant(True)
    if methods:
        is_real = features[schema.LABEL] <= 0
        keep = tf.logical_or(is_real, tf.reduce_any(tf.equal(features[schema.METHOD], list(methods))))
    if compressions:
        keep = tf.logical_and(keep, tf.reduce_any(tf.equal(features[schema.COMPRESSION], list(compressions))))
    return keep


def _balanced_repeat(dataset, seed):
    """Repeats real and fake examples apart and draws from each with probability 1/2.

    A class with no example is simply absent (repeating an empty dataset
    yields nothing), so a one-class folder cannot stall the stream.
    """
    fakes = dataset.filter(lambda features: features[schema.LABEL] > 0).repeat()
    reals = dataset.filter(lambda features: features[schema.LABEL] <= 0).repeat()
    return tf.data.Dataset.sample_from_datasets([reals, fakes], weights=[0.5, 0.5], seed=seed)


def make_dataset(file_pattern, *, image_size, channels, batch_size, training, augmentation="faces",
                 balance_classes=False, pseudo_fakes="none", pseudo_fake_ratio=0.5, methods=(),
                 compressions=(), seed=0, shuffle_buffer=2048, max_batches=0, worker=None):
    """Builds the input pipeline for training or evaluation.

    Args:
      file_pattern: glob of TFRecord shards written with `schema`.
      image_size: height and width fed to the model.
      channels: 1 (grayscale) or 3 (RGB).
      batch_size: examples per batch.
      training: shuffle, repeat forever, augment and drop the last partial
        batch; else one pass in file order, keeping the last partial batch.
      augmentation: one of AUGMENTATIONS, used when training.
      balance_classes: when training, draw real and fake examples 50/50.
      pseudo_fakes: one of pseudo_fakes.PSEUDO_FAKES; "sbi" replaces real
        training crops by self-blended pseudo-fakes (`pseudo_fakes.self_blend`)
        before augmentation.
      pseudo_fake_ratio: the probability that a real training crop is replaced.
      methods: if given, keep only the fakes of these manipulation methods
        (and every real example), as the leave-one-method-out protocol trains.
      compressions: if given, keep only examples (real or fake) of these
        compressions ("c0", "c23", "c40").
      seed: seeds shuffling, balancing and augmentation.
      shuffle_buffer: examples held for shuffling.
      max_batches: if positive, stop after this many batches.
      worker: (index, count) of a process of a multi-worker tf.distribute
        run: read only files index, index + count, ... (whole files, so no
        two workers read the same example) and turn tf.distribute's own
        sharding off. Its tf.data auto-sharding by file cannot do this: it
        finds no file source behind the augmentation's random seeds.

    Returns:
      A `tf.data.Dataset` of (images, masks) batches: images float32 in
      [-1, 1] shaped (batch, image_size, image_size, channels), masks float32
      in {0, 1} shaped (batch, image_size, image_size, 1). Label-only fakes
      (schema.MASK_UNKNOWN) are left out: their masks are not known.

    Raises:
      FileNotFoundError: naming the pattern, when nothing matches, or when
        fewer files match than there are workers.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augmentation!r}; expected one of {AUGMENTATIONS}")
    if pseudo_fakes not in pseudo_fakes_lib.PSEUDO_FAKES:
        raise ValueError(
            f"unknown pseudo_fakes {pseudo_fakes!r}; expected one of {pseudo_fakes_lib.PSEUDO_FAKES}")
    if not 0.0 <= pseudo_fake_ratio <= 1.0:
        raise ValueError(f"pseudo_fake_ratio must lie in [0, 1], got {pseudo_fake_ratio}")
    files = list_files(file_pattern)
    if worker is not None:
        index, count = worker
        if len(files) < count:
            raise FileNotFoundError(
                f"{file_pattern!r} matches {len(files)} file(s), fewer than the {count} workers, each of "
                f"which reads whole files: write at least {count} shards (data_pipeline.prepare "
                "with a smaller --examples_per_shard)")
        files = files[index::count]
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                                 num_parallel_calls=autotune, deterministic=True)
    dataset = dataset.map(schema.parse_example, num_parallel_calls=autotune)
    # A label-only fake's all-zero mask would teach that its face is real.
    dataset = dataset.filter(lambda features: features[schema.MASK_UNKNOWN] == 0)
    if methods or compressions:
        dataset = dataset.filter(lambda features: _selected(features, methods, compressions))
    if training:
        # Shuffle before repeat so that each pass sees every example once.
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        dataset = _balanced_repeat(dataset, seed) if balance_classes else dataset.repeat()
    if training and pseudo_fakes == "sbi":
        seeds = tf.data.Dataset.random(seed=seed + _PSEUDO_FAKE_SEED_OFFSET).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda features, example_seed: pseudo_fakes_lib.replace_reals(
                *decode_record(features, image_size, channels), features[schema.LABEL], example_seed,
                pseudo_fake_ratio),
            num_parallel_calls=autotune)
    else:
        dataset = dataset.map(lambda features: decode_record(features, image_size, channels),
                              num_parallel_calls=autotune)
    if training and augmentation != "none":
        # One independent stateless seed per example, drawn from the run's seed.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda pair, example_seed: augment(*pair, example_seed, augmentation),
            num_parallel_calls=autotune)
    dataset = dataset.map(lambda image, mask: (model_input.unit_to_model_range(image), mask),
                          num_parallel_calls=autotune)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if max_batches:
        dataset = dataset.take(max_batches)
    if worker is not None:
        dataset = _with_auto_shard_policy(dataset, tf.data.experimental.AutoShardPolicy.OFF)
    return without_autotuning(dataset.prefetch(autotune))


def without_autotuning(dataset):
    """The dataset with tf.data's autotuning thread off; AUTOTUNE then means one call per core.

    TensorFlow 2.21's autotuning thread sleeps through an iterator's
    cancellation: the sleep doubles up to a minute as the pipeline runs, and
    dropping the iterator (the end of a `for` loop over the dataset included)
    waited for the rest of it, up to tens of seconds. Every tf.data pipeline
    of the project goes through here. Records per second with it off are in
    BENCHMARKS.md ("tf.data reader").
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _with_auto_shard_policy(dataset, policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def share_examples_among_workers(dataset):
    """For multi-worker evaluation: each worker reads every file and keeps its share of the examples.

    This is tf.distribute's DATA sharding; unlike sharding by file it works
    for any number of files, at the cost of every worker reading them all.
    """
    return _with_auto_shard_policy(dataset, tf.data.experimental.AutoShardPolicy.DATA)


def make_prediction_dataset(file_pattern, *, image_size, channels, batch_size):
    """One pass over every record, in file order, with the metadata that evaluation groups by.

    Images are decoded exactly as `make_dataset`'s evaluation path decodes
    them (no augmentation, model range [-1, 1]), so predictions match what the
    model saw during training.

    Args:
      file_pattern: glob of TFRecord shards written with `schema`.
      image_size: height and width fed to the model.
      channels: 1 (grayscale) or 3 (RGB).
      batch_size: examples per batch; the last partial batch is kept.

    Returns:
      A `tf.data.Dataset` of dict batches: "image" float32 in [-1, 1]
      (batch, image_size, image_size, channels), "crop" the stored RGB crop
      as uint8 (for `evaluate --degrade`, which degrades it before
      `model_input.to_model_input`), "mask" float32 in {0, 1}
      (batch, image_size, image_size, 1), "label" int64 (1 fake, 0 real,
      -1 unknown), "video_id", "original_id", "method", "compression"
      (bytes), "frame_index", "face_number", "mask_unknown" (int64: 1 for a
      label-only fake, whose all-zero mask is not its truth) and "box"
      float32 (batch, 4), the crop's box in frame pixels.

    Raises:
      FileNotFoundError: naming the pattern, when nothing matches.
    """
    metadata = {"label": schema.LABEL, "video_id": schema.VIDEO_ID, "original_id": schema.ORIGINAL_ID,
                "method": schema.METHOD, "compression": schema.COMPRESSION, "frame_index": schema.FRAME_INDEX,
                "face_number": schema.FACE_NUMBER, "mask_unknown": schema.MASK_UNKNOWN, "box": schema.BOX}

    def prepare(features):
        crop = decode_crop(features)
        image, mask = decode_record(features, image_size, channels, crop)
        return {"image": model_input.unit_to_model_range(image), "mask": mask, "crop": crop,
                **{name: features[key] for name, key in metadata.items()}}

    files = list_files(file_pattern)
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=autotune,
        deterministic=True)
    dataset = dataset.map(schema.parse_example, num_parallel_calls=autotune)
    dataset = dataset.map(prepare, num_parallel_calls=autotune)
    return without_autotuning(dataset.batch(batch_size).prefetch(autotune))


def _error_line(error):
    """TensorFlow's message without its graph-node prefix and op suffix, on one line."""
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", error.message).split(" [Op:")[0]
    return " ".join(message.split())


def shard_problem(path, image_size, channels):
    """Why one shard cannot be read as the reader reads it, or None when every record parses and decodes.

    Returns:
      A line such as "record 3: Invalid PNG data, size 120".
    """
    dataset = tf.data.TFRecordDataset(path).map(schema.parse_example).map(
        lambda features: decode_record(features, image_size, channels))
    iterator = iter(without_autotuning(dataset))
    index = 0
    while True:
        try:
            next(iterator)
        except StopIteration:
            return None
        except _READ_ERRORS as error:
            return f"record {index}: {_error_line(error)}"
        index += 1


@contextlib.contextmanager
def naming_bad_shards(file_patterns, image_size, channels):
    """Within the block, TensorFlow's error for a shard that cannot be read becomes a RecordError naming it.

    TensorFlow's read errors do not say which file failed, so on such an
    error the shards of `file_patterns` are read again, one at a time, as
    the reader decodes them, up to the first that fails. An error that no
    shard reproduces (it did not come from the records) is raised unchanged.

    Raises:
      RecordError: "<shard>: record <i>: <what failed>".
    """
    try:
        yield
    except _READ_ERRORS as error:
        logging.warning("a TFRecord shard cannot be read; reading the shards one at a time to find it")
        for pattern in file_patterns:
            for path in list_files(pattern):
                problem = shard_problem(path, image_size, channels)
                if problem:
                    raise RecordError(
                        f"{path} is not a readable TFRecord shard of face crops ({problem})") from error
        raise
