"""Where the training steps run: one device, every local GPU, or several machines.

`--distribution` picks a tf.distribute strategy (TensorFlow Keras backend only):

  none          the default strategy: one device, exactly as without this module.
  mirrored      MirroredStrategy over the local GPUs (over the logical CPU
                devices on a machine without GPUs: one, unless configured).
  multi_worker  MultiWorkerMirroredStrategy over the machines that TF_CONFIG
                names, each with all of its GPUs.

The model, its optimizer and its metrics are created inside
`Distribution.scope()`. `--batch_size` is per replica: each step takes
`global_batch_size` examples, split evenly among the replicas, and applies the
mean of their gradients. Only the chief (task "chief", or worker 0 of a cluster
without one) writes into the run folder; the other workers take part in every
collective step (training, evaluation, prediction) and write nothing.

TensorFlow is imported only under the TensorFlow backend, so JAX runs (always
`none`) need no TensorFlow.
"""

import contextlib
import dataclasses
import json
import os

import keras

from unet_industrial.config import ConfigError

_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
                      '"task": {"type": "worker", "index": 0}}')


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A run's strategy and this process's part in it.

    Attributes:
      name: the --distribution value.
      strategy: the tf.distribute.Strategy, or None under another Keras backend.
      num_replicas: replicas that train in sync, over all workers.
      num_workers: processes (machines) that take part.
      worker_index: this process's place among them, 0 to num_workers - 1.
      is_chief: whether this process writes the run folder.
      global_batch_size: examples per step over all replicas.
    """

    name: str
    strategy: object
    num_replicas: int
    num_workers: int
    worker_index: int
    is_chief: bool
    global_batch_size: int

    def scope(self):
        """The context in which the model, optimizer and metrics must be created."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def summary(self):
        """What the run folder records about the distribution (JSON-ready)."""
        return {"distribution": self.name, "replicas": self.num_replicas, "workers": self.num_workers,
                "global_batch_size": self.global_batch_size}


def for_config(config):
    """Creates the Distribution that `config.distribution` names.

    With multi_worker this returns only once every worker of the cluster has
    started (the strategy connects them all). Call it before writing into the
    run folder: then every worker has checked the folder before the chief
    writes there.

    Args:
      config: a validated TrainConfig.

    Returns:
      A Distribution.

    Raises:
      ConfigError: a distribution under a Keras backend other than
        TensorFlow, or multi_worker without a usable TF_CONFIG.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        if config.distribution != "none":
            raise ConfigError(f"--distribution={config.distribution} needs the TensorFlow Keras backend "
                              f"(KERAS_BACKEND=tensorflow); this run uses {backend}")
        return Distribution(config.distribution, None, 1, 1, 0, True, config.batch_size)
    import tensorflow as tf

    if config.distribution == "mirrored":
        # Without GPUs, the logical CPU devices: how the tests get two replicas on one CPU.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    elif config.distribution == "multi_worker":
        _check_tf_config()
        strategy = _multi_worker_strategy(tf)
    else:
        strategy = tf.distribute.get_strategy()
    num_workers, worker_index, is_chief = 1, 0, True
    resolver = strategy.cluster_resolver  # None for single-process strategies
    if resolver is not None:
        jobs = resolver.cluster_spec().as_dict()
        chiefs = len(jobs.get("chief", []))
        num_workers = chiefs + len(jobs.get("worker", []))
        # The chief, if any, counts first; the workers follow in TF_CONFIG's order.
        worker_index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
        is_chief = worker_index == 0
    replicas = strategy.num_replicas_in_sync
    return Distribution(config.distribution, strategy, replicas, num_workers, worker_index, is_chief,
                        config.batch_size * replicas)


def _check_tf_config():
    """Raises ConfigError unless TF_CONFIG names a cluster and this process's training task in it."""
    raw = os.environ.get("TF_CONFIG", "")
    try:
        tf_config = json.loads(raw)
        cluster, task_type = dict(tf_config["cluster"]), tf_config["task"]["type"]
    except (ValueError, KeyError, TypeError):
        found = f"got {raw!r}" if raw else "it is unset"
        raise ConfigError(f"--distribution=multi_worker needs TF_CONFIG, JSON naming the cluster and this "
                          f"task such as {_TF_CONFIG_EXAMPLE}; {found}") from None
    if task_type not in ("chief", "worker") or task_type not in cluster:
        raise ConfigError(f"TF_CONFIG's task type {task_type!r} must be 'chief' or 'worker', a job of its "
                          f"cluster ({', '.join(cluster)})")


def _multi_worker_strategy(tf):
    """A MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` gives it.

    In multi-worker mode Keras 3.15's TensorFlow trainer reduces a nested
    batch (the `(images, masks)` it builds the model from) and per-replica
    scalar metrics with `axis=0`; MultiWorkerMirroredStrategy.reduce accepts
    neither, so `fit` fails before its first step (keras-team/keras#20585).
    Here each tensor of a nest is reduced alone, and a scalar over the
    replicas only.
    """

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def reduce_one(tensor):
                rank = self.experimental_local_results(tensor)[0].shape.rank
                return super(KerasMultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, tensor, None if rank == 0 else axis)

            return tf.nest.map_structure(reduce_one, value)

    return KerasMultiWorkerMirroredStrategy()
