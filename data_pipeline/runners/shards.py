"""Resumable, parallel preparation: per-video work files, then split shards and a manifest.

Phase 1 processes each video into `<out_dir>/.work/<key>.tfrecord` plus a
small `<key>.json` result (written last, through a rename: a video whose JSON
exists is finished, so a rerun skips it). Workers never share a file.

Phase 2 concatenates the finished videos of each split, in video-id order,
into `{split}-{i:05d}-of-{n:05d}.tfrecord` shards (TFRecord files concatenate
byte for byte) and writes `manifest.json`. Because the order depends only on
video ids, the shards are the same whatever the number of workers.
"""

import hashlib
import json
import math
import multiprocessing
import os
import re
import shutil
import time

from absl import logging
from tqdm import tqdm

from data_pipeline import files

WORK_DIR = ".work"
MANIFEST = "manifest.json"


def work_key(video_id):
    """A file-name-safe, collision-resistant name for a video's work files."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id)[-60:]
    return f"{hashlib.sha1(video_id.encode()).hexdigest()[:12]}-{readable}"


def read_result(work_dir, video_id):
    """The stored result of a finished video, or None."""
    path = os.path.join(work_dir, f"{work_key(video_id)}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_worker(item, worker, worker_args, work_dir):
    """Runs `worker(item, write, *worker_args) -> result dict` for one video.

    `write(serialized_example)` streams the video's records into its work
    file, so a long video never sits in memory. The records file is renamed
    into place first and the result JSON last: the JSON marks the video done.
    """
    import tensorflow as tf

    key = work_key(item.video_id)
    records_path = os.path.join(work_dir, f"{key}.tfrecord")
    with tf.io.TFRecordWriter(files.temporary_sibling(records_path)) as writer:
        result = worker(item, writer.write, *worker_args)
    os.replace(files.temporary_sibling(records_path), records_path)
    files.write_json(os.path.join(work_dir, f"{key}.json"), result)
    return result


def num_shards(num_examples, examples_per_shard):
    return max(1, math.ceil(num_examples / examples_per_shard))


def shard_name(split, index, count):
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def plan_shards(results, examples_per_shard):
    """Which videos go into which shard of each split, in the order they are written.

    The plan depends only on the ids and example counts of the usable videos,
    so any runner and any number of workers give the same shards.

    Args:
      results: result dicts of a run's videos; skipped ones and those
        without examples are left out.
      examples_per_shard: target examples per shard.

    Returns:
      {split: [(shard file name, [video id, ...]), ...]}.
    """
    usable = [r for r in results if r["status"] == "ok" and r["examples"]]
    plan = {}
    for split in sorted({result["split"] for result in usable}):
        videos = sorted((r for r in usable if r["split"] == split), key=lambda r: r["video_id"])
        count = num_shards(sum(r["examples"] for r in videos), examples_per_shard)
        # Videos go to shards by a hash of their id: balanced, and stable when a dataset grows.
        members = [[] for _ in range(count)]
        for result in videos:
            members[int(hashlib.sha1(result["video_id"].encode()).hexdigest(), 16) % count].append(
                result["video_id"])
        plan[split] = [(shard_name(split, index, count), ids) for index, ids in enumerate(members)]
    return plan


def shard_names(plan):
    """{split: [shard file names]} of a `plan_shards` plan."""
    return {split: [name for name, _ in split_shards] for split, split_shards in plan.items()}


def write_shard(out_dir, name, video_ids):
    """Concatenates the work files of `video_ids` into the shard `out_dir/name`, atomically."""
    work_dir = os.path.join(out_dir, WORK_DIR)
    tmp_path = files.temporary_sibling(os.path.join(out_dir, name))
    with open(tmp_path, "wb") as shard:
        for video_id in video_ids:
            with open(os.path.join(work_dir, f"{work_key(video_id)}.tfrecord"), "rb") as f:
                # Streamed: a densely sampled long video's records need not fit in memory.
                shutil.copyfileobj(f, shard)
    os.replace(tmp_path, os.path.join(out_dir, name))


def write_shards(out_dir, results, examples_per_shard):
    """Writes every shard of `plan_shards(results, examples_per_shard)` into out_dir.

    Args:
      out_dir: the output folder (work files under out_dir/.work).
      results: result dicts of a run's videos (see plan_shards).
      examples_per_shard: target examples per shard.

    Returns:
      {split: [shard file names]}.
    """
    plan = plan_shards(results, examples_per_shard)
    for split_shards in plan.values():
        for name, video_ids in split_shards:
            write_shard(out_dir, name, video_ids)
    return shard_names(plan)


def remove_stale_shards(out_dir, previous_manifest, current_shards):
    """Deletes shard files an earlier run of this folder wrote that this run no longer has.

    Only names listed in the earlier manifest are touched, so nothing the
    user put in the folder is ever removed.
    """
    keep = {name for names in current_shards.values() for name in names}
    for names in (previous_manifest or {}).get("shards", {}).values():
        for name in names:
            if name not in keep and os.path.exists(os.path.join(out_dir, name)):
                os.unlink(os.path.join(out_dir, name))


def worker_threads(num_workers, cores=None):
    """TensorFlow threads for each of `num_workers` worker processes: the cores shared among them, at least 1.

    Args:
      num_workers: worker processes on this machine.
      cores: the cores this process may run on; by default those the OS gives it.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // num_workers)


def _start_worker(threads):
    """Pool initializer: sizes the worker's TensorFlow thread pools before anything runs in it.

    TensorFlow sizes its pools to all the cores in every process, and idle
    pool threads spin before they sleep, so workers that each have every core
    take CPU from one another. One thread each for two workers on two cores
    made prepare faster for the same records (BENCHMARKS.md, "TensorFlow
    threads per worker").
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def process_all(items, worker, worker_args, work_dir, num_workers):
    """Runs `worker` (see run_worker) over the items not finished by an earlier run.

    With `num_workers` above 1 the items go to that many processes, each
    with its share of the cores for TensorFlow (`worker_threads`).

    Yields each finished video's result dict (earlier runs' results first).
    """
    todo = []
    for item in items:
        result = read_result(work_dir, item.video_id)
        if result is None:
            todo.append(item)
        else:
            yield result
    if not todo:
        return
    logging.info("%d videos to process (%d already done)", len(todo), len(items) - len(todo))
    progress = tqdm(total=len(todo), unit="video", smoothing=0.1, dynamic_ncols=True)
    frames, started = 0, time.perf_counter()
    if num_workers <= 1:
        outcomes = (run_worker(item, worker, worker_args, work_dir) for item in todo)
        pool = None
    else:
        # spawn, not fork: TensorFlow (inside MTCNN) is not fork-safe.
        pool = multiprocessing.get_context("spawn").Pool(num_workers, initializer=_start_worker,
                                                         initargs=(worker_threads(num_workers),))
        outcomes = pool.imap_unordered(_WorkerCall(worker, worker_args, work_dir), todo)
    try:
        for result in outcomes:
            frames += result.get("frames", 0)
            progress.update(1)
            progress.set_postfix(frames_per_s=f"{frames / (time.perf_counter() - started):.1f}")
            yield result
    finally:
        progress.close()
        if pool is not None:
            pool.terminate()


class _WorkerCall:
    """Picklable `item -> result` for a process pool."""

    def __init__(self, worker, worker_args, work_dir):
        self.worker, self.worker_args, self.work_dir = worker, worker_args, work_dir

    def __call__(self, item):
        return run_worker(item, self.worker, self.worker_args, self.work_dir)
