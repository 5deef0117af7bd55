"""TensorBoard event writing, optional.

TensorFlow's `tf.summary` writes the events. It is imported lazily, and where
TensorFlow is not installed (the JAX-only GPU machines used for speed checks)
writing is skipped with one warning, so that the JAX path needs no TensorFlow.
"""

import numpy as np
from absl import logging


class SummaryWriter:
    """Scalars and images for one TensorBoard folder (e.g. run/tb/train).

    Args:
      logdir: the folder; None writes nothing (a worker that is not the chief
        of a distributed run).
    """

    def __init__(self, logdir):
        self._tf = None
        self._writer = None
        if logdir is None:
            return
        try:
            import tensorflow as tf
        except ImportError:
            logging.warning("TensorFlow is not installed: no TensorBoard events in %s", logdir)
            return
        self._tf = tf
        self._writer = tf.summary.create_file_writer(logdir)

    def scalars(self, step, values):
        """Writes a dict of name -> number at `step`."""
        if self._writer is None:
            return
        with self._writer.as_default(step=int(step)):
            for name, value in values.items():
                self._tf.summary.scalar(name, float(value))

    def images(self, step, name, images, max_outputs=4):
        """Writes a batch of images, float in [0, 1], shaped (N, H, W, 1 or 3)."""
        if self._writer is None:
            return
        with self._writer.as_default(step=int(step)):
            self._tf.summary.image(name, np.clip(images, 0.0, 1.0), max_outputs=max_outputs)

    def flush(self):
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
