"""Dataset layout readers on the real samples and on small trees laid out like the datasets."""

import json
import os

import pytest

from data_pipeline import layouts

from conftest import REALDATA_DIR as REALDATA, requires_realdata


def _touch(root, relative):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\0")
    return path


@requires_realdata
def test_real_ffpp_pair():
    scan = layouts.scan("ffpp", os.path.join(REALDATA, "ffpp"))
    by_id = {item.video_id: item for item in scan.items}
    assert sorted(by_id) == ["Deepfakes/c23/519_515", "original/youtube/c23/519"]
    real, fake = by_id["original/youtube/c23/519"], by_id["Deepfakes/c23/519_515"]
    assert (real.label, real.method, real.compression, real.split) == (0, "original", "c23", "train")
    assert (fake.label, fake.method, fake.original_id, fake.identity) == (1, "Deepfakes", "519", "519")
    assert fake.original_path == real.path and fake.split == "train"  # 519/515 is in train.json
    assert fake.mask_path is None and scan.skipped == []


@requires_realdata
def test_real_dfdc_reports_missing_files_and_goes_on():
    scan = layouts.scan("dfdc", os.path.join(REALDATA, "dfdc"))
    assert [item.video_id for item in scan.items] == ["dfdc_train_part_0/brtujopkby"]
    item = scan.items[0]
    assert item.label == 1 and item.original_id == "gnmmhlbzge" and item.original_path is None
    reasons = {skip.video_id: skip.reason for skip in scan.skipped}
    assert len(reasons) == 5 and set(reasons.values()) == {"missing_file"}
    assert "dfdc_train_part_10/widuwuoiur.mp4" in reasons


def test_dfdc_rejects_paths_that_leave_the_dataset(tmp_path):
    part = tmp_path / "dfdc_train_part_0"
    _touch(str(part), "fake.mp4")
    _touch(str(part), "real.mp4")
    _touch(str(tmp_path.parent), "outside.mp4")
    (part / "metadata.json").write_text(json.dumps({
        "fake.mp4": {"label": "FAKE", "split": "train", "original": "../../outside.mp4"},
        "../../outside.mp4": {"label": "REAL", "split": "train"},
        "real.mp4": {"label": "REAL", "split": "train"},
    }))
    scan = layouts.scan("dfdc", str(tmp_path))
    assert [item.video_id for item in scan.items] == ["dfdc_train_part_0/real"]
    assert sorted((s.video_id, s.reason) for s in scan.skipped) == [
        ("dfdc_train_part_0/../../outside.mp4", "path_outside_dataset"),
        ("dfdc_train_part_0/fake.mp4", "path_outside_dataset")]


def test_dfdc_pairs_share_a_split_and_metadata_splits_are_followed(tmp_path):
    part = tmp_path / "dfdc_train_part_3"
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        _touch(str(part), name)
    metadata = {"a.mp4": {"label": "REAL", "split": "train"},
                "b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"},
                "c.mp4": {"label": "REAL", "split": "train"},
                "d.mp4": {"label": "FAKE", "split": "train", "original": "c.mp4"}}
    (part / "metadata.json").write_text(json.dumps(metadata))
    items = {item.video_id: item for item in layouts.scan("dfdc", str(tmp_path)).items}
    fake = items["dfdc_train_part_3/b"]
    assert fake.original_path == str(part / "a.mp4") and fake.identity == "dfdc_train_part_3/a"
    assert fake.split == items["dfdc_train_part_3/a"].split == layouts.hash_split("dfdc_train_part_3/a")
    metadata["c.mp4"]["split"] = metadata["d.mp4"]["split"] = "test"
    (part / "metadata.json").write_text(json.dumps(metadata))
    items = {item.video_id: item for item in layouts.scan("dfdc", str(tmp_path)).items}
    assert [items[f"dfdc_train_part_3/{n}"].split for n in "abcd"] == ["train", "train", "test", "test"]


def test_ffpp_tree_with_methods_compressions_masks_and_dfd(tmp_path):
    root = str(tmp_path)
    for c in ("raw", "c40"):
        _touch(root, f"original_sequences/youtube/{c}/videos/000.mp4")
        _touch(root, f"original_sequences/youtube/{c}/videos/003.mp4")
        _touch(root, f"manipulated_sequences/Face2Face/{c}/videos/000_003.mp4")
        _touch(root, f"manipulated_sequences/Face2Face/{c}/videos/not_a_pair_name.mp4")
    _touch(root, "manipulated_sequences/Face2Face/masks/videos/000_003.mp4")
    _touch(root, "original_sequences/actors/c23/videos/01__exit_phone_room.mp4")
    _touch(root, "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK.mp4")
    scan = layouts.scan("ffpp", root)
    by_id = {item.video_id: item for item in scan.items}
    assert sorted(by_id) == [
        "DeepFakeDetection/c23/01_02__exit_phone_room__YVGY8LOK", "Face2Face/c0/000_003",
        "Face2Face/c40/000_003", "original/actors/c23/01__exit_phone_room",
        "original/youtube/c0/000", "original/youtube/c0/003", "original/youtube/c40/000",
        "original/youtube/c40/003"]
    f2f = by_id["Face2Face/c0/000_003"]
    assert f2f.compression == "c0" and f2f.original_path == by_id["original/youtube/c0/000"].path
    assert f2f.mask_path.endswith(os.path.join("Face2Face", "masks", "videos", "000_003.mp4"))
    # No splits/*.json: a hash of the original, the same for the fake and its original.
    assert f2f.split == by_id["original/youtube/c0/000"].split == layouts.hash_split("000")
    dfd = by_id["DeepFakeDetection/c23/01_02__exit_phone_room__YVGY8LOK"]
    assert dfd.original_id == "01__exit_phone_room" and dfd.identity == "01"
    assert dfd.original_path == by_id["original/actors/c23/01__exit_phone_room"].path
    assert sorted(s.reason for s in scan.skipped) == ["unrecognized_name"] * 2
    only_c40 = layouts.scan("ffpp", root, compressions=("c40",), methods=("Face2Face",))
    assert {item.compression for item in only_c40.items} == {"c40"}
    assert only_c40.count("label") == {"0": 2, "1": 1}


def test_celebdf_test_list_and_labels(tmp_path):
    root = str(tmp_path)
    _touch(root, "Celeb-real/id0_0000.mp4")
    _touch(root, "Celeb-real/id1_0001.mp4")
    _touch(root, "YouTube-real/00004.mp4")
    _touch(root, "Celeb-synthesis/id0_id1_0000.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text("1 Celeb-real/id1_0001.mp4\n"
                                                         "0 Celeb-synthesis/id0_id1_0000.mp4\n")
    items = {item.video_id: item for item in layouts.scan("celebdf", root).items}
    assert items[os.path.join("Celeb-real", "id1_0001.mp4")].split == "test"
    fake = items[os.path.join("Celeb-synthesis", "id0_id1_0000.mp4")]
    assert (fake.label, fake.split, fake.original_path, fake.identity) == (1, "test", None, "id0")
    assert items[os.path.join("YouTube-real", "00004.mp4")].label == 0
    assert items[os.path.join("Celeb-real", "id0_0000.mp4")].split in ("train", "val")


def test_plain_folder(tmp_path):
    root = str(tmp_path)
    for name in ("a.mp4", "sub/b.MOV", "notes.txt", "sub/c.avi", "sub/d.mpg", "e.MPEG"):
        _touch(root, name)
    items = layouts.scan("folder", root).items
    assert [item.video_id for item in items] == ["a.mp4", "e.MPEG", os.path.join("sub", "b.MOV"),
                                                 os.path.join("sub", "c.avi"), os.path.join("sub", "d.mpg")]
    assert {item.label for item in items} == {-1}


@pytest.mark.parametrize("layout, message", [
    ("ffpp", r"not a FaceForensics\+\+ root"), ("dfdc", "not a DFDC root"),
    ("celebdf", "not a Celeb-DF root")])
def test_wrong_layout_is_named(tmp_path, layout, message):
    with pytest.raises(layouts.LayoutError, match=message):
        layouts.scan(layout, str(tmp_path))


def test_unknown_layout_and_missing_folder(tmp_path):
    with pytest.raises(layouts.LayoutError, match="unknown layout 'kinetics'"):
        layouts.scan("kinetics", str(tmp_path))
    with pytest.raises(layouts.LayoutError, match="is not a folder"):
        layouts.scan("ffpp", str(tmp_path / "absent"))


def test_hash_split_is_stable_and_near_ffpp_proportions():
    splits = [layouts.hash_split(f"{i:03d}") for i in range(1000)]
    assert splits == [layouts.hash_split(f"{i:03d}") for i in range(1000)]
    share = {split: splits.count(split) / 1000 for split in layouts.SPLITS}
    assert share["train"] == pytest.approx(0.72, abs=0.04)
    assert share["val"] == pytest.approx(0.14, abs=0.03) and share["test"] == pytest.approx(0.14, abs=0.03)
