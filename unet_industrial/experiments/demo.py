"""The whole product on embedded data: corpus, records, training, calibration, evaluation, detection.

`python -m unet_industrial.demo` (and `make demo`) runs it. Every stage is
the library the real jobs use, called with a CPU-sized configuration, and
writes into one work folder:

    <workdir>/corpus/            the synthetic FF++-layout corpus (data_pipeline.synthetic)
    <workdir>/records/           TFRecords and manifest.json (data_pipeline.prepare)
    <workdir>/model/             the training run: checkpoints, TensorBoard, calibration.json,
                                 eval/test/report.json, overlays.png, ..., and
                                 eval/test-blur0.5/ (the test crops blurred by half a pixel)
    <workdir>/detect/            detect's JSON and overlay video for one fake and one real test video
"""

import dataclasses
import json
import os
import time

from absl import logging

from data_pipeline import synthetic
from data_pipeline.config import PrepareConfig
from unet_industrial.config import SIZE_MULTIPLE, ConfigError, TrainConfig

# The test split once more with its crops blurred by half a pixel, a softness
# any camera or re-encoding can add: the demo model calls every real test
# video fake then, and the table says so (docs/results.md, "Robustness"). The table
# names the blur from ROBUSTNESS_BLUR_PX, so the two cannot disagree.
ROBUSTNESS_BLUR_PX = 0.5
ROBUSTNESS_CHECK = f"blur:{ROBUSTNESS_BLUR_PX:g}"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults are sized for 2 CPU cores (timings: docs/results.md).

    Attributes:
      workdir: the folder everything goes to (must not exist or be empty).
      num_originals: originals of the synthetic corpus (split as FF++'s
        72/14/14 %, so 86 gives 62 training, 12 validation and 12 test
        originals, 72 videos each for validation and test). The more
        identities, the better the model generalises to unseen ones
        (docs/results.md, "What limits the demo's AUCs"); 86 is every
        photograph of the catalogue in which MTCNN finds a face.
      seconds: length of each synthetic video.
      frames_per_video: frames prepared per video.
      image_size: face crop side and model input.
      batch_size, num_iter, learning_rate, learning_rate_decay_steps: training.
      num_workers: preparation processes.
      seed: seeds the corpus and training.
    """

    workdir: str
    num_originals: int = 86
    seconds: float = 1.2
    frames_per_video: int = 12
    image_size: int = 64
    batch_size: int = 16
    num_iter: int = 4000
    learning_rate: float = 3e-4
    learning_rate_decay_steps: int = 1300
    num_workers: int = 2
    seed: int = 0

    @property
    def corpus_dir(self):
        return os.path.join(self.workdir, "corpus")

    @property
    def records_dir(self):
        return os.path.join(self.workdir, "records")

    @property
    def model_dir(self):
        return os.path.join(self.workdir, "model")

    @property
    def detect_dir(self):
        return os.path.join(self.workdir, "detect")

    def records(self, split):
        return os.path.join(self.records_dir, f"{split}-*.tfrecord")


def validate(config):
    """Raises ConfigError naming the first problem of a DemoConfig, before anything is written."""
    if os.path.exists(config.workdir) and (not os.path.isdir(config.workdir) or os.listdir(config.workdir)):
        raise ConfigError(f"--workdir={config.workdir!r} is not an empty folder; choose a new one")
    if config.image_size <= 0 or config.image_size % SIZE_MULTIPLE:
        raise ConfigError(f"--image_size={config.image_size} is not a positive multiple of {SIZE_MULTIPLE}")
    for name in ("num_iter", "num_workers"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name} must be positive")
    try:
        synthetic.make_config(num_originals=config.num_originals, seconds=config.seconds, seed=config.seed)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def prepare_config(config):
    """The preparation of the demo: derived masks (the product's method), not the corpus's true ones."""
    return PrepareConfig(layout="ffpp", data_dir=config.corpus_dir, out_dir=config.records_dir,
                         frames_per_video=config.frames_per_video, image_size=config.image_size,
                         mask_source="diff", num_workers=config.num_workers)


def train_config(config):
    """The training run of the demo: the reference recipe, CPU-sized.

    Real and fake crops are drawn 50/50 (the corpus has five fakes per
    original), and only flips and rotations augment them: the face policy's
    blur, noise and JPEG would drown the subtle fakes at 64 pixels in the
    few thousand steps a CPU allows. bfloat16 mixed precision trains faster
    on a CPU with AVX512_BF16 and reached the same validation Dice at the
    same step (docs/results.md, "The demo").
    """
    return TrainConfig(
        exec_mode="train_and_evaluate", input_size=config.image_size, input_channels=3,
        batch_size=config.batch_size, num_iter=config.num_iter, learning_rate=config.learning_rate,
        learning_rate_decay_steps=config.learning_rate_decay_steps, balance_classes=True,
        augmentation="reference", amp=True, amp_dtype="bfloat16",
        seed=config.seed, run_dir=config.model_dir, train_pattern=config.records("train"),
        eval_pattern=config.records("val"), save_every=max(1, config.num_iter // 5), log_every=50)


def _stage(number, title):
    logging.info("[%d/6] %s", number, title)
    return time.perf_counter()


def _test_videos(corpus_dir):
    """One fake and one real video of the test split (identities never seen in training)."""
    with open(os.path.join(corpus_dir, synthetic.RECORD)) as f:
        record = json.load(f)
    real = next(o for o in record["originals"] if o["split"] == "test")
    fake = next(f for f in record["fakes"] if f["split"] == "test" and f["target"] == real["id"])
    return (os.path.join(corpus_dir, next(iter(fake["videos"].values()))),
            os.path.join(corpus_dir, next(iter(real["videos"].values()))))


def detect_videos(config):
    """detect on one fake and one real test video, with JSON and overlay video.

    Returns:
      [(label, "verdict (score ...)"), ...] for the summary table.
    """
    from unet_industrial import detection

    os.makedirs(config.detect_dir, exist_ok=True)
    rows = []
    for label, path in zip(("fake", "real"), _test_videos(config.corpus_dir)):
        name = os.path.splitext(os.path.basename(path))[0]
        detect_config = detection.DetectConfig(
            run_dir=config.model_dir, video=path, frames_per_video=config.frames_per_video,
            overlay_out=os.path.join(config.detect_dir, f"{label}-{name}.mp4"),
            json_out=os.path.join(config.detect_dir, f"{label}-{name}.json"))
        (result,) = detection.detect(detect_config, report=logging.info)
        said = result.verdict or "no verdict"
        rows.append((f"{label} ({name})", said if result.score is None
                     else f"{said} (score {result.score:.3f}, threshold {result.threshold:.3f})"))
    return rows


def _number_cell(value):
    return "n/a" if value is None else f"{value:.3f}"


def _auc_cell(section):
    """The AUC and its 95 % interval over the split's identities, as "0.900 (0.850-0.950)"."""
    interval = section.get("roc_auc_interval")
    if section["roc_auc"] is None or interval is None:
        return _number_cell(section["roc_auc"])
    return f"{section['roc_auc']:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"


def _reals_called_fake(report):
    """ "4 of 12": the real videos at or above the calibrated video threshold."""
    (true_negatives, false_positives), _ = report["video"]["confusion_matrix"]
    return f"{false_positives} of {true_negatives + false_positives}"


def summary_table(report, blurred, detections):
    """The demo's closing table.

    Args:
      report: the test split's report.
      blurred: the report of the same crops degraded by ROBUSTNESS_CHECK.
      detections: [(label, verdict text)] of the two detected videos.

    Returns:
      A markdown table: frame and video AUC, pixel IoU, real videos called
      fake as they are and blurred, the blurred frame AUC, and the two
      videos' verdicts.
    """
    blurred_by = f"crops blurred by {ROBUSTNESS_BLUR_PX:g} px"
    rows = [("frame ROC AUC (test)", _auc_cell(report["frame"])),
            ("video ROC AUC (test)", _auc_cell(report["video"])),
            ("pixel IoU on fake frames (test)", _number_cell(report["pixel"]["iou"])),
            ("real test videos called fake", _reals_called_fake(report)),
            (f"the same, {blurred_by}", _reals_called_fake(blurred)),
            (f"frame ROC AUC (test, {blurred_by})", _auc_cell(blurred["frame"]))]
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    for label, detection in detections:
        lines.append(f"| detect, {label} test video | {detection} |")
    return "\n".join(lines)


def run(config):
    """Runs the demo into config.workdir and returns (report, summary table).

    Raises:
      ConfigError: for a work folder that is not empty, or a corpus that
        cannot be made (more originals than photographs with a face).
    """
    from data_pipeline import preparation
    from unet_industrial import evaluation
    from unet_industrial.training import jobs

    validate(config)
    started = _stage(1, "synthetic corpus (real faces, five manipulation families, c23)")
    try:
        synthetic.generate(config.corpus_dir, num_originals=config.num_originals, seconds=config.seconds,
                           seed=config.seed)
    except synthetic.CorpusError as error:  # e.g. more originals than photographs with a face
        raise ConfigError(str(error)) from error
    _stage(2, "face crops and fake-pixel masks -> TFRecords")
    preparation.prepare(prepare_config(config))
    _stage(3, f"training a {config.image_size}x{config.image_size} tinyUNet for {config.num_iter} steps")
    jobs.run(train_config(config), config.model_dir)
    _stage(4, "calibrating thresholds on the validation split")
    evaluation.evaluate(evaluation.EvalConfig(config.model_dir, config.records("val"), split="val",
                                              calibrate=True))
    _stage(5, "evaluating on the test split (identities never seen in training), as is and blurred")
    test = evaluation.EvalConfig(config.model_dir, config.records("test"), split="test")
    report = evaluation.evaluate(test)
    blurred = evaluation.evaluate(dataclasses.replace(test, degrade=ROBUSTNESS_CHECK))
    _stage(6, "detecting one fake and one real test video")
    detections = detect_videos(config)
    logging.info("demo finished in %.0f s", time.perf_counter() - started)
    return report, summary_table(report, blurred, detections)
