"""The embedded deepfake corpus: layouts, ground-truth masks, determinism, command line.

One tiny FF++-layout corpus (6 originals, 1 s, 160x120, c0 and c23, all five
methods) is generated once for the module; the tests read it back the way
later stages will.
"""

import json
import os
import re
import shutil

import numpy as np
import pytest
from conftest import REALDATA_DIR, requires_realdata, run_module

from data_pipeline import layouts, synthetic
from data_pipeline.synthetic import manipulations, media, planning

SETTINGS = dict(num_originals=6, seconds=1, frame_size=(160, 120), compressions=("c0", "c23"))
FLAGS = ["--num_originals=6", "--seconds=1", "--frame_size=160x120", "--compressions=c0,c23"]
NUM_FRAMES = 25
# Mask area over the area of MTCNN's face box on the original frame (median
# over a video's frames), per method. Measured over the videos of this
# corpus and of the default one (320x240): Deepfakes 0.54-0.73, Face2Face
# 0.39-0.51, FaceSwap 0.60-0.78, NeuralTextures 0.33-0.43, SelfBlend 0.62-0.83.
MASK_AREA_OF_FACE_BOX = {
    "Deepfakes": (0.4, 0.9),  # the box from eyebrows to below the mouth
    "Face2Face": (0.25, 0.7),  # eye and mouth ovals
    "FaceSwap": (0.45, 1.0),  # landmark hull, eyebrows to chin, or an ellipse
    "NeuralTextures": (0.2, 0.6),  # lower face
    "SelfBlend": (0.45, 1.1),  # elastic hull, blurred
}
# At c23, a fake's mean |fake - original| inside its mask over the same outside (measured >= 3.6).
MIN_INSIDE_OVER_OUTSIDE_C23 = 2.5


def _decode(path):
    return media.read_video(str(path))[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, record) of the module's FF++-layout corpus."""
    out_dir = str(tmp_path_factory.mktemp("synthetic") / "ffpp")
    return out_dir, synthetic.generate(out_dir, progress=False, **SETTINGS)


@pytest.fixture(scope="module")
def face_boxes(corpus):
    """Original id -> MTCNN's largest confident face box [x, y, w, h] (or None) in each c23 frame."""
    from mtcnn import MTCNN

    out_dir, record = corpus
    detector = MTCNN()
    boxes = {}
    for original in record["originals"]:
        boxes[original["id"]] = []
        for frame in _decode(os.path.join(out_dir, original["videos"]["c23"])):
            faces = [f for f in detector.detect_faces(frame) if f["confidence"] >= 0.9]
            boxes[original["id"]].append(max((f["box"] for f in faces), key=lambda b: b[2] * b[3])
                                         if faces else None)
    return boxes


def _fakes(record, method=None):
    return [fake for fake in record["fakes"] if method in (None, fake["method"])]


def _pairs(out_dir):
    pairs = {}
    for split in synthetic.SPLITS:
        with open(os.path.join(out_dir, "splits", f"{split}.json")) as f:
            pairs[split] = json.load(f)
    return pairs


def test_the_folder_holds_exactly_the_ffpp_tree_named_by_the_split_files(corpus):
    out_dir, _ = corpus
    expected = {"synthetic.json", *(f"splits/{split}.json" for split in synthetic.SPLITS)}
    for pairs in _pairs(out_dir).values():
        for first, second in pairs:
            for target, source in ((first, second), (second, first)):
                for compression in SETTINGS["compressions"]:
                    expected.add(f"original_sequences/youtube/{compression}/videos/{target}.mp4")
                for method in manipulations.METHODS:
                    name = f"{target}_{source}"
                    expected.update(f"manipulated_sequences/{method}/{c}/videos/{name}.mp4"
                                    for c in SETTINGS["compressions"])
                    expected.add(f"manipulated_sequences/{method}/masks/videos/{name}.mp4")
                    expected.update(f"manipulated_sequences/{method}/masks/frames/{name}/{i:05d}.png"
                                    for i in range(NUM_FRAMES))
    found = {os.path.relpath(os.path.join(root, name), out_dir)
             for root, _, names in os.walk(out_dir) for name in names}
    assert found == expected  # Nothing missing, and no stray temporary file.


@requires_realdata
def test_paths_follow_the_real_ffpp_sample(corpus):
    sample = os.path.join(REALDATA_DIR, "ffpp")
    out_dir, _ = corpus
    ours = [os.path.relpath(os.path.join(root, name), out_dir) for root, _, names in os.walk(out_dir)
            for name in names]
    for root, _, names in os.walk(sample):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), sample)
            pattern = re.sub(r"\d{3}", r"\\d{3}", re.escape(relative))  # Any three-digit id.
            assert any(re.fullmatch(pattern, path) for path in ours), pattern


def test_split_files_pair_every_original_once_and_share_no_identity(corpus):
    out_dir, record = corpus
    pairs = _pairs(out_dir)
    assert {split: len(p) for split, p in pairs.items()} == {"train": 1, "val": 1, "test": 1}
    listed = [video_id for split_pairs in pairs.values() for pair in split_pairs for video_id in pair]
    assert all(isinstance(v, str) and re.fullmatch(r"\d{3}", v) for v in listed)
    assert sorted(listed) == [f"{i:03d}" for i in range(6)]
    identity = {o["id"]: o["identity"] for o in record["originals"]}
    assert len(set(identity.values())) == 6  # One photograph (person) per original.
    by_split = {split: {identity[v] for pair in p for v in pair} for split, p in pairs.items()}
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"]
                or by_split["val"] & by_split["test"])
    # The three full-resolution photographs land in three different splits.
    full_resolution = ("astronaut", "grace_hopper", "cameraman")
    full_resolution_splits = {o["split"] for o in record["originals"] if o["identity"] in full_resolution}
    assert full_resolution_splits == set(synthetic.SPLITS)
    split_of_fake = {f"{a}_{b}": split for split, split_pairs in pairs.items()
                     for x, y in split_pairs for a, b in ((x, y), (y, x))}
    assert all(fake["split"] == split_of_fake[fake["id"]] for fake in record["fakes"])


def test_the_ffpp_reader_finds_every_fake_with_its_original_and_mask(corpus):
    out_dir, record = corpus
    scan = layouts.scan("ffpp", out_dir)
    assert scan.skipped == []
    assert scan.count("method") == {**{m: 12 for m in manipulations.METHODS}, "original": 12}
    split_of = {o["id"]: o["split"] for o in record["originals"]}
    for item in scan.items:
        assert item.split == split_of[item.original_id]
        assert os.path.isfile(item.original_path)
        if item.label == layouts.FAKE:
            assert item.mask_path == os.path.join(out_dir, "manipulated_sequences", item.method, "masks",
                                                  "videos", os.path.basename(item.path))


def _original_of(record, fake):
    return record["originals"][int(fake["target"])]


def test_a_fake_matches_its_original_frame_for_frame(corpus):
    out_dir, record = corpus
    for fake in _fakes(record):
        for compression in SETTINGS["compressions"]:
            frames, fps = media.read_video(os.path.join(out_dir, fake["videos"][compression]))
            original, original_fps = media.read_video(
                os.path.join(out_dir, _original_of(record, fake)["videos"][compression]))
            assert frames.shape == original.shape == (NUM_FRAMES, 120, 160, 3)
            assert fps == original_fps == 25.0
        masks = synthetic.read_true_masks(os.path.join(out_dir, fake["videos"]["c0"]))
        assert masks.shape == (NUM_FRAMES, 120, 160)


def test_opencv_decodes_the_lossless_videos_exactly_as_written(corpus):
    import cv2

    out_dir, record = corpus
    fake = _fakes(record, "FaceSwap")[0]
    for path in (fake["videos"]["c0"], _original_of(record, fake)["videos"]["c0"]):
        capture = cv2.VideoCapture(os.path.join(out_dir, path))
        frames = []
        while (frame := capture.read()[1]) is not None:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        capture.release()
        np.testing.assert_array_equal(np.stack(frames), _decode(os.path.join(out_dir, path)))


def test_lossless_fakes_differ_from_their_original_only_inside_the_mask(corpus):
    out_dir, record = corpus
    for fake in _fakes(record):
        path = os.path.join(out_dir, fake["videos"]["c0"])
        masks = synthetic.read_true_masks(path)
        original = _decode(os.path.join(out_dir, _original_of(record, fake)["videos"]["c0"]))
        difference = np.abs(_decode(path).astype(int) - original)
        assert difference[~masks].max() == 0, fake
        assert difference[masks].mean() > 1.5, fake  # Measured 2.3 (Face2Face) to 45 (FaceSwap).


def test_compressed_fakes_differ_much_more_inside_the_mask_than_outside(corpus):
    out_dir, record = corpus
    for fake in _fakes(record):
        path = os.path.join(out_dir, fake["videos"]["c23"])
        masks = synthetic.read_true_masks(path)
        original = _decode(os.path.join(out_dir, _original_of(record, fake)["videos"]["c23"]))
        difference = np.abs(_decode(path).astype(int) - original).mean(axis=-1)
        assert difference[masks].mean() > MIN_INSIDE_OVER_OUTSIDE_C23 * difference[~masks].mean(), fake


def test_the_mask_video_is_the_binary_of_the_png_alpha(corpus):
    out_dir, record = corpus
    for fake in _fakes(record):
        video_path = os.path.join(out_dir, fake["videos"]["c23"])
        alpha = synthetic.read_true_masks(video_path, binary=False)
        assert alpha.dtype == np.uint8 and alpha.max() > 100
        mask_video = _decode(os.path.join(out_dir, fake["mask_video"]))
        assert set(np.unique(mask_video)) <= {0, 255}
        np.testing.assert_array_equal(mask_video[..., 0] > 127, alpha > 0)


def test_mtcnn_finds_a_face_in_95_percent_of_original_frames(face_boxes):
    found = [box is not None for boxes in face_boxes.values() for box in boxes]
    assert len(found) == 6 * NUM_FRAMES
    assert np.mean(found) >= 0.95


@pytest.mark.parametrize("method", manipulations.METHODS)
def test_mask_areas_lie_in_the_stated_range_and_inside_the_face_crop(corpus, face_boxes, method):
    out_dir, record = corpus
    low, high = MASK_AREA_OF_FACE_BOX[method]
    for fake in _fakes(record, method):
        masks = synthetic.read_true_masks(os.path.join(out_dir, fake["videos"]["c23"]))
        ratios, inside, total = [], 0, 0
        for mask, box in zip(masks, face_boxes[fake["target"]]):
            assert mask.any()
            if box is None:
                continue
            x, y, w, h = box
            ratios.append(mask.sum() / (w * h))
            # The face crop of the pipeline: the box squared and enlarged 1.3x.
            half, cx, cy = 1.3 * max(w, h) / 2, x + w / 2, y + h / 2
            rows, cols = np.nonzero(mask)
            inside += np.count_nonzero((np.abs(cols - cx) <= half) & (np.abs(rows - cy) <= half))
            total += len(rows)
        assert low <= np.median(ratios) <= high, (fake["id"], np.median(ratios))
        assert inside / total >= 0.95, fake["id"]


def test_masks_move_and_flicker_but_never_jump(corpus):
    out_dir, record = corpus
    for fake in _fakes(record):
        masks = synthetic.read_true_masks(os.path.join(out_dir, fake["videos"]["c0"]))
        iou = [(a & b).sum() / (a | b).sum() for a, b in zip(masks[:-1], masks[1:])]
        assert 0.8 < np.mean(iou) < 0.995 and min(iou) > 0.6, (fake["method"], fake["id"], iou)


def test_same_flags_give_the_same_frames_and_masks_and_a_broken_run_resumes(corpus, tmp_path):
    out_dir, record = corpus
    again = str(tmp_path / "again")
    result = run_module("data_pipeline.synthetic", f"--out_dir={again}", *FLAGS, timeout=300)
    assert result.returncode == 0, result.stderr
    fake = _fakes(record, "SelfBlend")[0]
    # A run killed midway: a video and a mask folder missing.
    os.remove(os.path.join(again, fake["videos"]["c23"]))
    shutil.rmtree(os.path.join(again, fake["mask_frames"]))
    resumed = synthetic.generate(again, progress=False, **SETTINGS)
    assert resumed["complete"] and resumed["fakes"] == record["fakes"]
    videos = [path for video in record["originals"] + record["fakes"] for path in video["videos"].values()]
    for path in videos + [fake["mask_video"] for fake in record["fakes"]]:
        np.testing.assert_array_equal(_decode(os.path.join(again, path)),
                                      _decode(os.path.join(out_dir, path)), err_msg=path)
    for path in (fake["mask_frames"] for fake in record["fakes"]):
        np.testing.assert_array_equal(media.read_mask_frames(os.path.join(again, path)),
                                      media.read_mask_frames(os.path.join(out_dir, path)),
                                      err_msg=path)


def test_a_corpus_with_other_settings_is_refused(corpus):
    out_dir, _ = corpus
    with pytest.raises(synthetic.CorpusError, match="other settings.*seed 0 -> 1"):
        synthetic.generate(out_dir, progress=False, **{**SETTINGS, "seed": 1})


def test_dfdc_layout_labels_splits_originals_and_masks(tmp_path):
    out_dir = str(tmp_path / "dfdc")
    record = synthetic.generate(out_dir, layout="dfdc", num_originals=6, seconds=0.4, frame_size=(160, 120),
                                methods=("FaceSwap", "SelfBlend"), progress=False)
    part = os.path.join(out_dir, "dfdc_train_part_0")
    with open(os.path.join(part, "metadata.json")) as f:
        metadata = json.load(f)
    videos = sorted(name for name in os.listdir(part) if name.endswith(".mp4"))
    assert sorted(metadata) == videos and len(videos) == 6 + 12
    assert all(re.fullmatch(r"[a-z]{10}\.mp4", name) for name in videos)
    reals = {name for name, entry in metadata.items() if entry["label"] == "REAL"}
    assert len(reals) == 6
    for name, entry in metadata.items():
        assert entry["split"] in synthetic.SPLITS
        if name in reals:
            assert set(entry) == {"label", "split"}
        else:
            assert set(entry) == {"label", "split", "original"} and entry["label"] == "FAKE"
            assert entry["original"] in reals and metadata[entry["original"]]["split"] == entry["split"]
            masks = synthetic.read_true_masks(os.path.join(part, name))
            assert masks.shape == (10, 120, 160) and masks.any(axis=(1, 2)).all()
            assert os.path.isfile(os.path.join(part, "masks", "videos", name))
    scan = layouts.scan("dfdc", out_dir)
    assert scan.skipped == [] and scan.count("label") == {"0": 6, "1": 12}
    assert {item.split for item in scan.items} == set(synthetic.SPLITS)
    assert record["config"]["layout"] == "dfdc"


@pytest.mark.parametrize("flags, message", [
    (["--layout=celebdf"], "layout"),
    (["--num_originals=7"], "--num_originals=7 must be even"),
    (["--frame_size=161x120"], "--frame_size=161x120"),
    (["--frame_size=big"], "--frame_size=big: write it as WIDTHxHEIGHT"),
    (["--compressions=c0,c99"], "--compressions=c0,c99"),
    (["--methods=FaceSwap,Morph"], "--methods=FaceSwap,Morph"),
    (["--layout=dfdc", "--compressions=c23,c40"], "--layout=dfdc holds one quality"),
    (["--seconds=0"], "--seconds=0.0 gives 0 frames"),
])
def test_bad_flags_get_one_line_and_exit_2_before_anything_is_written(tmp_path, flags, message):
    out_dir = tmp_path / "corpus"
    result = run_module("data_pipeline.synthetic", f"--out_dir={out_dir}", *flags, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not out_dir.exists()


def test_a_folder_holding_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a corpus\n")
    result = run_module("data_pipeline.synthetic", f"--out_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    assert "is not empty and holds no synthetic corpus" in result.stderr
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_the_out_dir_flag_is_required():
    result = run_module("data_pipeline.synthetic", timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "out_dir" in result.stderr


def test_similarity_recovers_a_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = manipulations.similarity(points, points @ rotation.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rotation, shift[:, None]]), atol=1e-4)


@pytest.mark.parametrize("num_originals, sizes", [(6, (2, 2, 2)), (12, (8, 2, 2)), (20, (16, 2, 2)),
                                                  (100, (72, 14, 14))])
def test_split_sizes_follow_ffpp_proportions_in_whole_pairs(num_originals, sizes):
    assert tuple(planning.split_sizes(num_originals).values()) == sizes
