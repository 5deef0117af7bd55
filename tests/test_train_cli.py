"""`python -m unet_industrial.train` as users call it: flags, bad input, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, run_module

TINY_FLAGS = ["--input_size=32", "--batch_size=2", "--log_every=1", "--synthetic_data"]


@pytest.mark.parametrize("flags, message", [
    (["--input_size=30"], "--input_size=30 must be a positive multiple of 16"),
    (["--activation_fn=swish"], "activation_fn=swish"),
    (["--unet_variant=hugeUNet"], "unet_variant=hugeUNet"),
    (["--exec_mode=fly"], "exec_mode=fly"),
    (["--train_pattern=no/such/dir/train-*.tfrecord"], "'no/such/dir/train-*.tfrecord' matches no file"),
    (["--exec_mode=train_and_evaluate", "--synthetic_data=false", "--train_pattern=tests/*.py",
      "--eval_pattern=nothing-*.tfrecord"], "--eval_pattern='nothing-*.tfrecord' matches no file"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--batch_size=0", "--synthetic_data"], "--batch_size must be positive"),
    (["--pseudo_fake_ratio=1.5", "--synthetic_data"], "--pseudo_fake_ratio=1.5 must lie in [0, 1]"),
    (["--model_kind=detector"], "model_kind=detector"),
    (["--model_kind=classifier", "--classifier=resnet50"], "classifier=resnet50"),
    (["--model_kind=classifier", "--input_size=64", "--synthetic_data"],
     "--input_size=64 is below 71, the smallest input keras.applications accepts for --classifier=xception"),
    (["--model_kind=classifier", "--input_channels=1", "--synthetic_data"],
     "--model_kind=classifier needs --input_channels=3"),
    (["--model_kind=classifier", "--loss_fn_name=dice", "--synthetic_data"],
     "--loss_fn_name=dice is for --model_kind=segmenter"),
    (["--weights=imagenet", "--synthetic_data"], "--weights=imagenet is for --model_kind=classifier"),
    (["--model_kind=classifier", "--classifier=unet_encoder", "--input_size=40", "--synthetic_data"],
     "--input_size=40 must be a positive multiple of 16"),
    (["--model_kind=classifier", "--classifier=unet_encoder", "--weights=imagenet", "--input_size=32",
      "--synthetic_data"], "--weights=imagenet: --classifier=unet_encoder has no pretrained weights"),
])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(tmp_path, flags, message):
    run_dir = tmp_path / "run"
    result = run_module("unet_industrial.train", f"--run_dir={run_dir}", *flags, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not run_dir.exists()
    assert "Traceback" not in result.stderr


def test_reusing_a_non_empty_run_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("earlier results\n")
    result = run_module("unet_industrial.train", f"--run_dir={run_dir}", *TINY_FLAGS, timeout=120)
    assert result.returncode == 2
    assert "is not empty; pass --resume" in result.stderr
    assert os.listdir(run_dir) == ["notes.txt"]


def test_evaluate_needs_a_trained_run(tmp_path):
    result = run_module("unet_industrial.train", "--exec_mode=evaluate", f"--run_dir={tmp_path}",
                        "--synthetic_data", timeout=120)
    assert result.returncode == 2
    assert "has no best checkpoint" in result.stderr


def test_flags_come_from_a_flagfile(tmp_path):
    run_dir = tmp_path / "run"
    flagfile = tmp_path / "tiny.flags"
    flagfile.write_text("\n".join(["--exec_mode=train", "--num_iter=2", "--save_every=2", "--seed=7",
                                   *TINY_FLAGS]) + "\n")
    result = run_module("unet_industrial.train", f"--flagfile={flagfile}", f"--run_dir={run_dir}")
    assert result.returncode == 0, result.stderr
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["num_iter"], config["seed"], config["input_size"], config["batch_size"]) == (2, 7, 32, 2)


def _wait_for_checkpoint(run_dir, process, timeout=300):
    state_path = run_dir / "checkpoints" / "train_state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["step"] >= 10:
            return json.loads(state_path.read_text())
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def _metric_lines(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_kill_continues_the_step_count(tmp_path):
    run_dir = tmp_path / "run"
    flags = ["--exec_mode=train_and_evaluate", "--num_iter=100000", "--save_every=5", *TINY_FLAGS]
    process = subprocess.Popen(
        [sys.executable, "-m", "unet_industrial.train", f"--run_dir={run_dir}", *flags], cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        _wait_for_checkpoint(run_dir, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    state = json.loads((run_dir / "checkpoints" / "train_state.json").read_text())
    saved_step = state["step"]
    config_before = (run_dir / "config.json").read_bytes()
    lines_before = (run_dir / "metrics.jsonl").read_text().splitlines()
    best_before = (run_dir / "checkpoints" / "best.keras").stat().st_size

    target = saved_step + 4
    # Only --resume, the run folder and the new length: the rest comes from the run's config.json.
    result = run_module("unet_industrial.train", "--resume", f"--run_dir={run_dir}", f"--num_iter={target}")
    assert result.returncode == 0, result.stderr
    assert f"resuming {run_dir} at step {saved_step}" in result.stderr

    assert (run_dir / "config.json").read_bytes() == config_before
    assert len(list(run_dir.glob("config-resumed-*.json"))) == 1
    lines_after = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert lines_after[:len(lines_before)] == lines_before  # earlier records intact
    new_lines = [json.loads(line) for line in lines_after[len(lines_before):]]
    assert [line["step"] for line in new_lines if line["split"] == "train"] == list(range(saved_step + 1, target + 1))
    assert [line["step"] for line in new_lines if line["split"] == "eval"] == [target]
    assert json.loads((run_dir / "checkpoints" / "train_state.json").read_text())["step"] == target
    assert (run_dir / "checkpoints" / "best.keras").stat().st_size == pytest.approx(best_before, rel=0.01)
    # The resumed run went on with the saved configuration (an evaluating run).
    resumed = json.loads(next(run_dir.glob("config-resumed-*.json")).read_text())["config"]
    assert resumed["exec_mode"] == "train_and_evaluate" and resumed["num_iter"] == target


def test_job_router_names_unknown_jobs():
    result = run_module("unet_industrial", "fly", timeout=60)
    assert result.returncode == 2
    assert "unknown job 'fly'" in result.stderr and "train" in result.stderr
