r"""How well `masks.fake_mask` finds the fake pixels: IoU against true masks.

    python -m data_pipeline.tools.mask_quality [--examples_dir=../shared/realdata/ffpp_examples]
    python -m data_pipeline.tools.mask_quality --synthetic_dir=DIR [--frames_per_video=8]

Prints one row per example frame (Deepfakes, NeuralTextures, Google/Jigsaw
DFD) of `../shared/realdata/ffpp_examples`: the IoU of `fake_mask` with its
default settings against the official mask (> 0), on the face crop cut as
the pipeline cuts it (MTCNN on the original, largest face, square box x1.3,
clipped) at its native size and resized to 256, without the face box, and
on the whole frame; and the baseline, a plain max |RGB difference| mask at
its best threshold chosen per example. Bad input gets one `error:` line on
stderr and exit status 2.

With --synthetic_dir (a corpus of `data_pipeline.synthetic`), it prints
instead the mean IoU against the generator's true masks per compression and
method, on evenly spaced frames of every fake, cut and resized as `prepare`
does by default.
"""

import dataclasses
import os

# Keep TensorFlow's C++ start-up chatter (MTCNN runs on it) out of the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from data_pipeline import cli, faces, layouts, masks, synthetic, video  # noqa: E402

# (method, fake, official mask, original) file names in the examples folder.
EXAMPLES = (
    ("Deepfakes", "ex_deepfakes.png", "ex_deepfakes_mask.png", "ex_original.png"),
    ("NeuralTextures", "ex_neuraltextures.png", "ex_neuraltextures_mask.png", "ex_original.png"),
    ("DeepFakeDetection", "ex_deepfakedetection.png", "ex_deepfakedetection_mask.png",
     "ex_original_actors.png"),
)
# IoU on the face crop that the defaults must reach (issue 4); the baseline
# gets 0.94, 0.46 and 0.50.
TARGETS = {"Deepfakes": 0.90, "NeuralTextures": 0.55, "DeepFakeDetection": 0.60}
# Mean IoU against the synthetic corpus's true masks that the defaults must reach (issue 4).
SYNTHETIC_TARGETS = {"c0": 0.85, "c23": 0.75, "c40": 0.60}
# The pipeline's crop side (--image_size).
PIPELINE_SIZE = 256

class QualityError(ValueError):
    """Input the measurement cannot use; one line for the user."""


@dataclasses.dataclass(frozen=True)
class PairQuality:
    """IoUs of one (fake, original, true mask) triple.

    Attributes:
      crop_side: side of the face crop in frame pixels.
      crop: fake_mask on the native face crop, given the face box.
      crop_resized: the same on the crop resized to PIPELINE_SIZE.
      crop_no_box: fake_mask on the native crop without the face box.
      frame: fake_mask on the whole frame, given the face box.
      baseline_crop, baseline_frame: max |RGB difference| at its best threshold.
      baseline_threshold: that threshold on the crop (difference > threshold).
    """

    crop_side: int
    crop: float
    crop_resized: float
    crop_no_box: float
    frame: float
    baseline_crop: float
    baseline_frame: float
    baseline_threshold: int


def mask_iou(pred, truth):
    """Intersection over union of two masks (any nonzero value is "fake"); 1.0 when both are empty."""
    pred, truth = np.asarray(pred) != 0, np.asarray(truth) != 0
    union = np.count_nonzero(pred | truth)
    return np.count_nonzero(pred & truth) / union if union else 1.0


def best_threshold_iou(fake, original, truth):
    """The baseline: IoU of max |RGB difference| > t against `truth`, at the best t.

    Returns:
      (iou, t), t in 0..254.
    """
    diff = np.abs(fake.astype(np.int16) - original.astype(np.int16)).max(axis=-1)
    truth = np.asarray(truth) != 0
    # Pixels above t, and those of them in the truth, for every t at once.
    above = np.cumsum(np.bincount(diff.ravel(), minlength=256)[::-1])[::-1]
    hits = np.cumsum(np.bincount(diff[truth], minlength=256)[::-1])[::-1]
    inside, predicted = hits[1:], above[1:]  # index t: difference > t
    union = predicted + np.count_nonzero(truth) - inside
    ious = np.where(union > 0, inside / np.maximum(union, 1), 1.0)
    threshold = int(np.argmax(ious))
    return float(ious[threshold]), threshold


def largest_face(original, detect=None):
    """The face box (x0, y0, x1, y1) of the largest face MTCNN finds in `original`, or None."""
    found = (detect or faces.detect_faces)([original])[0]
    return max(found, key=lambda d: d.area).box if found else None


def evaluate_pair(fake, original, truth, face_box=None, crop_scale=faces.CROP_SCALE):
    """Measures fake_mask and the baseline on one aligned frame pair.

    Args:
      fake, original: RGB uint8 frames, pixel-aligned.
      truth: the true mask of the fake (nonzero = fake), same height and width.
      face_box: the face in the original; found with MTCNN (largest face)
        when None.
      crop_scale: enlargement of the squared face box.

    Returns:
      A PairQuality.

    Raises:
      QualityError: for frames of different sizes, or no face in the original.
    """
    if fake.shape != original.shape or truth.shape[:2] != fake.shape[:2]:
        raise QualityError(f"fake {fake.shape}, original {original.shape} and mask {truth.shape} "
                           "differ in size")
    face_box = face_box or largest_face(original)
    if face_box is None:
        raise QualityError("no face found in the original")
    crop_box = faces.square_box(face_box, crop_scale, *fake.shape[:2])
    x0, y0, x1, y1 = crop_box
    fake_crop, original_crop, truth_crop = fake[y0:y1, x0:x1], original[y0:y1, x0:x1], truth[y0:y1, x0:x1]
    box_in_crop = faces.box_in_crop(face_box, crop_box)

    def resized(image, nearest=False):
        return faces.crop_face(image, crop_box, PIPELINE_SIZE, nearest)

    baseline_crop, threshold = best_threshold_iou(fake_crop, original_crop, truth_crop)
    return PairQuality(
        crop_side=x1 - x0,
        crop=mask_iou(masks.fake_mask(fake_crop, original_crop, box_in_crop), truth_crop),
        crop_resized=mask_iou(masks.fake_mask(resized(fake), resized(original),
                                              faces.box_in_crop(face_box, crop_box, PIPELINE_SIZE)),
                              resized((truth != 0).astype(np.uint8), nearest=True)),
        crop_no_box=mask_iou(masks.fake_mask(fake_crop, original_crop), truth_crop),
        frame=mask_iou(masks.fake_mask(fake, original, face_box), truth),
        baseline_crop=baseline_crop,
        baseline_frame=best_threshold_iou(fake, original, truth)[0],
        baseline_threshold=threshold,
    )


def read_rgb(path):
    """An image file as RGB uint8.

    Raises:
      QualityError: when it is missing or unreadable.
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise QualityError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def evaluate_examples(examples_dir):
    """Measures every example of EXAMPLES in `examples_dir`.

    MTCNN runs once per original frame.

    Returns:
      A list of (method, PairQuality).

    Raises:
      QualityError: for a missing folder or file, or an original without a face.
    """
    if not os.path.isdir(examples_dir):
        raise QualityError(f"--examples_dir={examples_dir!r} is not a folder")
    boxes, results = {}, []
    for method, fake_name, mask_name, original_name in EXAMPLES:
        original = read_rgb(os.path.join(examples_dir, original_name))
        if original_name not in boxes:
            boxes[original_name] = largest_face(original)
            if boxes[original_name] is None:
                raise QualityError(f"no face found in {original_name}")
        truth = masks.binarize_provided(read_rgb(os.path.join(examples_dir, mask_name)), threshold=0)
        fake = read_rgb(os.path.join(examples_dir, fake_name))
        results.append((method, evaluate_pair(fake, original, truth, boxes[original_name])))
    return results


def format_table(results):
    """A Markdown table of `evaluate_examples`'s results."""
    lines = [
        "| example | crop px | fake_mask, face crop | at 256 px | no face box | baseline, face crop (t) "
        "| target | fake_mask, whole frame | baseline, whole frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, q in results:
        target = f"{TARGETS[method]:.2f}" if method in TARGETS else "-"
        lines.append(f"| {method} | {q.crop_side} | {q.crop:.3f} | {q.crop_resized:.3f} "
                     f"| {q.crop_no_box:.3f} | {q.baseline_crop:.3f} ({q.baseline_threshold}) | {target} "
                     f"| {q.frame:.3f} | {q.baseline_frame:.3f} |")
    return "\n".join(lines)


def evaluate_synthetic(corpus_dir, frames_per_video=8, detect=None):
    """Measures fake_mask against the true masks of a synthetic FF++-layout corpus.

    Each fake is cut at its original's largest face (MTCNN, once per
    original frame), square x1.3, resized to PIPELINE_SIZE with the face box,
    exactly as `prepare` cuts it.

    Args:
      corpus_dir: output folder of `python -m data_pipeline.synthetic`.
      frames_per_video: evenly spaced frames per fake.
      detect: face detector for `largest_face` (tests inject one).

    Returns:
      A list of (compression, method, fake id, frame index, IoU).

    Raises:
      QualityError: for a folder that is not an FF++-layout synthetic corpus.
    """
    if not os.path.isfile(os.path.join(corpus_dir, synthetic.RECORD)):
        raise QualityError(f"--synthetic_dir={corpus_dir!r} has no {synthetic.RECORD}; "
                           "make one with python -m data_pipeline.synthetic")
    try:
        fakes = [item for item in layouts.scan("ffpp", corpus_dir).items if item.label == layouts.FAKE]
    except layouts.LayoutError as error:
        raise QualityError(str(error)) from error
    face_boxes, rows = {}, []
    for item in fakes:
        truths = synthetic.read_true_masks(item.path)
        plan = video.plan_pair(item.path, item.original_path, frames_per_video, 0)
        for index, fake, original in video.read_pair(item.path, item.original_path, plan):
            key = (item.original_path, index)
            if key not in face_boxes:
                face_boxes[key] = largest_face(original, detect)
            if face_boxes[key] is None:
                continue
            crop_box = faces.square_box(face_boxes[key], faces.CROP_SCALE, *original.shape[:2])
            predicted = masks.fake_mask(faces.crop_face(fake, crop_box, PIPELINE_SIZE),
                                        faces.crop_face(original, crop_box, PIPELINE_SIZE),
                                        faces.box_in_crop(face_boxes[key], crop_box, PIPELINE_SIZE))
            truth = faces.crop_face(truths[index].astype(np.uint8), crop_box, PIPELINE_SIZE, nearest=True)
            rows.append((item.compression, item.method, item.video_id, index, mask_iou(predicted, truth)))
    if not rows:
        raise QualityError(f"no fake with a face in {corpus_dir!r}")
    return rows


def format_synthetic_table(rows):
    """A Markdown table of mean IoU per compression (rows) and method (columns)."""
    compressions = sorted({row[0] for row in rows})
    methods = sorted({row[1] for row in rows})

    def mean(compression, method=None):
        values = [row[4] for row in rows if row[0] == compression and method in (None, row[1])]
        return f"{np.mean(values):.3f}" if values else "-"

    lines = ["| compression | " + " | ".join(methods) + " | all | target |",
             "|---|" + "---|" * (len(methods) + 2)]
    for compression in compressions:
        target = f"{SYNTHETIC_TARGETS[compression]:.2f}" if compression in SYNTHETIC_TARGETS else "-"
        lines.append(f"| {compression} | " + " | ".join(mean(compression, m) for m in methods)
                     + f" | {mean(compression)} | {target} |")
    return "\n".join(lines)


def _define_flags():
    # Defined only when run as a program: the tests import the measures as a library.
    flags.DEFINE_string("examples_dir", "../shared/realdata/ffpp_examples",
                        "Folder of the FF++ example frames and official masks.")
    flags.DEFINE_string("synthetic_dir", None,
                        "A synthetic corpus (data_pipeline.synthetic) to measure instead.")
    flags.DEFINE_integer("frames_per_video", 8,
                         "With --synthetic_dir: evenly spaced frames measured per fake.")


def main(argv):
    cli.no_arguments(argv)
    values = flags.FLAGS
    try:
        if values.synthetic_dir:
            print(format_synthetic_table(evaluate_synthetic(values.synthetic_dir, values.frames_per_video)))
        else:
            print(format_table(evaluate_examples(values.examples_dir)))
    except QualityError as error:
        cli.fail(error)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.parse_flags)
