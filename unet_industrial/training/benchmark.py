"""training_benchmark and inference_benchmark: images per second, as the reference reports.

Both time each step after `warmup_step` warm-up steps (compilation and
autotuning happen there) and report the median, in images per second. Data
are random tensors held in memory unless --train_pattern is given, so the
numbers measure the model and the framework, not the input pipeline.
"""

import statistics
import time

import keras
from absl import logging

from unet_industrial.training import data, trainer


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training or prediction step, synchronized on its result."""

    def __init__(self):
        super().__init__()
        self.step_seconds = []

    def _begin(self):
        self.started = time.perf_counter()

    def _end(self, result):
        # Reading a result waits for the device, so asynchronous dispatch
        # cannot make a step look faster than it is.
        keras.ops.convert_to_numpy(result)
        self.step_seconds.append(time.perf_counter() - self.started)

    def on_train_batch_begin(self, batch, logs=None):
        self._begin()

    def on_train_batch_end(self, batch, logs=None):
        self._end(logs["loss"])

    def on_predict_batch_begin(self, batch, logs=None):
        self._begin()

    def on_predict_batch_end(self, batch, logs=None):
        # One pixel is enough to wait on, and copies next to nothing back.
        self._end(logs["outputs"][0, 0, 0])


def summarize(config, step_seconds):
    """Median img/s over the steps after warm-up, with the raw step times."""
    timed = step_seconds[config.warmup_step:]
    median = statistics.median(timed)
    return {
        "exec_mode": config.exec_mode,
        "backend": keras.backend.backend(),
        "precision": trainer.dtype_policy(config),
        "xla": trainer.jit_compile(config),
        "input_shape": list(config.input_shape),
        "batch_size": config.batch_size,
        "timed_steps": len(timed),
        "warmup_steps": config.warmup_step,
        "median_step_ms": 1e3 * median,
        "images_per_second": config.batch_size / median,
        "step_seconds": step_seconds,
    }


def training_benchmark(config):
    """Times `num_iter` training steps of the full recipe (loss, L2, RMSProp)."""
    keras.utils.set_random_seed(config.seed)
    model = trainer.build_model(config)
    trainer.compile_for_training(model, config, metrics=False)
    timer = StepTimer()
    model.fit(data.training_data(config), epochs=1, steps_per_epoch=config.num_iter, callbacks=[timer],
              shuffle=False, verbose=0)
    return summarize(config, timer.step_seconds)


def inference_benchmark(config):
    """Times `num_iter` forward passes on batches of `batch_size`.

    Through `model.predict`, as training goes through `fit`: Keras moves each
    batch to the device as it goes and keeps the outputs there until the end,
    so a step is the forward pass, not a round trip of the whole batch
    through host memory.
    """
    keras.utils.set_random_seed(config.seed)
    model = trainer.build_model(config)
    timer = StepTimer()
    model.predict(data.training_data(config), steps=config.num_iter, callbacks=[timer], verbose=0)
    return summarize(config, timer.step_seconds)


def run(config):
    """Runs the benchmark named by config.exec_mode, logs and returns its summary."""
    result = training_benchmark(config) if config.exec_mode == "training_benchmark" else inference_benchmark(config)
    logging.info("%s: %.1f img/s (median of %d steps after %d warm-up), %.2f ms/step",
                 config.exec_mode, result["images_per_second"], result["timed_steps"],
                 result["warmup_steps"], result["median_step_ms"])
    return result
