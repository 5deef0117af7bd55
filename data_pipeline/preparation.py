"""`prepare`: a dataset on disk -> sharded TFRecords per split and a manifest."""

import collections
import dataclasses
import datetime
import json
import os
import time

from absl import logging

from data_pipeline import extract, files, layouts, recipe, tracking
from data_pipeline.config import PrepareError
from data_pipeline.provenance import git_commit
from data_pipeline.runners import shards


def _read_own_json(path):
    """A JSON file an earlier prepare left in --out_dir.

    Raises:
      PrepareError: for one that cannot be read: prepare writes these
        files whole (by renaming), so the folder is not one it left.
    """
    try:
        with open(path) as f:
            value = json.load(f)
        problem = None if isinstance(value, dict) else f"a {type(value).__name__}, not an object"
    except (OSError, ValueError, RecursionError) as error:
        problem = str(error)
    if problem:
        raise PrepareError(f"{path} cannot be read ({problem}): the folder is not one prepare left; "
                           "use a new --out_dir")
    return value


def _load_manifest(out_dir):
    path = os.path.join(out_dir, shards.MANIFEST)
    if not os.path.exists(path):
        return None
    return _read_own_json(path)


def _check_reuse(config, out_dir):
    """Refuses an output folder prepared with other record-changing options."""
    options_path = os.path.join(out_dir, shards.WORK_DIR, "options.json")
    options = config.output_options()
    if os.path.exists(options_path):
        previous = _read_own_json(options_path)
        if previous != json.loads(json.dumps(options)):
            changed = sorted(k for k in options if previous.get(k) != json.loads(json.dumps(options[k])))
            raise PrepareError(f"--out_dir={out_dir!r} was prepared with other options "
                               f"({', '.join(changed)}); use a new --out_dir")
    else:
        files.write_json(options_path, options)


def _counts(results):
    examples = collections.defaultdict(lambda: collections.defaultdict(int))
    videos = collections.defaultdict(lambda: collections.defaultdict(int))
    for result in results:
        if result["status"] != "ok":
            continue
        label = "fake" if result["label"] == layouts.FAKE else "real"
        for key in (f"label/{label}", f"method/{result['method']}", f"compression/{result['compression']}"):
            examples[result["split"]][key] += result["examples"]
            videos[result["split"]][key] += 1
        if result.get("label_only"):
            examples[result["split"]]["label_only"] += result["examples"]
            videos[result["split"]]["label_only"] += 1
        examples[result["split"]]["total"] += result["examples"]
        videos[result["split"]]["total"] += 1
    return {"examples": {k: dict(v) for k, v in examples.items()},
            "videos": {k: dict(v) for k, v in videos.items()}}


def _speed(results, wall_seconds):
    """How fast this run went, and where the time went.

    Args:
      results: the result dicts of the videos this run processed (not those an earlier run finished).
      wall_seconds: the run's time processing them and writing the shards.

    Returns:
      frames, wall_seconds and frames_per_second (frames over wall-clock
      seconds: what the user waited, whatever the worker count), and
      worker_seconds and seconds_by_stage summed over the workers.
    """
    stages = collections.Counter()
    for result in results:
        stages.update(result.get("seconds_by_stage", {}))
    frames = sum(result["frames"] for result in results)
    return {"frames": frames, "wall_seconds": round(wall_seconds, 2),
            "frames_per_second": round(frames / wall_seconds, 2) if frames else None,
            "worker_seconds": round(sum(result.get("seconds", 0.0) for result in results), 2),
            "seconds_by_stage": {name: round(value, 2) for name, value in sorted(stages.items())}}


def crop_recipe(config):
    """The recipe.CropRecipe a PrepareConfig cuts its crops with."""
    return recipe.CropRecipe(image_size=config.image_size, crop_scale=config.crop_scale,
                             frames_per_video=config.frames_per_video, frame_stride=config.frame_stride,
                             detect_every=config.detect_every, detection_max_side=tracking.DETECTION_MAX_SIDE)


def _beam_runner():
    """data_pipeline.runners.beam, imported only for --runner=beam: Beam is an optional dependency."""
    try:
        from data_pipeline.runners import beam
    except ModuleNotFoundError as error:
        if error.name != "apache_beam":
            raise
        raise PrepareError("--runner=beam needs Apache Beam: pip install -r requirements-beam.txt") from error
    return beam


def _log(result):
    if result["status"] != "ok":
        logging.warning("skipping %s: %s (%s)", result["video_id"], result["reason"], result["detail"])
    elif result["note"]:
        logging.info("%s: %s", result["video_id"], result["note"])


def prepare(config):
    """Runs preparation for a validated PrepareConfig and returns the manifest.

    Rerunning on the same folder skips finished videos; a folder prepared
    with other record-changing options is refused. config.runner picks who
    runs the per-video work and writes the shards: processes on this machine
    (shards.process_all, shards.write_shards) or a Beam pipeline
    (beam.run); both give the same shards.

    Raises:
      PrepareError: for a folder that is not of the layout, or reused with
        other options; for --runner=beam, Beam missing or an unknown Beam
        runner.
    """
    started = time.perf_counter()
    if config.runner == "beam":
        # Before the scan, so that a bad Beam set-up fails at once.
        beam = _beam_runner()
        beam_options = beam.pipeline_options(config.beam_runner, config.beam_options)
    try:
        scan = layouts.scan(config.layout, config.data_dir,
                            **({"compressions": config.compressions, "methods": config.methods}
                               if config.layout == "ffpp" else {}))
    except layouts.LayoutError as error:
        raise PrepareError(str(error)) from error
    items = scan.items[:config.max_videos] if config.max_videos else scan.items
    for skip in scan.skipped:
        logging.warning("skipping %s: %s %s", skip.video_id, skip.reason, skip.detail)
    os.makedirs(config.out_dir, exist_ok=True)
    _check_reuse(config, config.out_dir)
    work_dir = os.path.join(config.out_dir, shards.WORK_DIR)

    previous = _load_manifest(config.out_dir)
    finished_before = {item.video_id for item in items if shards.read_result(work_dir, item.video_id)}
    processing_started = time.perf_counter()
    if config.runner == "beam":
        results, shard_names = beam.run(items, extract.extract_video, (config,), config.out_dir,
                                        config.examples_per_shard, beam_options)
        for result in results:
            _log(result)
    else:
        results = []
        for result in shards.process_all(items, extract.extract_video, (config,), work_dir,
                                         config.num_workers):
            _log(result)
            results.append(result)
        shard_names = shards.write_shards(config.out_dir, results, config.examples_per_shard)
    processing_seconds = time.perf_counter() - processing_started
    shards.remove_stale_shards(config.out_dir, previous, shard_names)
    extract.remove_kept_crops(config.out_dir)

    skipped = [{"video_id": s.video_id, "reason": s.reason, "detail": s.detail} for s in scan.skipped]
    skipped += [{"video_id": r["video_id"], "reason": r["reason"], "detail": r["detail"]}
                for r in results if r["status"] != "ok"]
    manifest = {
        "config": dataclasses.asdict(config),
        "code_version": git_commit(),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        recipe.RECIPE_KEY: crop_recipe(config).to_dict(),
        "counts": _counts(results),
        "skipped": {"by_reason": dict(collections.Counter(s["reason"] for s in skipped)), "videos": skipped},
        "mask_empty": sorted(r["video_id"] for r in results if r.get("mask_empty")),
        # Fakes without their original: in frame and video figures, never in pixel ones or mask training.
        "label_only": sorted(r["video_id"] for r in results if r["status"] == "ok" and r.get("label_only")),
        "notes": {r["video_id"]: r["note"] for r in results if r.get("note")},
        "speed": _speed([r for r in results if r["video_id"] not in finished_before], processing_seconds),
        "shards": shard_names,
    }
    files.write_json(os.path.join(config.out_dir, shards.MANIFEST), manifest)
    return manifest
