"""The crop table grouped into frames and videos, and the originals its rows belong to."""

import numpy as np

from unet_industrial import verdicts


def frame_table(crops):
    """Frames from crops: a frame (video id, frame index) scores the maximum over its faces.

    Returns:
      A dict of numpy arrays: video_id, original_id, frame_index, method,
      compression, label, score; one entry per frame, in order of first
      appearance.
    """
    frame_keys = list(zip(crops["video_id"], crops["frame_index"].tolist()))
    keys, scores = verdicts.max_over_faces(frame_keys, crops["score"])
    first, label = {}, {}
    for i, key in enumerate(frame_keys):
        first.setdefault(key, i)
        label[key] = max(label.get(key, 0), int(crops["label"][i]))
    rows = [first[key] for key in keys]
    return {"video_id": crops["video_id"][rows], "original_id": crops["original_id"][rows],
            "frame_index": crops["frame_index"][rows],
            "method": crops["method"][rows], "compression": crops["compression"][rows],
            "label": np.array([label[key] for key in keys]), "score": scores}


def video_table(frames, aggregation, frame_threshold):
    """Videos from frames, each scored by `verdicts.video_score` over its frames.

    Returns:
      A dict of numpy arrays: video_id, original_id, method, compression,
      label, num_frames, score; in order of first appearance.
    """
    groups = {}
    for i, video_id in enumerate(frames["video_id"]):
        groups.setdefault(video_id, []).append(i)
    rows = list(groups.values())
    return {"video_id": np.array(list(groups)),
            "original_id": np.array([frames["original_id"][r[0]] for r in rows]),
            "method": np.array([frames["method"][r[0]] for r in rows]),
            "compression": np.array([frames["compression"][r[0]] for r in rows]),
            "label": np.array([frames["label"][r].max() for r in rows]),
            "num_frames": np.array([len(r) for r in rows]),
            "score": np.array([verdicts.video_score(frames["score"][r], aggregation, frame_threshold)
                               for r in rows])}


def original_groups(table):
    """The original each row belongs to (a fake: the one it was made from), else its own video."""
    return np.where(table["original_id"] != "", table["original_id"], table["video_id"])
