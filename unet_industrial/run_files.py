"""Run folders: creation, the refusal to reuse one, atomic files and provenance.

A run folder `runs/<name>/` holds everything a job wrote: `config.json` (the
resolved config, package versions, git commit), `metrics.jsonl`, TensorBoard
events under `tb/`, checkpoints under `checkpoints/`, and reports.
"""

import dataclasses
import datetime
import json
import os
import platform
import sys

from data_pipeline import recipe as recipe_lib
from data_pipeline.files import write_json
from data_pipeline.provenance import git_commit, package_versions
from unet_industrial.config import CHECKPOINTS, ConfigError

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
TRAIN_STATE = "train_state.json"
CONFIG = "config.json"
# The detector that ships with the package: a run folder (model, calibration,
# crop recipe, model card) that detect, evaluate and serve use when given no --run_dir.
SHIPPED_RUN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained", "ffpp_c23")


def default_run_dir(exec_mode, now=None):
    """runs/<exec_mode>-<UTC timestamp>, relative to the working directory."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return os.path.join("runs", f"{exec_mode}-{now:%Y%m%d-%H%M%S}")


def check_run_folder(run_dir, checkpoint):
    """Refuses a --run_dir that is not a folder, or a --checkpoint that is not a choice, in one line.

    The shipped detector's folder is named as such, since a user who gave no
    --run_dir did not name it.
    """
    if not os.path.isdir(run_dir):
        if os.path.abspath(run_dir) == SHIPPED_RUN_DIR:
            raise ConfigError(f"the shipped detector {run_dir} is missing from this installation; "
                              "name a trained run with --run_dir")
        raise ConfigError(f"--run_dir={run_dir!r} is not a folder")
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"--checkpoint={checkpoint!r} is not one of {', '.join(CHECKPOINTS)}")


def checkpoint_path(run_dir, which):
    """Path of the "last" or "best" checkpoint of a run."""
    name = {"last": LAST_CHECKPOINT, "best": BEST_CHECKPOINT}[which]
    return os.path.join(run_dir, CHECKPOINT_DIR, name)


def train_state_path(run_dir):
    """The JSON file with the step and best evaluation of a run's checkpoints."""
    return os.path.join(run_dir, CHECKPOINT_DIR, TRAIN_STATE)


def check_run_dir(run_dir, resume, needs_checkpoint=None):
    """Checks that a job may use `run_dir`, before anything is written.

    Args:
      run_dir: the folder.
      resume: whether the job continues an earlier run there.
      needs_checkpoint: "last" or "best" when the job reads that checkpoint.

    Raises:
      ConfigError: reusing a non-empty folder without --resume, or resuming /
        reading a run that has no such checkpoint.
    """
    if needs_checkpoint or resume:
        which = needs_checkpoint or "last"
        if not os.path.exists(checkpoint_path(run_dir, which)):
            raise ConfigError(f"--run_dir={run_dir!r} has no {which} checkpoint "
                              f"({CHECKPOINT_DIR}/{os.path.basename(checkpoint_path(run_dir, which))})")
        return
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(f"--run_dir={run_dir!r} is not empty; pass --resume to continue that run "
                          "or choose a new --run_dir")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def append_jsonl(path, record):
    """Appends one JSON line; each line is flushed whole so a crash loses at most one."""
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True, default=float) + "\n")
        f.flush()


def provenance():
    """What, besides the config, a reader needs to reproduce a run."""
    import keras  # Imported here: config validation must not pay for Keras.

    return {
        "command": sys.argv,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "keras_backend": keras.backend.backend(),
        "host": platform.node(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def saved_config(run_dir):
    """The config dict a run was started with, or None if the folder has none."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(path):
        return None
    try:
        return read_json(path)["config"]
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"cannot read the saved configuration {path}: {error}") from error


def crop_recipe(run_dir, calibration=None):
    """The crop recipe a run's crops are cut by, as a CropRecipe; None if it records none.

    It is the calibration's (a `verdicts.Calibration`) when given and holding
    one, else the one training copied into the run's config.json (a
    calibration written before recipes were kept has none).
    """
    if calibration is not None and calibration.recipe is not None:
        return calibration.recipe
    path = os.path.join(run_dir, CONFIG)
    stored = read_json(path).get(recipe_lib.RECIPE_KEY) if os.path.exists(path) else None
    return None if stored is None else recipe_lib.CropRecipe.from_dict(stored, path)


def model_kind(run_dir):
    """The --model_kind a run was trained with: "segmenter" for runs from before classifiers existed."""
    return (saved_config(run_dir) or {}).get("model_kind", "segmenter")


def record_start(run_dir, config, **facts):
    """Writes config.json for a new run, or config-resumed-<time>.json for a resumed one.

    The record holds the resolved config, its provenance and `facts` (say,
    the distribution and global batch of a training run); an earlier record
    is never overwritten.
    """
    record = {"config": dataclasses.asdict(config), **provenance(), **facts}
    name = CONFIG
    if os.path.exists(os.path.join(run_dir, CONFIG)):
        name = f"config-resumed-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}.json"
    write_json(os.path.join(run_dir, name), record)
