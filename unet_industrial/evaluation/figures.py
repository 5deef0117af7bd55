"""The report's figures: classification figures and the ROC AUC interval, pixel figures, subgroups."""

import numpy as np
from sklearn import metrics

from unet_industrial import verdicts

# log_loss needs probabilities strictly inside (0, 1).
LOG_LOSS_EPSILON = 1e-6


# The ROC AUC interval: a percentile bootstrap over originals (see roc_auc_interval).
AUC_INTERVAL_CONFIDENCE = 0.95
AUC_INTERVAL_RESAMPLES = 1000


def predicted_fake(scores, threshold):
    """1 where `verdicts.verdict` calls the score fake, else 0."""
    return np.array([verdicts.verdict(score, threshold) == "fake" for score in scores], int)


def both_classes(labels):
    """Whether 0/1 labels hold a real and a fake: what AUC, its interval and the curves need."""
    return 0 < int(np.sum(labels)) < np.size(labels)


def _equal_error_rate(labels, scores):
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    fnr = 1.0 - tpr
    closest = int(np.argmin(np.abs(fnr - fpr)))
    return (fpr[closest] + fnr[closest]) / 2.0


def rank_roc_auc(labels, scores):
    """ROC AUC from ranks (the Mann-Whitney U statistic): scikit-learn's roc_auc_score, tied scores included.

    The bootstrap below computes a thousand AUCs per interval, and
    scikit-learn's input validation costs about a hundred times the sum
    of ranks itself.

    Args:
      labels: 1 = fake, 0 = real, both present.
      scores: one per label.

    Returns:
      The probability that a random fake outscores a random real, ties counting one half.
    """
    labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
    _, value_of_row, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # Tied scores share the mean of the ranks (1-based) they span.
    mean_ranks = np.cumsum(counts) - (counts - 1) / 2.0
    num_fake = int(labels.sum())
    num_real = labels.size - num_fake
    rank_sum = mean_ranks[value_of_row][labels].sum()
    return float((rank_sum - num_fake * (num_fake + 1) / 2.0) / (num_fake * num_real))


def roc_auc_interval(labels, scores, groups, resamples=AUC_INTERVAL_RESAMPLES,
                     confidence=AUC_INTERVAL_CONFIDENCE, seed=0):
    """Percentile bootstrap interval of the ROC AUC, resampling whole groups (originals).

    A split holds few identities (the demo's test split 12), and the frames
    and videos of one identity succeed or fail together: resampling single
    frames would treat 860 frames as 860 independent trials and give an
    interval far too narrow. Each draw picks as many groups as there are,
    with replacement, and keeps every row of each; draws with one class only
    are left out.

    Args:
      labels: 1 = fake, 0 = real.
      scores: one per label.
      groups: one key per label; rows sharing a key are resampled together.
      resamples: bootstrap draws.
      confidence: the interval's coverage.
      seed: seeds the draws, so a report is reproducible.

    Returns:
      [low, high], or None with fewer than two groups or without both classes.
    """
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    keys, group_of_row = np.unique(np.asarray(groups), return_inverse=True)
    if len(keys) < 2 or not both_classes(labels):
        return None
    rows_of_group = [np.flatnonzero(group_of_row == g) for g in range(len(keys))]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        rows = np.concatenate([rows_of_group[g] for g in rng.integers(0, len(keys), len(keys))])
        if both_classes(labels[rows]):
            aucs.append(rank_roc_auc(labels[rows], scores[rows]))
    if not aucs:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    return [float(value) for value in np.percentile(aucs, [tail, 100.0 - tail])]


def classification_figures(labels, scores, threshold):
    """Figures of scores against labels at a threshold; those undefined on one class are None.

    Args:
      labels: 1 = fake, 0 = real.
      scores: one per label.
      threshold: a score at or above it is called fake.

    Returns:
      A dict of roc_auc, average_precision, accuracy, balanced_accuracy,
      eer, log_loss, threshold, confusion_matrix, num_real, num_fake.
    """
    labels, scores = np.asarray(labels, int), np.asarray(scores, np.float64)
    predicted = predicted_fake(scores, threshold)
    num_fake = int(labels.sum())
    both = both_classes(labels)
    return {
        "roc_auc": metrics.roc_auc_score(labels, scores) if both else None,
        "average_precision": metrics.average_precision_score(labels, scores) if both else None,
        "accuracy": metrics.accuracy_score(labels, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(labels, predicted) if both else None,
        "eer": _equal_error_rate(labels, scores) if both else None,
        "log_loss": metrics.log_loss(labels, np.clip(scores, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON),
                                     labels=[0, 1]),
        "threshold": threshold,
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "num_real": int(labels.size - num_fake), "num_fake": num_fake,
    }


def pixel_figures(crops, pixel_threshold):
    """IoU and Dice on fake crops, predicted fake area on real crops (see the package docstring).

    Label-only fakes (no original, so no true mask) are left out and counted as num_fake_mask_unknown.
    """
    unknown = crops["mask_unknown"] == 1
    fake, real = (crops["label"] == 1) & ~unknown, crops["label"] == 0
    measured = fake & ~np.isnan(crops["iou"])
    return {"iou": float(crops["iou"][measured].mean()) if measured.any() else None,
            "dice": float(crops["dice"][measured].mean()) if measured.any() else None,
            "real_false_positive_area": float(crops["mask_area_pred"][real].mean()) if real.any() else None,
            "pixel_threshold": pixel_threshold, "num_fake": int(measured.sum()),
            "num_fake_empty_mask": int((fake & ~measured).sum()), "num_fake_mask_unknown": int(unknown.sum()),
            "num_real": int(real.sum())}


def subgroups(table):
    """Boolean selections of a table's rows: {"by_method": {...}, "by_compression": {...}}.

    A method's subgroup is its fakes plus every real row; a compression's is
    every row of that compression.
    """
    real, fake = table["label"] == 0, table["label"] == 1
    return {"by_method": {str(method): real | (fake & (table["method"] == method))
                          for method in sorted(set(table["method"][fake]))},
            "by_compression": {str(compression): table["compression"] == compression
                               for compression in sorted(set(table["compression"]))}}
