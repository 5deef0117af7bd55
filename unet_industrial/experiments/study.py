"""Generalisation studies: train on one part of the data, evaluate on the held-out parts.

`python -m unet_industrial.study` runs them. A study trains several models on
one prepared records folder (`data_pipeline.prepare`'s train-*, val-*,
test-* shards and manifest.json), each in a run folder of its own under the
study folder, calibrates each on val, evaluates each on the whole test split,
and reads the cells of its matrix from the test reports' breakdowns:

  cross_manipulation: one model on every fake method, and one per method
    trained without it (leave one method out; real examples always kept).
    Cell (row, column): frame ROC AUC of the column method's test fakes
    against every real test example, for the row's model. The diagonal of
    the leave-one-out rows is the unseen-method figure.
  cross_compression: one model per compression of the records, trained on
    that compression alone; cell: frame ROC AUC on the column compression's
    test examples (FF++'s protocol trains on c23 and tests on c0, c23, c40).
  segmentation_vs_classification: the segmenter and a classifier trained
    on the same records; columns: every method and all of them together.

The two cross protocols train the --model_kind given (the segmenter by
default), so each also runs for a classifier.

The study folder receives study.json (the configuration, every run folder,
every figure), matrix.md (frame and video ROC AUC as markdown tables) and
matrix.png (the frame AUC matrix as a heat map). A study started again with
the same folder and configuration reuses the runs that have a test report
and continues an interrupted one from its last checkpoint.
"""

import dataclasses
import json
import os

from absl import logging

from data_pipeline import files
from unet_industrial import config as config_lib
from unet_industrial import run_files
from unet_industrial.config import ConfigError

PROTOCOLS = ("cross_manipulation", "cross_compression", "segmentation_vs_classification")
STUDY_RECORD = "study.json"
# Test-report sections that a matrix cell can come from.
_LEVELS = ("frame", "video")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A study: which protocol, on which records, into which folder, with which training recipe.

    The recipe is the demo's (balanced real and fake examples, flips and
    quarter turns, bfloat16 mixed precision, centered RMSProp, adaptive
    loss), shortened to CPU-sized models (timings: docs/results.md).

    Attributes:
      protocol: one of PROTOCOLS.
      data_dir: the prepared records folder.
      run_dir: the study folder.
      num_iter, batch_size, learning_rate, learning_rate_decay_steps: training.
      pseudo_fakes, pseudo_fake_ratio: as in TrainConfig, for every model.
      model_kind: what the cross protocols train ("segmenter" or "classifier").
      classifier, weights: the classifier's backbone and initial weights
        (EfficientNet-B0 by default: it takes the demo's 64-pixel crops,
        Xception needs 71 pixels or more).
      seed: seeds every model's initialisation and data order.
    """

    protocol: str
    data_dir: str
    run_dir: str
    num_iter: int = 1500
    batch_size: int = 16
    learning_rate: float = 3e-4
    learning_rate_decay_steps: int = 500
    pseudo_fakes: str = "none"
    pseudo_fake_ratio: float = 0.5
    model_kind: str = "segmenter"
    classifier: str = "efficientnet_b0"
    weights: str = "none"
    seed: int = 0

    def records(self, split):
        return os.path.join(self.data_dir, f"{split}-*.tfrecord")


def read_manifest(data_dir):
    """The manifest.json that `data_pipeline.prepare` wrote into a records folder.

    Raises:
      ConfigError: naming the folder, when it holds no manifest.
    """
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        raise ConfigError(f"--data_dir={data_dir!r} holds no manifest.json: "
                          "give a folder that data_pipeline.prepare wrote")
    with open(path) as f:
        return json.load(f)


def _kind_overrides(config, model_kind):
    if model_kind == "segmenter":
        return {}
    return {"model_kind": "classifier", "classifier": config.classifier, "weights": config.weights}


def plan(config, manifest):
    """The models a study trains: a list of (name, TrainConfig overrides).

    Raises:
      ConfigError: when the records cannot support the protocol.
    """
    if config.protocol == "segmentation_vs_classification":
        return [("segmenter", {}), (f"classifier-{config.classifier}", _kind_overrides(config, "classifier"))]
    kind = _kind_overrides(config, config.model_kind)
    if config.protocol == "cross_manipulation":
        methods = config_lib.held_in_manifest(manifest, "method", "train")
        if len(methods) < 2:
            raise ConfigError(f"cross_manipulation needs fakes of at least two methods; "
                              f"{config.data_dir!r} has {methods or 'none'}")
        return [("all-methods", kind)] + [
            (f"without-{method}", {"train_methods": ",".join(m for m in methods if m != method), **kind})
            for method in methods]
    if config.protocol == "cross_compression":
        compressions = config_lib.held_in_manifest(manifest, "compression", "train")
        if len(compressions) < 2:
            raise ConfigError(f"cross_compression needs records of at least two compressions; "
                              f"{config.data_dir!r} has {compressions or 'none'} (prepare the corpus "
                              "with --compressions=c0,c23,c40)")
        return [(f"train-{compression}", {"train_compressions": compression, **kind})
                for compression in compressions]
    raise ConfigError(f"--protocol={config.protocol!r} is not one of {', '.join(PROTOCOLS)}")


def columns(config, manifest):
    """The matrix's columns: (title, report breakdown, key) for each cell of a row."""
    if config.protocol == "cross_compression":
        return [(compression, "by_compression", compression)
                for compression in config_lib.held_in_manifest(manifest, "compression", "test")]
    return [(method, "by_method", method)
            for method in config_lib.held_in_manifest(manifest, "method", "test")]


def validate(config):
    """Raises ConfigError naming the first problem of a StudyConfig, before anything is written."""
    if config.protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol={config.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    for name in ("num_iter", "batch_size", "learning_rate", "learning_rate_decay_steps"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name} must be positive, got {getattr(config, name)}")
    manifest = read_manifest(config.data_dir)
    for split in ("train", "val", "test"):
        if not manifest["shards"].get(split):
            raise ConfigError(f"--data_dir={config.data_dir!r} has no {split} shards")
    for _, model in models(config, manifest):
        config_lib.validate(model)
    record = os.path.join(config.run_dir, STUDY_RECORD)
    if os.path.isfile(record):
        with open(record) as f:
            earlier = json.load(f)["config"]
        if earlier != dataclasses.asdict(config):
            raise ConfigError(f"--run_dir={config.run_dir!r} holds a study with another configuration; "
                              "choose a new --run_dir")
    elif os.path.isdir(config.run_dir) and os.listdir(config.run_dir):
        raise ConfigError(f"--run_dir={config.run_dir!r} is not empty and holds no study; choose a new one")


def train_config(config, manifest, name, overrides):
    """The TrainConfig of one model of the study: the demo's recipe on the study's records."""
    from unet_industrial.experiments import demo

    recipe = demo.train_config(demo.DemoConfig(
        workdir=config.run_dir, image_size=manifest["config"]["image_size"], batch_size=config.batch_size,
        num_iter=config.num_iter, learning_rate=config.learning_rate,
        learning_rate_decay_steps=config.learning_rate_decay_steps, seed=config.seed))
    return dataclasses.replace(
        recipe, run_dir=os.path.join(config.run_dir, name), train_pattern=config.records("train"),
        eval_pattern=config.records("val"), pseudo_fakes=config.pseudo_fakes,
        pseudo_fake_ratio=config.pseudo_fake_ratio, **overrides)


def models(config, manifest):
    """(name, TrainConfig) of every model the study trains, in order."""
    return [(name, train_config(config, manifest, name, overrides))
            for name, overrides in plan(config, manifest)]


def _train_and_test(config, train_config):
    """Trains (or continues, or reuses) one model, calibrates it on val and returns its test report."""
    from unet_industrial import evaluation
    from unet_industrial.training import jobs

    run = train_config.run_dir
    report = os.path.join(run, "eval", "test", "report.json")
    if os.path.isfile(report):
        logging.info("reusing %s", report)
        with open(report) as f:
            return json.load(f)
    resume = os.path.isfile(run_files.checkpoint_path(run, "last"))
    logging.info("%s %s", "continuing" if resume else "training", run)
    jobs.run(dataclasses.replace(train_config, resume=resume), run)
    evaluation.evaluate(evaluation.EvalConfig(run, config.records("val"), split="val", calibrate=True))
    return evaluation.evaluate(evaluation.EvalConfig(run, config.records("test"), split="test"))


def _cell(report, level, breakdown, key):
    figures = report[level][breakdown].get(key)
    return figures["roc_auc"] if figures else None


def matrix_markdown(title, rows, column_titles):
    """A markdown table: one row per (name, values); None shows as a dash."""
    lines = [f"| {title} | " + " | ".join(column_titles) + " |", "|---" * (len(column_titles) + 1) + "|"]
    for name, values in rows:
        cells = ["-" if value is None else f"{value:.3f}" for value in values]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_heat_map(path, title, rows, column_titles):
    """The matrix as an annotated heat map (AUC from 0.5, chance, to 1)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.array([[np.nan if value is None else value for value in row] for _, row in rows])
    figure = Figure(figsize=(1.4 + 1.2 * len(column_titles), 1.0 + 0.5 * len(rows)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(column_titles)), column_titles, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), [name for name, _ in rows])
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            axes.text(column, row, f"{value:.3f}", ha="center", va="center",
                      color="black" if value > 0.8 else "white", fontsize=8)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="ROC AUC")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def run(config):
    """Runs a study (see the module docstring) and returns its study.json record.

    Raises:
      ConfigError: for bad input, before anything is written.
    """
    validate(config)
    manifest = read_manifest(config.data_dir)
    planned = models(config, manifest)
    os.makedirs(config.run_dir, exist_ok=True)
    record = {"config": dataclasses.asdict(config), "runs": {}}
    files.write_json(os.path.join(config.run_dir, STUDY_RECORD), record)
    table = columns(config, manifest)
    titles = [title for title, _, _ in table] + ["all"]
    matrices = {level: [] for level in _LEVELS}
    for number, (name, model) in enumerate(planned, 1):
        logging.info("[%d/%d] %s", number, len(planned), name)
        report = _train_and_test(config, model)
        record["runs"][name] = {"run_dir": model.run_dir, "model_kind": model.model_kind,
                                "train_methods": model.train_methods,
                                "train_compressions": model.train_compressions}
        for level in _LEVELS:
            values = [_cell(report, level, breakdown, key) for _, breakdown, key in table] + [
                report[level]["roc_auc"]]
            matrices[level].append((name, values))
            record["runs"][name][level] = dict(zip(titles, values))
        files.write_json(os.path.join(config.run_dir, STUDY_RECORD), record)
    markdown = [f"# {config.protocol} on {config.data_dir}", ""]
    for level in _LEVELS:
        markdown += [f"{level.capitalize()} ROC AUC on the test split (rows: training; columns: test part).",
                     "",
                     matrix_markdown("trained", matrices[level], titles), ""]
    files.atomic_write(os.path.join(config.run_dir, "matrix.md"), "\n".join(markdown))
    write_heat_map(os.path.join(config.run_dir, "matrix.png"), f"{config.protocol}: frame ROC AUC",
                   matrices["frame"], titles)
    logging.info("study written to %s:\n%s", config.run_dir, "\n".join(markdown))
    return record
