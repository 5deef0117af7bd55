"""prepare end to end: real samples, bad files, workers, resuming.

Through `python -m data_pipeline.prepare` where the command line is part of
what is tested (its exit status, log and error lines, worker processes), in
this process elsewhere.
"""

import json
import os
import shutil
import types

import cv2
import numpy as np
import pytest

from data_pipeline import faces, schema, synthetic, video
from data_pipeline.config import PrepareError
from data_pipeline.runners import shards

from conftest import PREPARE_FAST as FAST
from conftest import REALDATA_DIR as REALDATA
from conftest import prepare_here, read_records, requires_realdata, run_module, write_video

FFPP_ORIGINAL = os.path.join(REALDATA, "ffpp", "original_sequences", "youtube", "c23", "videos", "519.mp4")


def _mask(record):
    return cv2.imdecode(np.frombuffer(record[schema.MASK], np.uint8), cv2.IMREAD_GRAYSCALE)


def _prepare(out_dir, *flags):
    return run_module("data_pipeline.prepare", f"--out_dir={out_dir}", *flags, timeout=600)


def _manifest(out_dir):
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


@requires_realdata
def test_real_ffpp_pair_gives_real_and_fake_records(tmp_path):
    out_dir = tmp_path / "ffpp"
    result = _prepare(out_dir, "--layout=ffpp", f"--data_dir={os.path.join(REALDATA, 'ffpp')}", *FAST)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out_dir)) == [".work", "manifest.json", "train-00000-of-00001.tfrecord"]
    records = read_records(out_dir)
    by_video = {}
    for record in records:
        by_video.setdefault(record[schema.VIDEO_ID].decode(), []).append(record)
    assert sorted(by_video) == ["Deepfakes/c23/519_515", "original/youtube/c23/519"]
    for record in by_video["original/youtube/c23/519"]:
        assert record[schema.LABEL] == 0 and not _mask(record).any()
    for record in by_video["Deepfakes/c23/519_515"]:
        mask = _mask(record)
        assert record[schema.LABEL] == 1 and record[schema.ORIGINAL_ID] == b"519"
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 1}
        # The manipulated face fills a good part of the x1.3 face crop, centred.
        assert 0.15 < mask.mean() < 0.8
        rows, cols = np.nonzero(mask)
        assert abs(rows.mean() - 32) < 12 and abs(cols.mean() - 32) < 12
        x0, y0, x1, y1 = record[schema.BOX]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480 and abs((x1 - x0) - (y1 - y0)) <= 1
    assert len(by_video["Deepfakes/c23/519_515"]) == 3
    manifest = _manifest(out_dir)
    assert manifest["counts"]["examples"]["train"]["total"] == len(records) == 6
    assert manifest["skipped"]["by_reason"] == {}


@requires_realdata
def test_real_dfdc_reports_missing_files_and_keeps_a_fake_without_original_as_label_only(tmp_path):
    out_dir = tmp_path / "dfdc"
    prepare_here(out_dir, layout="dfdc", data_dir=os.path.join(REALDATA, "dfdc"))
    manifest = _manifest(out_dir)
    assert manifest["skipped"]["by_reason"] == {"missing_file": 5}
    # The one DFDC video present is a fake whose original is not: its label counts, its mask is unknown.
    assert manifest["label_only"] == ["dfdc_train_part_0/brtujopkby"]
    records = read_records(out_dir)
    assert records and all(r[schema.LABEL] == 1 and r[schema.MASK_UNKNOWN] == 1 for r in records)
    (split_counts,) = manifest["counts"]["examples"].values()
    assert split_counts["label_only"] == split_counts["total"] == len(records)


@pytest.fixture(scope="module")
def face_frames():
    """Six real frames of the FF++ original (a face), downscaled to 320x240."""
    return [cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
            for _, frame in video.read_frames(FFPP_ORIGINAL, range(0, 60, 10))]


@pytest.fixture(scope="module")
def messy_dfdc(tmp_path_factory, face_frames):
    """A DFDC-layout folder with one good pair and every kind of bad entry."""
    root = tmp_path_factory.mktemp("messy")
    part = root / "dfdc_train_part_0"
    part.mkdir()
    write_video(part / "real.mp4", face_frames)
    # An obvious manipulation: the middle of the face inverted.
    x0, y0, x1, y1 = (int(v) for v in faces.detect_faces(face_frames[:1])[0][0].box)
    x0, y0, x1, y1 = (3 * x0 + x1) // 4, (3 * y0 + y1) // 4, (x0 + 3 * x1) // 4, (y0 + 3 * y1) // 4
    fake_frames = [frame.copy() for frame in face_frames]
    for frame in fake_frames:
        frame[y0:y1, x0:x1] = 255 - frame[y0:y1, x0:x1]
    write_video(part / "fake.mp4", fake_frames)
    rng = np.random.default_rng(0)
    write_video(part / "noface.mp4", [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(6)])
    (part / "empty.mp4").write_bytes(b"")
    (part / "text.mp4").write_text("not a video\n" * 100)
    whole = (part / "real.mp4").read_bytes()
    (part / "truncated.mp4").write_bytes(whole[:200])
    os.symlink(part / "gone.mp4", part / "unreadable.mp4")
    metadata = {
        "real.mp4": {"label": "REAL", "split": "train"},
        "fake.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"},
        "orphan.mp4": {"label": "FAKE", "split": "train", "original": "absent.mp4"},
        "noface.mp4": {"label": "REAL", "split": "train"},
        "empty.mp4": {"label": "REAL", "split": "train"},
        "text.mp4": {"label": "REAL", "split": "train"},
        "truncated.mp4": {"label": "REAL", "split": "train"},
        "unreadable.mp4": {"label": "REAL", "split": "train"},
        "escape.mp4": {"label": "FAKE", "split": "train", "original": "../../etc/passwd.mp4"},
        "audio_only.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"},
    }
    shutil.copy(part / "real.mp4", part / "audio_only.mp4")  # a fake whose frames are the original's
    shutil.copy(part / "fake.mp4", part / "orphan.mp4")
    shutil.copy(part / "fake.mp4", part / "escape.mp4")
    (part / "metadata.json").write_text(json.dumps(metadata))
    return str(root)


@requires_realdata
def test_bad_inputs_are_logged_skips_and_the_run_goes_on(tmp_path, messy_dfdc):
    out_dir = tmp_path / "out"
    result = _prepare(out_dir, "--layout=dfdc", f"--data_dir={messy_dfdc}", *FAST, "--frames_per_video=4")
    assert result.returncode == 0, result.stderr
    skipped = {entry["video_id"]: entry["reason"] for entry in _manifest(out_dir)["skipped"]["videos"]}
    assert skipped == {
        "dfdc_train_part_0/escape.mp4": "path_outside_dataset",
        "dfdc_train_part_0/noface": "no_face",
        "dfdc_train_part_0/empty": "unreadable_video",
        "dfdc_train_part_0/text": "unreadable_video",
        "dfdc_train_part_0/truncated": "unreadable_video",
        "dfdc_train_part_0/unreadable": "unreadable_video",
    }
    records = read_records(out_dir)
    assert sorted({r[schema.VIDEO_ID].decode() for r in records}) == [
        "dfdc_train_part_0/audio_only", "dfdc_train_part_0/fake", "dfdc_train_part_0/orphan",
        "dfdc_train_part_0/real"]
    assert _manifest(out_dir)["mask_empty"] == ["dfdc_train_part_0/audio_only"]
    # The orphan's original is absent: a label-only fake, its examples marked so.
    assert _manifest(out_dir)["label_only"] == ["dfdc_train_part_0/orphan"]
    assert {int(r[schema.MASK_UNKNOWN]) for r in records
            if r[schema.VIDEO_ID] == b"dfdc_train_part_0/orphan"} == {1}
    assert {int(r[schema.MASK_UNKNOWN]) for r in records
            if r[schema.VIDEO_ID] != b"dfdc_train_part_0/orphan"} == {0}
    for record in records:
        if record[schema.VIDEO_ID] in (b"dfdc_train_part_0/audio_only", b"dfdc_train_part_0/orphan"):
            # No pixel differs from the original, or there is no original to differ from.
            assert record[schema.LABEL] == 1 and not _mask(record).any()
        elif record[schema.LABEL] == 1:
            # The inverted middle of the face box, (1/2)^2 / 1.3^2 = 15 % of the crop at the centre,
            # is found, with some of the codec's blocky spill around it.
            mask = _mask(record)
            assert mask[28:36, 28:36].all() and 0.1 < mask.mean() < 0.5
    assert "skipping dfdc_train_part_0/noface: no_face" in result.stderr


@requires_realdata
def test_same_records_whatever_the_worker_count_and_reruns_resume(tmp_path, messy_dfdc, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    prepare_here(one, layout="dfdc", data_dir=messy_dfdc)
    assert _prepare(two, "--layout=dfdc", f"--data_dir={messy_dfdc}", *FAST,
                    "--num_workers=2").returncode == 0
    names = sorted(name for name in os.listdir(one) if name.endswith(".tfrecord"))
    assert names == sorted(name for name in os.listdir(two) if name.endswith(".tfrecord"))
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes()
    before = {name: (one / name).read_bytes() for name in names}

    def processed_again(item, *args):
        raise AssertionError(f"{item.video_id} was processed again")

    monkeypatch.setattr(shards, "run_worker", processed_again)  # everything was already done
    prepare_here(one, layout="dfdc", data_dir=messy_dfdc)
    assert {name: (one / name).read_bytes() for name in names} == before
    with pytest.raises(PrepareError, match=r"was prepared with other options \(image_size\)"):
        prepare_here(one, layout="dfdc", data_dir=messy_dfdc, image_size=32)


def _tensorflow_threads(item, write):
    """A worker that reports its process's TensorFlow thread pools."""
    import tensorflow as tf

    return {"video_id": item.video_id, "status": "ok", "frames": 0,
            "threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                        tf.config.threading.get_inter_op_parallelism_threads()]}


def test_worker_processes_share_the_cores_among_their_tensorflow_pools(tmp_path):
    assert (shards.worker_threads(2, cores=2), shards.worker_threads(2, cores=8)) == (1, 4)
    assert shards.worker_threads(4, cores=2) == 1
    items = [types.SimpleNamespace(video_id=f"video{i}") for i in range(3)]
    results = list(shards.process_all(items, _tensorflow_threads, (), str(tmp_path), num_workers=2))
    share = shards.worker_threads(2)
    assert [result["threads"] for result in results] == [[share, share]] * 3


@requires_realdata
def test_a_fake_is_cut_against_its_originals_kept_crops_without_decoding_it_again(tmp_path, monkeypatch):
    from data_pipeline import extract

    ffpp = os.path.join(REALDATA, "ffpp")
    read_pairs, kept = [], []
    read_pair, save_crops = video.read_pair, extract._save_crops
    monkeypatch.setattr(video, "read_pair", lambda *args, **kwargs: read_pairs.append(args[0]) or read_pair(
        *args, **kwargs))
    monkeypatch.setattr(extract, "_save_crops",
                        lambda path, crops: kept.append(crops) or save_crops(path, crops))
    prepare_here(tmp_path / "kept", layout="ffpp", data_dir=ffpp)  # the original first: it keeps its crops
    assert len(kept) == 1 and len(kept[0]) == 3
    assert all(crop.shape == (64, 64, 3) for in_frame in kept[0].values() for crop in in_frame.values())
    assert read_pairs == []  # the fake was cut without reading its original in lockstep
    # The crops are gone when the run is done; the face boxes stay.
    faces_dir = tmp_path / "kept" / shards.WORK_DIR / "faces"
    assert [name.endswith(".json") for name in os.listdir(faces_dir)] == [True]
    monkeypatch.setattr(extract, "_save_crops", lambda path, crops: None)
    prepare_here(tmp_path / "decoded", layout="ffpp", data_dir=ffpp)
    assert [os.path.basename(path) for path in read_pairs] == ["519_515.mp4"]
    records = {name: read_records(tmp_path / name) for name in ("kept", "decoded")}
    assert len(records["kept"]) == 6 and sum(r[schema.LABEL] for r in records["kept"]) == 3
    for from_kept, from_decoded in zip(records["kept"], records["decoded"]):
        assert from_kept.keys() == from_decoded.keys()
        for key in from_kept:
            np.testing.assert_array_equal(from_kept[key], from_decoded[key], err_msg=key)


@requires_realdata
def test_drop_empty_fakes_leaves_out_fakes_without_a_difference(tmp_path, messy_dfdc):
    out_dir = tmp_path / "out"
    prepare_here(out_dir, layout="dfdc", data_dir=messy_dfdc, drop_empty_fakes=True)
    assert _manifest(out_dir)["skipped"]["by_reason"]["mask_empty"] == 1
    assert b"dfdc_train_part_0/audio_only" not in {r[schema.VIDEO_ID] for r in read_records(out_dir)}


@pytest.mark.parametrize("flags, message", [
    (["--layout=ffpp", "--data_dir=no/such/folder"], "--data_dir='no/such/folder' is not a folder"),
    (["--layout=kinetics", "--data_dir=."], "layout=kinetics"),
    (["--layout=dfdc", "--data_dir=.", "--image_format=gif"], "image_format=gif"),
    (["--layout=dfdc", "--data_dir=tests"], "not a DFDC root"),
    # The Beam runner's own mistakes, caught before any video is read.
    (["--layout=ffpp", "--data_dir=.", "--runner=beam", "--beam_runner=NoSuch"],
     "--beam_runner='NoSuch': Unexpected pipeline runner"),
    (["--layout=ffpp", "--data_dir=.", "--runner=beam", "--num_workers=2"],
     "--num_workers is for --runner=local"),
    (["--layout=ffpp", "--data_dir=.", "--runner=beam", "--", "--runner=FlinkRunner"],
     "give the Beam runner as --beam_runner"),
    (["--layout=ffpp", "--data_dir=.", "--", "--direct_num_workers=2"],
     "unexpected arguments: --direct_num_workers=2"),
])
def test_bad_command_lines(tmp_path, flags, message):
    result = _prepare(tmp_path / "out", *flags)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr


@requires_realdata
def test_all_faces_gives_one_record_per_face(tmp_path, face_frames):
    part = tmp_path / "data" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    # Two people: the face beside its mirror image.
    write_video(part / "two.mp4", [np.hstack([frame, frame[:, ::-1]]) for frame in face_frames])
    (part / "metadata.json").write_text(json.dumps({"two.mp4": {"label": "REAL", "split": "train"}}))
    main_face, every_face = tmp_path / "main", tmp_path / "all"
    prepare_here(main_face, layout="dfdc", data_dir=str(tmp_path / "data"))
    prepare_here(every_face, layout="dfdc", data_dir=str(tmp_path / "data"), all_faces=True)
    assert sorted(r[schema.FACE_NUMBER] for r in read_records(main_face)) == [0, 0, 0]
    records = read_records(every_face)
    assert sorted(r[schema.FACE_NUMBER] for r in records) == [0, 0, 0, 1, 1, 1]
    for index in {r[schema.FRAME_INDEX] for r in records}:
        left, right = sorted((r[schema.BOX] for r in records if r[schema.FRAME_INDEX] == index),
                             key=lambda box: box[0])
        assert left[2] <= 320 <= right[0]  # one box in each half of the frame


def test_provided_masks_are_cut_with_the_face(tmp_path):
    corpus = tmp_path / "corpus"
    synthetic.generate(str(corpus), num_originals=6, methods=("Deepfakes",), compressions=("c23",),
                       seconds=0.4, progress=False)
    out_dir = tmp_path / "out"
    prepare_here(out_dir, layout="ffpp", data_dir=str(corpus), mask_source="provided")
    fakes = [r for r in read_records(out_dir) if r[schema.LABEL] == 1]
    assert len(fakes) == 6 * 3
    for record in fakes:
        fake_path = os.path.join(corpus, "manipulated_sequences", "Deepfakes", "c23", "videos",
                                 record[schema.VIDEO_ID].decode().split("/")[-1] + ".mp4")
        truth = synthetic.read_true_masks(fake_path)[record[schema.FRAME_INDEX]].astype(np.uint8)
        expected = faces.crop_face(truth, [int(v) for v in record[schema.BOX]], 64, nearest=True)
        np.testing.assert_array_equal(_mask(record), expected)
        assert record[schema.MASK_AREA] == pytest.approx(expected.mean())
