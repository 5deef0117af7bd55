"""Training and evaluation of the UNet with the reference recipe, in Keras `fit`.

The recipe (NVIDIA UNet_Industrial): centered RMSProp (rho 0.9, momentum 0.8,
epsilon 1e-10 as TF1's RMSPropOptimizer), learning rate 1e-4 decayed x0.8
every 500 steps (staircase), L2 weight decay 1e-5 on every variable, the
adaptive Dice/cross-entropy loss. (The reference augments with flips and
rot90, `--augmentation=reference`; faces default to a policy of their own,
see data_pipeline.reader.augment.)

`--model_kind=classifier` trains a frame classifier (unet_industrial.models.classifier)
with the same recipe, data, checkpoints and run folder; what differs between
the kinds (model, loss, metrics, the metric that picks the best checkpoint)
is gathered in one `ModelKind` each.

A run is divided into rounds of `save_every` steps (Keras "epochs"). After
each round, and when `num_iter` is reached, the run evaluates (when it has
evaluation data), writes `checkpoints/last.keras` (weights and optimizer state,
so a run can resume), and updates `checkpoints/best.keras` when the evaluation
Dice at 0.5 (a classifier: ROC AUC) improved.

Training runs under the tf.distribute strategy of `--distribution` (see
unet_industrial.training.distribute): one device by default, the same code path on
several. Every worker runs every step, evaluation and preview prediction
(collective operations); only the chief writes into the run folder.
"""

import dataclasses
import math
import os
import shutil
import time
import warnings

import keras
import numpy as np
from absl import logging

from data_pipeline import files, model_input
from data_pipeline import recipe as recipe_lib
from unet_industrial import run_files
from unet_industrial.config import METRIC_THRESHOLDS, ConfigError
from unet_industrial.models import classifier
from unet_industrial.models.losses import BatchLoss, add_l2_weight_decay, batch_loss
from unet_industrial.models.metrics import Dice, IoU, segmentation_metrics
from unet_industrial.models.unet import build_unet
from unet_industrial.training import data, distribute
from unet_industrial.training.summaries import SummaryWriter

# Reported separately from Keras' "loss", which also holds the L2 term.
RECONSTRUCTION_LOSS = "reconstruction_loss"
_PREVIEW_IMAGES = 4


def dtype_policy(config):
    """The Keras dtype policy: float32, or mixed float16 / bfloat16 with --amp."""
    return f"mixed_{config.amp_dtype}" if config.amp else "float32"


def jit_compile(config):
    """XLA with --xla; JAX always compiles (its uncompiled path is op-by-op)."""
    return True if config.xla else keras.backend.backend() == "jax"


def _reconstruction_loss_metric(config):
    # The unscaled batch value: BatchLoss itself is divided by the replica count.
    return keras.metrics.MeanMetricWrapper(batch_loss, name=RECONSTRUCTION_LOSS, kind=config.loss_fn_name)


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """What training and evaluation need to know of a --model_kind.

    Attributes:
      build: (config, pretrained) -> an uncompiled Keras model; pretrained
        False when a checkpoint will replace every weight (so a classifier
        does not fetch its ImageNet weights to resume or evaluate).
      loss: config -> the training loss, on (masks, model output).
      train_metrics: config -> the cheap metrics computed while training.
      eval_metrics: config -> every metric of an evaluation pass, including
        the loss without its L2 term.
      best_metric: the evaluation metric (higher is better) that picks the
        best checkpoint.
      logged: the metrics the progress lines show, best_metric first.
      predicts_masks: whether the output is a mask (previewed as an image).
    """

    build: object
    loss: object
    train_metrics: object
    eval_metrics: object
    best_metric: str
    logged: tuple
    predicts_masks: bool


SEGMENTER = ModelKind(
    build=lambda config, pretrained: build_unet(
        config.unet_variant, config.input_shape, config.activation_fn, config.weight_init_method,
        dtype_policy=dtype_policy(config)),
    loss=lambda config: BatchLoss(config.loss_fn_name),
    train_metrics=lambda config: [_reconstruction_loss_metric(config), Dice(0.5), IoU(0.5)],
    eval_metrics=lambda config: [_reconstruction_loss_metric(config),
                                 *segmentation_metrics(METRIC_THRESHOLDS)],
    best_metric="dice@0.5", logged=("dice@0.5", "iou@0.5", RECONSTRUCTION_LOSS), predicts_masks=True)
# The best classifier is the one of highest validation ROC AUC: the ranking
# that the frame and video verdicts are calibrated on, insensitive to the
# threshold and to over-confidence (which the loss would punish).
CLASSIFIER = ModelKind(
    build=lambda config, pretrained: classifier.build_classifier(
        config.classifier, config.input_shape, config.weights if pretrained else "none",
        dtype_policy=dtype_policy(config)),
    loss=lambda config: classifier.FrameLoss(),
    train_metrics=lambda config: classifier.frame_metrics(),
    eval_metrics=lambda config: classifier.frame_metrics(with_loss=True),
    best_metric="auc", logged=("auc", "accuracy", "frame_bce"), predicts_masks=False)
MODEL_KINDS = {"segmenter": SEGMENTER, "classifier": CLASSIFIER}


def model_kind(config):
    return MODEL_KINDS[config.model_kind]


def build_model(config, pretrained=True):
    """The model of a config; `pretrained=False` when a checkpoint is restored into it (see ModelKind)."""
    return model_kind(config).build(config, pretrained)


def learning_rate_schedule(config):
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=config.learning_rate_decay_steps,
        decay_rate=config.learning_rate_decay_factor, staircase=True)


def make_optimizer(config):
    """Centered RMSProp on the staircase schedule; dynamic loss scaling for float16."""
    optimizer = keras.optimizers.RMSprop(
        learning_rate=learning_rate_schedule(config), rho=config.rmsprop_decay,
        momentum=config.rmsprop_momentum, epsilon=1e-10, centered=True)
    if config.amp and config.amp_dtype == "float16":
        # bfloat16 has float32's exponent range and needs no loss scaling.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def compile_for_training(model, config, metrics=True):
    """Attaches weight decay, optimizer, loss and the cheap training metrics."""
    add_l2_weight_decay(model, config.weight_decay)
    kind = model_kind(config)
    model.compile(optimizer=make_optimizer(config), loss=kind.loss(config),
                  metrics=kind.train_metrics(config) if metrics else None, jit_compile=jit_compile(config))
    # Its slots are made now, eagerly: made inside the first traced step instead,
    # they make TensorFlow trace that step a second time.
    model.optimizer.build(model.trainable_variables)


def make_evaluator(model, config):
    """A model sharing `model`'s layers and weights, compiled with every metric.

    A segmenter trains with the metrics at 0.5 only; its evaluation reports
    Dice, IoU and the per-image TPR / TNR at all of the reference's
    thresholds. A classifier's evaluation adds its loss to its metrics.
    """
    evaluator = keras.Model(model.inputs, model.outputs, name="evaluator")
    evaluator.compile(loss=None, metrics=model_kind(config).eval_metrics(config),
                      jit_compile=jit_compile(config))
    return evaluator


def evaluate_model(evaluator, batches):
    """Runs one pass over `batches` and returns {metric name: float}."""
    # A fresh generator per pass over in-memory batches (Keras takes generators, not list iterators).
    iterable = (batch for batch in batches) if isinstance(batches, list) else batches
    with warnings.catch_warnings():
        # A one-pass dataset of unknown length ends this way by design.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        results = evaluator.evaluate(iterable, verbose=0, return_dict=True)
    # "loss" would be the L2 term alone (the evaluator has no compiled loss).
    results.pop("loss", None)
    return {name: float(value) for name, value in results.items()}


def _summary(results, kind):
    """The progress line's view of evaluation results: the kind's logged metrics."""
    return "  ".join(f"{name} {results[name]:.4f}" for name in kind.logged)


def write_previews(writer, step, model, preview, predicts_masks=True):
    """Input, target mask and (for a segmenter) predicted probability images for TensorBoard."""
    images, masks = (np.asarray(part)[:_PREVIEW_IMAGES] for part in preview)
    writer.images(step, "input", model_input.model_range_to_unit(images))
    writer.images(step, "target_mask", masks)
    if not predicts_masks:
        return
    # Under a strategy every replica predicts the whole batch and Keras
    # concatenates the copies; the first are the predictions of `images`.
    logits = np.asarray(model.predict_on_batch(images), dtype=np.float32)[:len(images)]
    # keras.ops.sigmoid, not 1 / (1 + exp(-x)): exp overflows for very negative logits.
    writer.images(step, "predicted_mask", np.asarray(keras.ops.sigmoid(logits)))


def _save_model(model, path):
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    tmp_path = files.temporary_sibling(path)
    model.save(tmp_path)
    os.replace(tmp_path, path)


def _copy_atomic(source, destination):
    tmp_path = files.temporary_sibling(destination)
    shutil.copyfile(source, tmp_path)
    os.replace(tmp_path, destination)


class TrainingMonitor(keras.callbacks.Callback):
    """Counts steps, logs progress, stops at num_iter, evaluates and checkpoints.

    Every worker of a distributed run evaluates and predicts the previews
    (both are collective); only the chief writes events, metrics and
    checkpoints. Keras 3 saves a `.keras` file from each variable's local
    copy, without a collective, so the other workers need not save at all.
    """

    def __init__(self, config, run_dir, start_step, best, evaluator, eval_batches, previews, distribution):
        super().__init__()
        self.config = config
        self.kind = model_kind(config)
        self.run_dir = run_dir
        self.distribution = distribution
        self.step = start_step
        self.start_step = start_step
        self.best = best  # {"value": ..., "step": ...} of the best evaluation so far
        self.last_results = {}
        self.evaluator = evaluator
        self.eval_batches = eval_batches
        self.previews = previews
        self.schedule = learning_rate_schedule(config)
        # A writer given no folder writes nothing: that of a worker other than the chief.
        tb_dir = os.path.join(run_dir, "tb") if distribution.is_chief else None
        self.writers = {split: SummaryWriter(os.path.join(tb_dir, split) if tb_dir else None)
                        for split in ("train", "eval")}
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")

    def on_train_begin(self, logs=None):
        self.started = self.window_start = time.perf_counter()
        self.window_step = self.step

    def _learning_rate(self):
        # The rate the step just finished used: the optimizer evaluates the
        # schedule at its iteration count before incrementing it.
        return float(keras.ops.convert_to_numpy(self.schedule(self.step - 1)))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.config.log_every == 0 or self.step >= self.config.num_iter:
            self._log_training(logs or {})
        if self.step >= self.config.num_iter:
            self.model.stop_training = True

    def _log_training(self, logs):
        # float() waits for the step to finish, so the rate below is honest
        # even under asynchronous dispatch.
        values = {name: float(value) for name, value in logs.items()}
        now = time.perf_counter()
        images = (self.step - self.window_step) * self.distribution.global_batch_size
        images_per_second = images / (now - self.window_start)
        self.window_start, self.window_step = now, self.step
        values.update(learning_rate=self._learning_rate(), images_per_second=images_per_second)
        done = self.step - self.start_step
        remaining = (now - self.started) / max(done, 1) * (self.config.num_iter - self.step)
        logging.info("step %d/%d  loss %.4f  %s %.4f  lr %.2e  %.1f img/s  ETA %s",
                     self.step, self.config.num_iter, values["loss"], self.kind.best_metric,
                     values.get(self.kind.best_metric, math.nan), values["learning_rate"], images_per_second,
                     time.strftime("%H:%M:%S", time.gmtime(remaining)))
        self.writers["train"].scalars(self.step, values)
        self._append_metrics("train", values)

    def _append_metrics(self, split, values):
        if self.distribution.is_chief:
            run_files.append_jsonl(self.metrics_path, {"split": split, "step": self.step, **values})

    def on_epoch_end(self, epoch, logs=None):
        improved = False
        best_metric = self.kind.best_metric
        if self.eval_batches is not None:
            results = self.last_results = evaluate_model(self.evaluator, self.eval_batches)
            logging.info("eval at step %d: %s", self.step, _summary(results, self.kind))
            self.writers["eval"].scalars(self.step, results)
            self._append_metrics("eval", results)
            improved = self.best["value"] is None or results[best_metric] > self.best["value"]
        for split, preview in self.previews.items():
            write_previews(self.writers[split], self.step, self.model, preview, self.kind.predicts_masks)
        if improved:
            self.best = {"value": results[best_metric], "step": self.step}
        if self.distribution.is_chief:
            self._checkpoint(improved)
        for writer in self.writers.values():
            writer.flush()

    def _checkpoint(self, improved):
        last = run_files.checkpoint_path(self.run_dir, "last")
        _save_model(self.model, last)
        if improved:
            _copy_atomic(last, run_files.checkpoint_path(self.run_dir, "best"))
        # The state file is written after the checkpoint it describes.
        files.write_json(run_files.train_state_path(self.run_dir),
                         {"step": self.step, "best_metric": self.kind.best_metric, "best": self.best,
                          "global_batch_size": self.distribution.global_batch_size})

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


def restore(model, path):
    """Loads weights and optimizer state saved by `model.save` into a model compiled for training.

    Returns:
      The step (optimizer iterations) the checkpoint was taken at.
    """
    try:
        model.load_weights(path)
    except ValueError as error:
        raise ConfigError(f"{path} does not match this configuration: {error}") from error
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _resumed_best(run_dir, global_batch_size):
    """The best evaluation of the run to continue, or None; warns when the global batch changed."""
    state_path = run_files.train_state_path(run_dir)
    if not os.path.exists(state_path):
        return None
    state = run_files.read_json(state_path)
    # Runs from before distribution support did not record it.
    trained_with = state.get("global_batch_size", global_batch_size)
    if trained_with != global_batch_size:
        logging.warning("the checkpoint was trained with global batch %d, this run continues with %d: "
                        "--distribution or the replica count changed", trained_with, global_batch_size)
    return state["best"]


def _records_recipe(config):
    """The crop recipe of the training records (their manifest.json's), as a dict; None without one."""
    found = recipe_lib.of_records(config.train_pattern)
    return None if found is None else found.to_dict()


def train(config, run_dir):
    """Trains (and, for train_and_evaluate, evaluates) a model into `run_dir`.

    Args:
      config: a validated TrainConfig with exec_mode train or train_and_evaluate.
      run_dir: the run folder; with config.resume it holds the run to continue.

    Returns:
      The results of the final evaluation (empty without evaluation data).
    """
    # First: multi-worker runs wait here for every worker, before any writes.
    distribution = distribute.for_config(config)
    keras.utils.set_random_seed(config.seed)
    start_step, best, evaluator = 0, {"value": None, "step": None}, None
    with distribution.scope():
        model = build_model(config, pretrained=not config.resume)
        compile_for_training(model, config)
        if config.resume:
            start_step = restore(model, run_files.checkpoint_path(run_dir, "last"))
        if config.exec_mode == "train_and_evaluate":
            evaluator = make_evaluator(model, config)
    if config.resume:
        best = _resumed_best(run_dir, distribution.global_batch_size) or best
        logging.info("resuming %s at step %d", run_dir, start_step)
    if start_step >= config.num_iter:
        logging.info("step %d already reaches --num_iter=%d: nothing to train", start_step, config.num_iter)
        return {}

    train_batches = data.training_data(config, start_step, distribution)
    eval_batches = None
    previews = {"train": data.preview_batch(config, "train")}
    if evaluator is not None:
        eval_batches = data.evaluation_data(config, distribution)
        previews["eval"] = data.preview_batch(config, "eval")

    if distribution.is_chief:
        os.makedirs(os.path.join(run_dir, run_files.CHECKPOINT_DIR), exist_ok=True)
        run_files.record_start(run_dir, config, distribution=distribution.summary(),
                               **{recipe_lib.RECIPE_KEY: _records_recipe(config)})
    monitor = TrainingMonitor(config, run_dir, start_step, best, evaluator, eval_batches, previews,
                              distribution)
    rounds = math.ceil((config.num_iter - start_step) / config.save_every)
    logging.info("training %s (%d parameters) for steps %d..%d, global batch %d (%d per replica x %d "
                 "replicas on %d worker(s), --distribution=%s), backend %s, policy %s",
                 model.name, model.count_params(), start_step + 1, config.num_iter,
                 distribution.global_batch_size, config.batch_size, distribution.num_replicas,
                 distribution.num_workers, config.distribution,
                 keras.backend.backend(), dtype_policy(config))
    model.fit(train_batches, epochs=rounds, steps_per_epoch=config.save_every, callbacks=[monitor],
              shuffle=False, verbose=0)
    return monitor.last_results


def evaluate(config, run_dir):
    """Evaluates a run's checkpoint on --eval_pattern and writes a JSON report.

    The report goes to `run_dir/evaluations/<checkpoint>-step<N>-<time>.json`
    (never over an earlier one) and the scalars to `tb/eval`.

    Returns:
      The results dict written to the report.
    """
    path = run_files.checkpoint_path(run_dir, config.checkpoint)
    model = build_model(config, pretrained=False)
    compile_for_training(model, config, metrics=False)
    step = restore(model, path)
    results = evaluate_model(make_evaluator(model, config), data.evaluation_data(config))
    report = {"checkpoint": os.path.relpath(path, run_dir), "step": step,
              "eval_pattern": config.eval_pattern, "metrics": results}
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    report_path = os.path.join(run_dir, "evaluations", f"{config.checkpoint}-step{step}-{stamp}.json")
    files.write_json(report_path, report)
    writer = SummaryWriter(os.path.join(run_dir, "tb", "eval"))
    writer.scalars(step, {f"{config.checkpoint}/{name}": value for name, value in results.items()})
    writer.close()
    logging.info("evaluated %s at step %d: %s; report %s", path, step, _summary(results, model_kind(config)),
                 report_path)
    return results
