"""The evaluation job: a run's model over a split's records, frame / video / pixel figures, a report folder.

One pass predicts every face crop of `data_pattern` (no augmentation, pixels
fed as in training). Each crop gets a score (`verdicts.frame_scores`), a
frame the maximum over its faces, a video the aggregation of its frames;
thresholds come from the run's calibration.json, or, with `calibrate`, are
calibrated on these data (by balanced accuracy) and saved there.

A classifier run (`--model_kind=classifier`) is evaluated the same way, its
crop score being its own probability (verdicts.CLASSIFIER_FRAME_SCORE; so
--frame_score and --pixel_threshold are refused for it); having no masks,
its report has no "pixel" section, its per_frame.csv empty mask_area_pred,
iou and dice cells, and its folder no overlays.png.

`runs/NAME/eval/<split>/` holds:
  report.json     sections "frame", "video" and "pixel" (segmenters only),
                  and metadata (model kind, checkpoint, step, data pattern,
                  degradation (null: none), counts, the settings and
                  calibration used, provenance).
  per_frame.csv   one row per face crop: video_id, original_id (a fake's:
                  the original it was made from), frame_index, face_number,
                  method, compression, label, score (the crop's),
                  frame_score (its frame's: the maximum over the frame's faces),
                  verdict (the frame's), mask_area_true, mask_area_pred, iou,
                  dice (empty where the true mask is empty or unknown);
                  mask_unknown is 1 for a label-only fake (no original).
  per_video.csv   video_id, original_id, method, compression, label, num_frames, score,
                  verdict.
  roc.png, pr.png frame and video ROC and precision-recall curves.
  overlays.png    a few fake and real crops: image, true mask, predicted probability
                  (segmenters only).
TensorBoard scalars and images go to runs/NAME/tb/eval as eval/<split>/<name>.

With `degrade` ("blur:0.7", see `degradations`) every crop is degraded
before the model and the folder is eval/<split>-<degradation>
(eval/test-blur0.7), its report.json naming the degradation; the
thresholds stay those calibrated on clean data, as a deployed model's would.

How the figures are defined:
  - "frame" and "video": scikit-learn's roc_auc_score, average_precision_score,
    accuracy_score, balanced_accuracy_score, confusion_matrix (rows true
    real / fake, columns predicted real / fake), log_loss, and the equal
    error rate from roc_curve (where the false-positive and false-negative
    rates are closest, their mean). A score at or above the threshold is
    called fake. log_loss treats the scores as probabilities clipped to
    [1e-6, 1 - 1e-6]; it is meaningful for probability-like scores
    (frame_score max or mean), less so for areas.
  - roc_auc_interval: the 95 % interval of roc_auc over the split's
    identities, a percentile bootstrap (1,000 seeded draws) that resamples
    originals, each with every frame or video of it and of the fakes made
    from it. A split of a dozen identities measures an AUC to within several
    hundredths at best; the interval says how many. Whole splits only, not
    by_method or by_compression.
  - Figures undefined on one class (AUC, its interval, average precision,
    EER, balanced accuracy) are null, never NaN.
  - by_method: a method's fakes together with ALL real items of the split
    (a method has no reals of its own, and AUC needs both classes);
    by_compression: every item, real or fake, of that compression.
  - "pixel": per crop, the predicted mask is probability > pixel_threshold;
    iou and dice are means over fake crops whose true mask is not empty (an
    empty true mask, as in audio-only fakes, has no overlap to measure;
    their number is num_fake_empty_mask; label-only fakes, whose original
    is missing, have no true mask at all and count only in the frame and
    video figures, as num_fake_mask_unknown); real_false_positive_area is the
    mean predicted fake fraction of real crops. Subgroups as above.

Replacing a report: the folder is written under a hidden temporary name
beside eval/<split>; when it is complete, an earlier eval/<split> is renamed
eval/<split>-<its UTC time> (kept, never deleted) and the new folder takes its
name (two renames: for that instant eval/<split> is absent, but no reader
ever sees a half-written report). Recalibrating likewise keeps the earlier calibration.json as
calibration-<its UTC time>.json.

Bad input (a value out of range, a run folder without a model, a missing or
mismatching calibration, data that match nothing or carry no labels) raises
ConfigError or verdicts.CalibrationError before anything is written.

Modules: settings (EvalConfig, its checks, the scoring settings),
prediction (the model over the records), tables (frames and videos),
figures, calibration, report (the folder and TensorBoard), job (evaluate).
"""

from unet_industrial.evaluation.figures import roc_auc_interval
from unet_industrial.evaluation.job import evaluate
from unet_industrial.evaluation.settings import (DEFAULT_SETTINGS, EVAL_DIR, SHIPPED_REPORTS, EvalConfig,
                                                 resolve_settings)

__all__ = ["DEFAULT_SETTINGS", "EVAL_DIR", "SHIPPED_REPORTS", "EvalConfig", "evaluate", "resolve_settings",
           "roc_auc_interval"]
