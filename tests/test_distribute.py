"""--distribution: mirrored replicas train as one device does; two workers write one run; bad set-ups fail.

TensorFlow fixes its devices and its cluster when it starts, so distributed
runs happen in subprocesses: one that first splits the CPU into two logical
devices, and one process per worker with its own TF_CONFIG.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile

import pytest
from conftest import REPO_ROOT, run_module, write_shards

from unet_industrial.config import ConfigError, TrainConfig, resolve, validate

# Per-step losses of two replicas with batch 2 against one device with batch 4.
# The same examples reach the same weights, but float32 sums run in another
# order (each replica sums its half of the batch, the all-reduce adds the
# halves): that moves the values by about 1e-7 relative here. A wrong global
# batch, loss scaling or L2 term moves the first step's loss by more than 1e-3.
RTOL, ATOL = 1e-5, 1e-6
COMPARED = ("loss", "reconstruction_loss", "dice@0.5", "iou@0.5")

# Splits the CPU into two logical devices (with no GPU visible, "mirrored"
# mirrors over them), then runs the jobs given as JSON [TrainConfig fields].
_ON_TWO_CPUS = """
import json, sys
import tensorflow as tf
tf.config.set_visible_devices([], "GPU")
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from unet_industrial.training import jobs
from unet_industrial.config import TrainConfig, validate
for fields in json.loads(sys.argv[1]):
    config = TrainConfig(**fields)
    validate(config)
    jobs.run(config, config.run_dir)
"""

TINY = dict(exec_mode="train", input_size=32, save_every=3, log_every=1, seed=1)


def _lines(run_dir, split="train"):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [line for line in map(json.loads, f) if line["split"] == split]


def _record(run_dir, name="config.json"):
    with open(os.path.join(run_dir, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    """One device with batch 4, two mirrored replicas with batch 2 each, and the mirrored run resumed."""
    root = tmp_path_factory.mktemp("mirrored")
    # One shard and no example shuffling: under a strategy Keras draws a
    # batch from a throwaway iterator before training, and the reader
    # reshuffles files and examples on every new iterator.
    pattern = write_shards(str(root / "data"), "train", 16, num_shards=1)
    common = dict(TINY, train_pattern=pattern, shuffle_buffer=1, loss_fn_name="bce", num_iter=3)
    one, two = str(root / "one-device"), str(root / "mirrored")
    jobs = [dict(common, batch_size=4, run_dir=one),
            dict(common, batch_size=2, distribution="mirrored", run_dir=two),
            dict(common, batch_size=2, distribution="mirrored", run_dir=two, resume=True, num_iter=5)]
    result = subprocess.run([sys.executable, "-c", _ON_TWO_CPUS, json.dumps(jobs)], cwd=REPO_ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return one, two


def test_two_mirrored_replicas_give_the_losses_of_one_device_with_the_same_global_batch(mirrored_runs):
    one, two = mirrored_runs
    assert _record(one)["distribution"] == {"distribution": "none", "replicas": 1, "workers": 1,
                                            "global_batch_size": 4}
    assert _record(two)["distribution"] == {"distribution": "mirrored", "replicas": 2, "workers": 1,
                                            "global_batch_size": 4}
    single, mirrored = _lines(one), _lines(two)[:3]
    assert [line["step"] for line in single] == [line["step"] for line in mirrored] == [1, 2, 3]
    for name in COMPARED:
        assert [line[name] for line in mirrored] == pytest.approx([line[name] for line in single],
                                                                  rel=RTOL, abs=ATOL), name
    # Training moved the weights: equal losses are not three copies of the initial one.
    assert single[0]["loss"] != pytest.approx(single[2]["loss"], rel=1e-3)


def test_a_mirrored_run_resumes_from_its_last_checkpoint(mirrored_runs):
    _, two = mirrored_runs
    assert [line["step"] for line in _lines(two)] == [1, 2, 3, 4, 5]
    state = _record(two, os.path.join("checkpoints", "train_state.json"))
    assert state["step"] == 5 and state["global_batch_size"] == 4
    resumed = [name for name in os.listdir(two) if name.startswith("config-resumed-")]
    assert len(resumed) == 1
    assert _record(two, resumed[0])["distribution"]["replicas"] == 2


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_workers_train_and_only_the_chief_writes_one_run_folder(tiny_tfrecords, tmp_path):
    train_pattern, eval_pattern = tiny_tfrecords  # two training shards: one per worker
    run_dir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    flags = ["--exec_mode=train_and_evaluate", "--distribution=multi_worker",
             f"--train_pattern={train_pattern}", f"--eval_pattern={eval_pattern}", "--input_size=32",
             "--batch_size=2", "--num_iter=2", "--save_every=2", "--log_every=1", f"--run_dir={run_dir}"]
    workers, logs = [], []
    for index in range(2):
        # Each worker in a folder of its own, to show that it leaves nothing behind.
        cwd = tmp_path / f"worker{index}"
        cwd.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": tf_config, "PYTHONPATH": REPO_ROOT}
        logs.append(tempfile.TemporaryFile("w+"))  # a file, not a pipe that could fill and stall a worker
        workers.append(subprocess.Popen([sys.executable, "-m", "unet_industrial.train", *flags], cwd=cwd,
                                        env=env, stdout=subprocess.DEVNULL, stderr=logs[-1], text=True))
    try:
        for worker in workers:
            worker.wait(timeout=300)
    finally:
        for worker in workers:  # a hung collective fails the test instead of blocking it
            worker.kill()
            worker.wait()
    errors = []
    for log in logs:
        log.seek(0)
        errors.append(log.read())
        log.close()
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(error[-3000:] for error in errors)

    assert sorted(os.listdir(tmp_path)) == ["run", "worker0", "worker1"]
    assert os.listdir(tmp_path / "worker0") == os.listdir(tmp_path / "worker1") == []
    assert sorted(os.listdir(run_dir)) == ["checkpoints", "config.json", "metrics.jsonl", "tb"]
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["best.keras", "last.keras", "train_state.json"]
    for split in ("train", "eval"):  # one writer, so one event file each
        assert len(os.listdir(run_dir / "tb" / split)) == 1
    assert _record(run_dir)["distribution"] == {"distribution": "multi_worker", "replicas": 2, "workers": 2,
                                                "global_batch_size": 4}
    # Written once (by the chief), not once per worker.
    assert [line["step"] for line in _lines(run_dir)] == [1, 2]
    assert [line["step"] for line in _lines(run_dir, "eval")] == [2]
    assert _record(run_dir, os.path.join("checkpoints", "train_state.json"))["step"] == 2
    assert "global batch 4 (2 per replica x 2 replicas on 2 worker(s)" in errors[0]


@pytest.mark.parametrize("fields, message", [
    (dict(distribution="horovod"), "--distribution='horovod' is not one of none, mirrored, multi_worker"),
    (dict(distribution="mirrored", exec_mode="evaluate", run_dir="runs/x"),
     "--distribution=mirrored is for --exec_mode train or train_and_evaluate; --exec_mode=evaluate runs on"),
    (dict(distribution="multi_worker", exec_mode="training_benchmark", warmup_step=1, num_iter=2),
     "--exec_mode=training_benchmark runs on one device"),
])
def test_bad_distribution_settings_are_refused(fields, message):
    with pytest.raises(ConfigError) as error:
        validate(TrainConfig(synthetic_data=True, **fields))
    assert message in str(error.value)


def test_resume_takes_the_distribution_from_the_command_line():
    values = {**dataclasses.asdict(TrainConfig()), "resume": True, "run_dir": "runs/x"}
    saved = {**dataclasses.asdict(TrainConfig()), "distribution": "mirrored", "batch_size": 8}
    config = resolve(values, present=["resume", "run_dir"], saved=saved)
    assert (config.distribution, config.batch_size) == ("none", 8)


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs TF_CONFIG, JSON naming the cluster and this task"),
    ("{not json", "got '{not json'"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}',
     "'ps' must be 'chief' or 'worker'"),
])
def test_multi_worker_needs_a_usable_tf_config(monkeypatch, tf_config, message):
    from unet_industrial.training import distribute

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError) as error:
        distribute.for_config(TrainConfig(distribution="multi_worker"))
    assert message in str(error.value)


def test_fewer_training_files_than_workers_is_one_clear_error(tiny_tfrecords):
    from data_pipeline import reader

    train_pattern, _ = tiny_tfrecords
    with pytest.raises(FileNotFoundError) as error:
        reader.make_dataset(train_pattern, image_size=32, channels=3, batch_size=2, training=True,
                            worker=(0, 3))
    assert f"{train_pattern!r} matches 2 file(s), fewer than the 3 workers" in str(error.value)


def test_each_worker_reads_its_own_files(tiny_tfrecords):
    from data_pipeline import reader

    train_pattern, _ = tiny_tfrecords
    files = reader.list_files(train_pattern)
    for index, path in enumerate(files):
        dataset = reader.make_dataset(train_pattern, image_size=32, channels=3, batch_size=1, training=False,
                                      worker=(index, len(files)))
        expected = reader.make_dataset(path, image_size=32, channels=3, batch_size=1, training=False)
        assert [m.numpy().sum() for _, m in dataset] == [m.numpy().sum() for _, m in expected]


def test_distribution_under_jax_is_one_line_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    result = run_module("unet_industrial.train", "--distribution=mirrored", "--synthetic_data",
                        "--num_iter=1", f"--run_dir={run_dir}", env={"KERAS_BACKEND": "jax"}, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: --distribution=mirrored needs the TensorFlow Keras backend "
                     "(KERAS_BACKEND=tensorflow); this run uses jax"], result.stderr
    assert not run_dir.exists()
