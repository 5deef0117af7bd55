"""Where batches come from: TFRecords through data_pipeline's reader, or random tensors.

Random tensors mirror the reference's `synth_dataset_fn`: they measure the
model, not the input pipeline, and need no TensorFlow, so benchmarks run on
machines that only have JAX. The TFRecord path imports TensorFlow lazily.

A shard that cannot be read ends a job with a ConfigError naming it
(`records_named_on_error`, `numpy_batches`), not with TensorFlow's traceback.
"""

import contextlib

import numpy as np

from unet_industrial.config import ConfigError

# A few distinct random batches, cycled: enough that no step sees a constant
# input, few enough to stay in memory at 512x512.
_NUM_SYNTHETIC_BATCHES = 4


def synthetic_batches(batch_size, input_shape, seed=0):
    """A list of (images, masks) numpy batches: normal noise images, ~10 % mask pixels."""
    rng = np.random.default_rng(seed)
    height, width, channels = input_shape
    batches = []
    for _ in range(_NUM_SYNTHETIC_BATCHES):
        images = rng.standard_normal((batch_size, height, width, channels), dtype=np.float32)
        masks = (rng.random((batch_size, height, width, 1)) > 0.9).astype(np.float32)
        batches.append((images, masks))
    return batches


def _cycle(batches):
    # A generator (not itertools.cycle): Keras' fit accepts generators.
    while True:
        yield from batches


def _for_keras(batches, repeat):
    """In-memory batches as Keras is handed them: as they are, or a tf.data dataset under TensorFlow.

    Under TensorFlow, Keras wraps a Python iterator in a tf.data pipeline
    with autotuning on, and dropping such an iterator waits up to a minute
    (`data_pipeline.reader.without_autotuning`). Other backends take the
    batches without TensorFlow.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return _cycle(batches) if repeat else batches
    import tensorflow as tf

    from data_pipeline import reader

    images, masks = (np.stack(part) for part in zip(*batches))
    dataset = tf.data.Dataset.from_tensor_slices((images, masks))  # one element per batch
    return reader.without_autotuning(dataset.repeat() if repeat else dataset)


def training_data(config, start_step=0, distribution=None):
    """The infinite stream of training batches for a config.

    Args:
      config: a TrainConfig.
      start_step: the step training resumes from; it changes the shuffling
        seed so that a resumed run does not replay the first batches.
      distribution: the run's `distribute.Distribution`; None for one device.
        Batches hold its global batch, which tf.distribute splits among the
        replicas. Each worker of a multi-worker run reads its own whole
        TFRecord files (so with uneven shares the examples of a worker with
        fewer files come round more often).

    Returns:
      A tf.data.Dataset or an infinite Python iterator of (images, masks).

    Raises:
      FileNotFoundError: no training file, or fewer files than workers.
    """
    batch_size = distribution.global_batch_size if distribution else config.batch_size
    if config.uses_synthetic_data:
        return _for_keras(synthetic_batches(batch_size, config.input_shape, config.seed), repeat=True)
    from data_pipeline import reader

    worker = None
    if distribution and distribution.num_workers > 1:
        worker = (distribution.worker_index, distribution.num_workers)
    return reader.make_dataset(
        config.train_pattern, image_size=config.input_size, channels=config.input_channels,
        batch_size=batch_size, training=True, augmentation=config.augmentation,
        balance_classes=config.balance_classes, pseudo_fakes=config.pseudo_fakes,
        pseudo_fake_ratio=config.pseudo_fake_ratio, methods=config.train_method_list,
        compressions=config.train_compression_list, seed=config.seed + start_step,
        shuffle_buffer=config.shuffle_buffer, worker=worker)


def evaluation_data(config, distribution=None):
    """One pass over the evaluation batches (or a few random ones with --synthetic_data).

    Args:
      config: a TrainConfig.
      distribution: as for `training_data` (--eval_batches counts global
        batches), except that each worker of a multi-worker run reads every
        evaluation file and keeps its share of the examples, so that any
        number of files serves any number of workers.

    Returns:
      A tf.data.Dataset, or a list of numpy batches (iterate it afresh each pass).
    """
    batch_size = distribution.global_batch_size if distribution else config.batch_size
    if config.uses_synthetic_data:
        return _for_keras(synthetic_batches(batch_size, config.input_shape, config.seed + 1), repeat=False)
    from data_pipeline import reader

    dataset = reader.make_dataset(
        config.eval_pattern, image_size=config.input_size, channels=config.input_channels,
        batch_size=batch_size, training=False, max_batches=config.eval_batches)
    if distribution and distribution.num_workers > 1:
        return reader.share_examples_among_workers(dataset)
    return dataset


def preview_batch(config, split):
    """A fixed batch ("train" or "eval") whose predictions TensorBoard shows at every save.

    The first batch of the split in file order, without augmentation, so the
    images stay the same through a run and its continuations.
    """
    if config.uses_synthetic_data:
        return synthetic_batches(config.batch_size, config.input_shape,
                                 config.seed + (split == "eval"))[0]
    from data_pipeline import reader

    pattern = config.train_pattern if split == "train" else config.eval_pattern
    dataset = reader.make_dataset(pattern, image_size=config.input_size, channels=config.input_channels,
                                  batch_size=config.batch_size, training=False, max_batches=1)
    return next(iter(dataset))


@contextlib.contextmanager
def _shards_named_on_error(file_patterns, image_size, channels):
    """Within the block, a shard of `file_patterns` that cannot be read is a ConfigError naming it."""
    if not file_patterns:  # Random tensors: nothing to read, and perhaps no TensorFlow to read with.
        yield
        return
    from data_pipeline import reader

    try:
        with reader.naming_bad_shards(file_patterns, image_size, channels):
            yield
    except reader.RecordError as error:
        raise ConfigError(str(error)) from error


def records_named_on_error(config):
    """A context for a training job: a training or evaluation shard that cannot be read is a ConfigError.

    Args:
      config: a TrainConfig.
    """
    patterns = () if config.uses_synthetic_data else tuple(
        pattern for pattern in (config.train_pattern, config.eval_pattern) if pattern)
    return _shards_named_on_error(patterns, config.input_size, config.input_channels)


def numpy_batches(dataset, file_pattern, image_size, channels):
    """Yields the numpy batches of a dataset read from `file_pattern`.

    Raises:
      ConfigError: naming the shard, when one cannot be read.
    """
    with _shards_named_on_error((file_pattern,), image_size, channels):
        yield from dataset.as_numpy_iterator()
