"""Writing a report: its folder (JSON, CSV tables, curves, overlays), replaced atomically; TensorBoard."""

import csv
import datetime
import json
import math
import os
import shutil
import tempfile

import numpy as np
from absl import logging
from sklearn import metrics

from unet_industrial.evaluation.figures import both_classes

PER_FRAME_COLUMNS = ("video_id", "original_id", "frame_index", "face_number", "method", "compression",
                     "label", "mask_unknown", "score", "frame_score", "verdict", "mask_area_true",
                     "mask_area_pred", "iou", "dice")
PER_VIDEO_COLUMNS = ("video_id", "original_id", "method", "compression", "label", "num_frames", "score",
                     "verdict")
SUMMARY_SCALARS = {
    "frame": ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "eer", "log_loss"),
    "video": ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "eer", "log_loss"),
    "pixel": ("iou", "dice", "real_false_positive_area"),
}
_STAMP = "%Y%m%d-%H%M%S"


def _json_ready(value):
    """Plain Python for json: numpy scalars unwrapped, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_csv(path, table, columns):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in zip(*(table[column] for column in columns)):
            # Undefined figures (NaN) as empty cells.
            writer.writerow(["" if cell is None else cell for cell in map(_json_ready, row)])


def _figure(width, height):
    # The Agg canvas directly: no pyplot, no global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_curves(path, tables, kind):
    """Frame and video ROC (kind "roc") or precision-recall ("pr") curves in one PNG."""
    figure = _figure(5, 5)
    axes = figure.add_subplot()
    for level, table in tables.items():
        labels, scores = table["label"], table["score"]
        if not both_classes(labels):
            axes.plot([], [], label=f"{level}: undefined (one class)")
        elif kind == "roc":
            fpr, tpr, _ = metrics.roc_curve(labels, scores)
            axes.plot(fpr, tpr, label=f"{level} (AUC {metrics.roc_auc_score(labels, scores):.3f})")
        else:
            precision, recall, _ = metrics.precision_recall_curve(labels, scores)
            axes.plot(recall, precision,
                      label=f"{level} (AP {metrics.average_precision_score(labels, scores):.3f})")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], color="0.7", linestyle=":")
        axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    else:
        axes.set(xlabel="recall", ylabel="precision", title="precision-recall")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right" if kind == "roc" else "lower left")
    figure.savefig(path, dpi=100)


def plot_overlays(path, examples):
    """Rows of image, true mask and predicted probability for the example crops."""
    figure = _figure(6, 2 * max(len(examples), 1))
    for row, example in enumerate(examples):
        image = example["image"]
        panels = [(image[..., 0] if image.shape[-1] == 1 else image, "image"),
                  (example["mask"], "true mask"), (example["probability"], "predicted")]
        for column, (panel, title) in enumerate(panels):
            axes = figure.add_subplot(len(examples), 3, 3 * row + column + 1)
            axes.imshow(panel, cmap="gray", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(title, fontsize=8)
        figure.axes[3 * row].set_ylabel(f"{'fake' if example['label'] else 'real'} {example['method']}\n"
                                        f"{example['video_id']} #{example['frame_index']}\n"
                                        f"score {example['score']:.3f}", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(_STAMP)


def keep_aside(path):
    """A free name, `path`-<UTC time of its last change> (and a counter if taken), to keep a result under."""
    stem, suffix = os.path.splitext(path) if os.path.isfile(path) else (path, "")
    base = f"{stem}-{_stamp(os.path.getmtime(path))}"
    candidate, count = f"{base}{suffix}", 1
    while os.path.exists(candidate):
        candidate, count = f"{base}-{count}{suffix}", count + 1
    return candidate


def write_report_folder(folder, report, crops, frames, videos, examples):
    """Writes the report folder atomically (see the package docstring); returns its path."""
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(folder)}-")
    try:
        with open(os.path.join(temporary, "report.json"), "w") as f:
            f.write(json.dumps(_json_ready(report), indent=2, sort_keys=True, allow_nan=False) + "\n")
        _write_csv(os.path.join(temporary, "per_frame.csv"), crops, PER_FRAME_COLUMNS)
        _write_csv(os.path.join(temporary, "per_video.csv"), videos, PER_VIDEO_COLUMNS)
        for kind in ("roc", "pr"):
            plot_curves(os.path.join(temporary, f"{kind}.png"), {"frame": frames, "video": videos}, kind)
        if examples:
            plot_overlays(os.path.join(temporary, "overlays.png"), examples)
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; a report folder is not.
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if os.path.exists(folder):
        kept = keep_aside(folder)
        os.rename(folder, kept)
        logging.info("kept the earlier report as %s", kept)
    os.rename(temporary, folder)
    return folder


def _rgb(panel):
    """An (H, W), (H, W, 1) or (H, W, 3) panel as (H, W, 3) float32."""
    panel = np.asarray(panel, np.float32)
    panel = panel[..., None] if panel.ndim == 2 else panel
    return np.repeat(panel, 3 // panel.shape[-1], axis=-1)


def write_summaries(run_dir, split, step, report, examples):
    """The report's figures as eval/<split>/<level>_<name> scalars and the overlays as images in tb/eval."""
    from unet_industrial.training.summaries import SummaryWriter

    writer = SummaryWriter(os.path.join(run_dir, "tb", "eval"))
    writer.scalars(step, {f"eval/{split}/{level}_{name}": report[level][name]
                          for level, names in SUMMARY_SCALARS.items() if level in report for name in names
                          if report[level][name] is not None})
    if examples:
        rows = [np.concatenate([_rgb(e["image"]), _rgb(e["mask"]), _rgb(e["probability"])], axis=1)
                for e in examples]
        writer.images(step, f"eval/{split}/image_true_predicted", np.stack(rows), max_outputs=len(rows))
    writer.close()
