"""The training library: run folder contents, TensorBoard events, evaluation, recipe."""

import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from unet_industrial import run_files
from unet_industrial.config import METRIC_THRESHOLDS, TrainConfig, validate
from unet_industrial.training import jobs, trainer

TINY = dict(input_size=32, input_channels=3, batch_size=4, save_every=3, log_every=1, seed=1)


def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def trained_run(tiny_tfrecords, tmp_path_factory):
    train_pattern, eval_pattern = tiny_tfrecords
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    config = TrainConfig(exec_mode="train_and_evaluate", train_pattern=train_pattern,
                         eval_pattern=eval_pattern, num_iter=6, run_dir=run_dir, **TINY)
    validate(config)
    results = jobs.run(config, run_dir)
    return config, run_dir, results


def test_run_folder_holds_config_metrics_events_and_checkpoints(trained_run):
    config, run_dir, results = trained_run
    record = run_files.read_json(os.path.join(run_dir, "config.json"))
    assert record["config"] == dataclasses.asdict(config)
    assert record["versions"]["keras"] == keras.__version__
    assert record["keras_backend"] == keras.backend.backend()
    assert record["git_commit"] is None or len(record["git_commit"].split("-")[0]) == 40
    for name in ("last.keras", "best.keras", "train_state.json"):
        assert os.path.isfile(os.path.join(run_dir, "checkpoints", name)), name
    lines = _read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    assert [line["step"] for line in lines if line["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [line["step"] for line in lines if line["split"] == "eval"] == [3, 6]
    train_line = lines[0]
    assert {"loss", "reconstruction_loss", "dice@0.5", "iou@0.5", "learning_rate",
            "images_per_second"} <= set(train_line)
    assert train_line["loss"] > train_line["reconstruction_loss"] > 0  # loss adds the L2 term
    eval_line = lines[-1]
    for threshold in METRIC_THRESHOLDS:
        for kind in ("dice", "iou", "tpr", "tnr"):
            assert 0.0 <= eval_line[f"{kind}@{threshold:g}"] <= 1.0
    assert results == {k: v for k, v in eval_line.items() if k not in ("split", "step")}


def test_tensorboard_events_have_scalars_and_images(trained_run):
    _, run_dir, _ = trained_run
    train_tags = _event_tags(os.path.join(run_dir, "tb", "train"))
    assert {"loss", "learning_rate", "dice@0.5", "iou@0.5", "images_per_second"} <= train_tags
    assert {"input", "target_mask", "predicted_mask"} <= train_tags
    eval_tags = _event_tags(os.path.join(run_dir, "tb", "eval"))
    assert {"dice@0.05", "iou@0.99", "tpr@0.5", "tnr@0.5", "reconstruction_loss", "predicted_mask"} <= eval_tags


def test_checkpoints_hold_weights_and_optimizer_state(trained_run):
    config, run_dir, _ = trained_run
    state = run_files.read_json(run_files.train_state_path(run_dir))
    assert state["step"] == 6
    model = trainer.build_model(config)
    trainer.compile_for_training(model, config)
    assert trainer.restore(model, run_files.checkpoint_path(run_dir, "last")) == 6
    lines = _read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    best = max((line for line in lines if line["split"] == "eval"), key=lambda line: line["dice@0.5"])
    assert state["best"] == {"step": best["step"], "value": pytest.approx(best["dice@0.5"])}
    assert trainer.restore(model, run_files.checkpoint_path(run_dir, "best")) == best["step"]


def test_evaluate_mode_reports_the_checkpoint_without_touching_the_run(trained_run, tiny_tfrecords):
    config, run_dir, results = trained_run
    before = {p: os.path.getmtime(p) for p in glob.glob(os.path.join(run_dir, "**", "*"), recursive=True)
              if os.path.isfile(p) and "tb" not in p}
    eval_config = dataclasses.replace(config, exec_mode="evaluate", checkpoint="last")
    evaluated = jobs.run(eval_config, run_dir)
    reports = glob.glob(os.path.join(run_dir, "evaluations", "last-step6-*.json"))
    assert len(reports) == 1
    report = run_files.read_json(reports[0])
    assert report["step"] == 6 and report["checkpoint"] == os.path.join("checkpoints", "last.keras")
    # The final in-training evaluation was of the same weights on the same data.
    for name, value in results.items():
        assert report["metrics"][name] == pytest.approx(value, abs=1e-5), name
    assert evaluated == report["metrics"]
    after = {p: os.path.getmtime(p) for p in before}
    assert after == before


def test_learning_rate_is_staircase_decayed_and_logged_per_step(tmp_path):
    run_dir = str(tmp_path / "lr")
    config = TrainConfig(exec_mode="train", synthetic_data=True, num_iter=5, learning_rate=1e-3,
                         learning_rate_decay_steps=2, learning_rate_decay_factor=0.5, run_dir=run_dir,
                         **{**TINY, "save_every": 5})
    jobs.run(config, run_dir)
    lines = _read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    assert [line["learning_rate"] for line in lines] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    assert not os.path.exists(run_files.checkpoint_path(run_dir, "best"))  # no evaluation, no "best"


def test_optimizer_is_centered_rmsprop_with_loss_scaling_only_for_float16():
    optimizer = trainer.make_optimizer(TrainConfig())
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.centered, optimizer.epsilon) == (0.9, 0.8, True, 1e-10)
    schedule = optimizer._learning_rate
    assert [float(schedule(step)) for step in (0, 499, 500, 1000)] == pytest.approx([1e-4, 1e-4, 8e-5, 6.4e-5])
    fp16 = trainer.make_optimizer(TrainConfig(amp=True, amp_dtype="float16"))
    assert isinstance(fp16, keras.optimizers.LossScaleOptimizer)
    assert isinstance(trainer.make_optimizer(TrainConfig(amp=True, amp_dtype="bfloat16")), keras.optimizers.RMSprop)


def test_mixed_precision_training_keeps_float32_weights_and_logits(tmp_path):
    config = TrainConfig(exec_mode="train", synthetic_data=True, num_iter=2, amp=True, amp_dtype="bfloat16",
                         run_dir=str(tmp_path / "amp"), **{**TINY, "save_every": 2})
    jobs.run(config, config.run_dir)
    model = keras.saving.load_model(run_files.checkpoint_path(config.run_dir, "last"), compile=False)
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
    assert model.get_layer("input_block_conv1").compute_dtype == "bfloat16"
    logits = model(np.zeros((1, 32, 32, 3), "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
