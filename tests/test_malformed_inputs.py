"""Hostile input, stage by stage: each row an input and the clear error or counted skip it must give.

Stages: layout readers, index files (FF++ splits, prepare's own files),
TFRecord shards, model files, videos; then the command lines that issue 22
found ending in a traceback, rerun on the same inputs.
"""

import io
import json
import os
import zipfile

import av
import numpy as np
import pytest
from conftest import PREPARE_FAST, prepare_here, read_records, run_module, train_here, write_shards

from data_pipeline import layouts, reader, synthetic, video, video_writer
from unet_industrial import config as config_lib
from unet_industrial.config import ConfigError
from unet_industrial.training import data as data_lib

OUTSIDE = layouts.OUTSIDE


def _touch(root, relative, content=b"\0"):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    return path


def _link(root, relative, target):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


def _assert_one_error_line(result, message, status=2):
    """The command ended with status `status` and one `error:` line holding `message`, no traceback."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr


# ------------------------------------------------------------------ layout readers
# Each builder lays out a tree under `root` (the dataset) with `outside` beside
# it, and returns the layout to read it as.

def _ffpp_pair(root):
    _touch(root, "original_sequences/youtube/c23/videos/000.mp4")
    _touch(root, "manipulated_sequences/Deepfakes/c23/videos/000_104.mp4")


def _ffpp_original_links_out(root, outside):
    # Issue 22, finding 1: an original that is a link to a file outside --data_dir.
    _ffpp_pair(root)
    _link(root, "original_sequences/youtube/c23/videos/104.mp4", _touch(outside, "elsewhere.mp4"))
    _touch(root, "manipulated_sequences/Deepfakes/c23/videos/104_000.mp4")
    return "ffpp"


def _ffpp_relative_link_climbs_out(root, outside):
    _ffpp_pair(root)
    _touch(outside, "climb.mp4")
    _link(root, "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4", "../../../../../outside/climb.mp4")
    return "ffpp"


def _ffpp_linked_videos_folder(root, outside):
    _touch(root, "original_sequences/youtube/c23/videos/000.mp4")
    _touch(outside, "c40/videos/000.mp4")
    os.makedirs(os.path.join(root, "original_sequences/youtube/c40"))
    os.symlink(os.path.join(outside, "c40", "videos"),
               os.path.join(root, "original_sequences/youtube/c40/videos"))
    return "ffpp"


def _ffpp_mask_links_out(root, outside):
    _ffpp_pair(root)
    _link(root, "manipulated_sequences/Deepfakes/masks/videos/000_104.mp4", _touch(outside, "mask.mp4"))
    return "ffpp"


def _dfdc_part(root, part, metadata, videos=("a.mp4",)):
    for name in videos:
        _touch(root, f"{part}/{name}")
    content = metadata if isinstance(metadata, bytes) else json.dumps(metadata).encode()
    _touch(root, f"{part}/metadata.json", content)


_GOOD_PART = {"a.mp4": {"label": "REAL", "split": "train"}}


def _dfdc_with(metadata):
    """A DFDC root with a good part 0 and `metadata` as part 1's metadata.json."""
    def build(root, outside):
        _dfdc_part(root, "dfdc_train_part_0", _GOOD_PART)
        _dfdc_part(root, "dfdc_train_part_1", metadata, videos=("a.mp4", "b.mp4", "x.mp4"))
        return "dfdc"
    return build


def _dfdc_metadata_links_out(root, outside):
    _dfdc_part(root, "dfdc_train_part_0", _GOOD_PART)
    _touch(root, "dfdc_train_part_1/a.mp4")
    _link(root, "dfdc_train_part_1/metadata.json",
          _touch(outside, "metadata.json", json.dumps(_GOOD_PART).encode()))
    return "dfdc"


def _celebdf_link_out(root, outside):
    _touch(root, "Celeb-real/id0_0000.mp4")
    _link(root, "Celeb-synthesis/id0_id1_0000.mp4", _touch(outside, "fake.mp4"))
    return "celebdf"


def _folder_links_out(root, outside):
    _touch(root, "a.mp4")
    _link(root, "sub/b.mp4", _touch(outside, "b.mp4"))
    _link(root, "linked", outside)  # a linked folder is not entered at all
    _link(root, "inside_link.mp4", os.path.join(root, "a.mp4"))  # stays inside: kept
    return "folder"


@pytest.mark.parametrize("build, kept, skipped", [
    (_ffpp_original_links_out, ["Deepfakes/c23/000_104", "Deepfakes/c23/104_000", "original/youtube/c23/000"],
     [("original_sequences/youtube/c23/videos/104.mp4", OUTSIDE)]),
    (_ffpp_relative_link_climbs_out, ["Deepfakes/c23/000_104", "original/youtube/c23/000"],
     [("manipulated_sequences/Deepfakes/c23/videos/000_003.mp4", OUTSIDE)]),
    (_ffpp_linked_videos_folder, ["original/youtube/c23/000"],
     [("original_sequences/youtube/c40/videos/000.mp4", OUTSIDE)]),
    (_ffpp_mask_links_out, ["Deepfakes/c23/000_104", "original/youtube/c23/000"],
     [("manipulated_sequences/Deepfakes/masks/videos/000_104.mp4", OUTSIDE)]),
    # Issue 22, finding 2: well-formed JSON of the wrong shape.
    (_dfdc_with(["a.mp4", "b.mp4"]), ["dfdc_train_part_0/a"],
     [("dfdc_train_part_1", layouts.MALFORMED_METADATA)]),
    (_dfdc_with({"a.mp4": {"label": "REAL"}, "x.mp4": "FAKE"}),
     ["dfdc_train_part_0/a", "dfdc_train_part_1/a"],
     [("dfdc_train_part_1/x.mp4", layouts.MALFORMED_ENTRY)]),
    (_dfdc_with({"a.mp4": {"label": "REAL"}, "b.mp4": {"label": "FAKE", "original": 5}}),
     ["dfdc_train_part_0/a", "dfdc_train_part_1/a"], [("dfdc_train_part_1/b.mp4", layouts.MALFORMED_ENTRY)]),
    (_dfdc_with({"a.mp4": {"label": "MAYBE"}, "b.mp4": {"split": "train"}, "x.mp4": {"label": 1}}),
     ["dfdc_train_part_0/a"], [("dfdc_train_part_1/a.mp4", layouts.UNKNOWN_LABEL),
                               ("dfdc_train_part_1/b.mp4", layouts.UNKNOWN_LABEL),
                               ("dfdc_train_part_1/x.mp4", layouts.UNKNOWN_LABEL)]),
    (_dfdc_with({"a.mp4": {"label": "REAL", "split": ["train"]}}), ["dfdc_train_part_0/a"],
     [("dfdc_train_part_1/a.mp4", layouts.MALFORMED_ENTRY)]),
    (_dfdc_with({"a\u0000.mp4": {"label": "REAL"}}), ["dfdc_train_part_0/a"],
     [("dfdc_train_part_1/a\u0000.mp4", layouts.MALFORMED_ENTRY)]),
    (_dfdc_with(b"\x89PNG\r\n\x1a\n\xff\xfe not json"), ["dfdc_train_part_0/a"],
     [("dfdc_train_part_1", layouts.UNREADABLE_METADATA)]),
    (_dfdc_with(b"[" * 100_000), ["dfdc_train_part_0/a"],
     [("dfdc_train_part_1", layouts.UNREADABLE_METADATA)]),
    (_dfdc_metadata_links_out, ["dfdc_train_part_0/a"], [("dfdc_train_part_1", OUTSIDE)]),
    (_celebdf_link_out, [os.path.join("Celeb-real", "id0_0000.mp4")],
     [(os.path.join("Celeb-synthesis", "id0_id1_0000.mp4"), OUTSIDE)]),
    (_folder_links_out, ["a.mp4", "inside_link.mp4"], [(os.path.join("sub", "b.mp4"), OUTSIDE)]),
], ids=lambda value: getattr(value, "__name__", None))
def test_layout_readers_skip_what_they_cannot_use_and_go_on(tmp_path, build, kept, skipped):
    root, outside = str(tmp_path / "dataset"), str(tmp_path / "outside")
    os.makedirs(root)
    layout = build(root, outside)
    scan = layouts.scan(layout, root)
    assert sorted(item.video_id for item in scan.items) == sorted(kept)
    assert sorted((skip.video_id, skip.reason) for skip in scan.skipped) == sorted(skipped)
    for skip in scan.skipped:
        if skip.reason == OUTSIDE:  # the skip names where the path leads
            assert os.path.realpath(outside) in skip.detail
    for item in scan.items:
        for path in (item.path, item.original_path, item.mask_path):
            assert path is None or layouts.inside(root, path)


def test_detect_walks_a_folder_by_the_same_rule(tmp_path):
    from unet_industrial import detection

    root, outside = str(tmp_path / "videos"), str(tmp_path / "outside")
    _folder_links_out(root, outside)
    assert detection.find_videos(root) == [(os.path.join(root, "a.mp4"), "a.mp4"),
                                           (os.path.join(root, "inside_link.mp4"), "inside_link.mp4")]


def test_a_fake_whose_original_left_the_dataset_has_no_original(tmp_path):
    root, outside = str(tmp_path / "dataset"), str(tmp_path / "outside")
    _ffpp_original_links_out(root, outside)
    by_id = {item.video_id: item for item in layouts.scan("ffpp", root).items}
    assert by_id["Deepfakes/c23/104_000"].original_path is None
    assert by_id["Deepfakes/c23/000_104"].original_path.endswith("000.mp4")


def test_dfdc_fakes_with_a_null_original_stay_labelled_fakes(tmp_path):
    root = str(tmp_path)
    metadata = {"a.mp4": {"label": "fake", "original": None}, "b.mp4": {"label": "FAKE", "original": ""}}
    _dfdc_part(root, "dfdc_train_part_0", metadata, videos=("a.mp4", "b.mp4"))
    scan = layouts.scan("dfdc", root)
    assert [(item.label, item.original_path) for item in scan.items] == [(layouts.FAKE, None)] * 2
    assert scan.skipped == []


# ------------------------------------------------------------ index files

@pytest.mark.parametrize("relative, content, message", [
    # Issue 22, finding 3.
    ("splits/train.json", b'[["000", "003"]', "splits/train.json is not valid JSON"),
    ("splits/val.json", b'{"000": "003"}', "splits/val.json is not a list of id lists"),
    ("splits/test.json", b"7", "splits/test.json is not a list of id lists"),
    ("splits/test.json", b'["000003"]', "splits/test.json is not a list of id lists"),
    ("splits/test.json", b'[["000", true]]', "splits/test.json is not a list of id lists"),
    ("splits/test.json", b'[["000", "009"]]',
     "splits/test.json lists '000', which splits/train.json lists too"),
    ("splits/train.json", b"\xff\xfe\x00", "splits/train.json is not valid JSON"),
])
def test_a_bad_ffpp_split_file_is_one_clear_error(tmp_path, relative, content, message):
    root = str(tmp_path)
    _ffpp_pair(root)
    if relative != "splits/train.json":
        _touch(root, "splits/train.json", b'[["000", "104"]]')
    _touch(root, relative, content)
    with pytest.raises(layouts.LayoutError, match=message.replace("(", r"\(")):
        layouts.scan("ffpp", root)


def test_index_files_that_lead_out_of_the_dataset_are_refused(tmp_path):
    root, outside = str(tmp_path / "dataset"), str(tmp_path / "outside")
    _ffpp_pair(root)
    _link(root, "splits/train.json", _touch(outside, "train.json", b'[["000", "104"]]'))
    with pytest.raises(layouts.LayoutError, match="splits/train.json leads out of the dataset"):
        layouts.scan("ffpp", root)
    celeb = str(tmp_path / "celeb")
    _touch(celeb, "Celeb-real/id0_0000.mp4")
    _touch(celeb, "List_of_testing_videos.txt", b"\xff\xfe\xfa binary")
    with pytest.raises(layouts.LayoutError, match="List_of_testing_videos.txt is not a text file"):
        layouts.scan("celebdf", celeb)


# ------------------------------------------------------------ TFRecord shards

def _example_bytes(**replace):
    """One serialized record of the project's schema, with some features replaced or removed (None)."""
    import cv2
    import tensorflow as tf

    from data_pipeline import schema

    fields = {schema.IMAGE: cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))[1].tobytes(),
              schema.MASK: cv2.imencode(".png", np.zeros((32, 32), np.uint8))[1].tobytes(),
              schema.LABEL: 1, schema.VIDEO_ID: "v"}
    fields.update({key: value for key, value in replace.items() if value is not None})
    example = tf.train.Example()
    example.ParseFromString(schema.serialize_example(fields))
    for key, value in replace.items():
        if value is None:
            del example.features.feature[key]
    return example.SerializeToString()


def _record_file(path, records):
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


def _bad_shard(kind, path):
    """Writes a broken shard of `kind` at `path`."""
    from data_pipeline import schema

    if kind == "random_bytes":
        with open(path, "wb") as f:
            f.write(np.random.default_rng(0).bytes(3000))
    elif kind == "cut_mid_record":
        _record_file(path, [_example_bytes()] * 3)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 40)
    elif kind == "missing_image_key":
        _record_file(path, [_example_bytes(), _example_bytes(**{schema.IMAGE: None})])
    elif kind == "png_that_does_not_decode":
        _record_file(path, [_example_bytes(**{schema.IMAGE: b"\x89PNG\r\n\x1a\n" + b"\0" * 64})])
    elif kind == "mask_that_does_not_decode":
        _record_file(path, [_example_bytes(**{schema.MASK: b"not a png"})])


SHARD_CASES = {"random_bytes": "corrupted record at 0", "cut_mid_record": "record 2",
               "missing_image_key": "record 1", "png_that_does_not_decode": "record 0",
               "mask_that_does_not_decode": "record 0"}


@pytest.fixture
def shards_with_a_bad_one(tmp_path, request):
    """A pattern of two good shards and a bad one of `request.param`'s kind; the bad shard's path."""
    pattern = write_shards(str(tmp_path), "val", 8, num_shards=2)
    bad = str(tmp_path / "val-00002-of-00002.tfrecord")
    _bad_shard(request.param, bad)
    return pattern, bad


@pytest.mark.parametrize("shards_with_a_bad_one, problem", SHARD_CASES.items(),
                         indirect=["shards_with_a_bad_one"])
def test_a_bad_shard_read_for_evaluation_is_a_config_error_naming_it(shards_with_a_bad_one, problem):
    pattern, bad = shards_with_a_bad_one
    dataset = reader.make_prediction_dataset(pattern, image_size=32, channels=3, batch_size=4)
    with pytest.raises(ConfigError) as raised:
        for _ in data_lib.numpy_batches(dataset, pattern, 32, 3):
            pass
    message = str(raised.value)
    assert message.startswith(f"{bad} is not a readable TFRecord shard") and problem in message


@pytest.mark.parametrize("shards_with_a_bad_one, problem", SHARD_CASES.items(),
                         indirect=["shards_with_a_bad_one"])
def test_a_bad_shard_read_for_training_is_a_config_error_naming_it(shards_with_a_bad_one, problem):
    pattern, bad = shards_with_a_bad_one
    config = config_lib.TrainConfig(train_pattern=pattern, input_size=32, batch_size=4, shuffle_buffer=8)
    with pytest.raises(ConfigError, match=f"^{bad} is not a readable TFRecord shard"):
        with data_lib.records_named_on_error(config):
            for _ in data_lib.training_data(config).take(20):
                pass


def test_an_error_that_no_shard_reproduces_is_raised_unchanged(tmp_path):
    import tensorflow as tf

    pattern = write_shards(str(tmp_path), "train", 4, num_shards=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not from the records"):
        with reader.naming_bad_shards([pattern], 32, 3):
            raise tf.errors.InvalidArgumentError(None, None, "not from the records")


# ------------------------------------------------------------ model files

def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def good_model_bytes(tmp_path_factory):
    """The bytes of a 32x32x3 tinyUNet .keras file, and of 64x64x3 and 32x32x1 ones."""
    from unet_industrial.models import unet as model_lib

    folder = tmp_path_factory.mktemp("models")
    shapes = {"good": (32, 32, 3), "other_size": (64, 64, 3), "other_channels": (32, 32, 1)}
    files = {}
    for name, shape in shapes.items():
        path = str(folder / f"{name}.keras")
        model_lib.build_unet("tinyUNet", shape).save(path)
        with open(path, "rb") as f:
            files[name] = f.read()
    return files


def _model_file(kind, files):
    good = files["good"]
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return {
        "random_bytes": np.random.default_rng(1).bytes(5000),
        "empty": b"",
        "cut_in_half": good[:len(good) // 2],
        "zip_without_config": _zip({"notes.txt": b"hello"}),
        "config_not_json": _zip({**members, "config.json": b"{not json"}),
        "weights_not_hdf5": _zip({**members, "model.weights.h5": b"garbage"}),
        "lambda_layer": _zip({**members, "config.json": json.dumps(
            {"class_name": "Lambda", "config": {"function": "print"}}).encode()}),
        "other_size": files["other_size"],
        "other_channels": files["other_channels"],
    }[kind]


@pytest.mark.parametrize("kind, message", [
    # Issue 22, finding 6: a corrupt checkpoint is not "File not found".
    ("random_bytes", "is not a readable Keras model: not a .keras archive"),
    ("empty", "is not a readable Keras model: not a .keras archive"),
    ("cut_in_half", "is not a readable Keras model: not a .keras archive"),
    ("zip_without_config", "is not a readable Keras model (KeyError"),
    ("config_not_json", "is not a readable Keras model (JSONDecodeError"),
    ("weights_not_hdf5", "is not a readable Keras model ("),
    ("lambda_layer", "is not a readable Keras model ("),
    ("other_size", "takes 64x64x3 input, but {run} was trained on 32x32x3 crops"),
    ("other_channels", "takes 32x32x1 input, but {run} was trained on 32x32x3 crops"),
])
def test_a_bad_model_file_is_a_config_error_naming_it(tmp_path, good_model_bytes, kind, message):
    from unet_industrial import inference

    run = str(tmp_path / "run")
    _touch(run, "config.json", json.dumps({"config": {"input_size": 32, "input_channels": 3}}).encode())
    path = _touch(run, "checkpoints/last.keras", _model_file(kind, good_model_bytes))
    with pytest.raises(ConfigError) as raised:
        inference.load(run)
    text = str(raised.value)
    assert (text.startswith(path) or path in text) and message.format(run=run) in text, text
    assert "File not found" not in text and "\n" not in text


def test_a_good_model_file_loads(tmp_path, good_model_bytes):
    from unet_industrial import inference

    run = str(tmp_path / "run")
    _touch(run, "config.json", json.dumps({"config": {"input_size": 32, "input_channels": 3}}).encode())
    _touch(run, "checkpoints/last.keras", good_model_bytes["good"])
    trained = inference.load(run)
    assert (trained.input_size, trained.channels, trained.kind) == (32, 3, "segmenter")


# ------------------------------------------------------------------- videos

FRAMES = 12


def _encode(path, faststart):
    """A 32x32 H.264 .mp4 of FRAMES noise frames; `faststart` puts its index (moov) before the frames."""
    rng = np.random.default_rng(0)
    with av.open(path, "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "23"})
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for index in range(FRAMES):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind, outcome", [
    ("whole_index_first", FRAMES),
    # The index promises FRAMES frames; the reader yields the frames that are there.
    ("cut_half_way_index_first", "fewer"),
    ("cut_after_the_index", 0),
    ("cut_half_way_index_last", "unreadable_video"),
    ("empty", "unreadable_video"),
    ("text", "unreadable_video"),
])
def test_videos_cut_or_not_videos_end_in_a_video_error_or_fewer_frames(tmp_path, kind, outcome):
    path = str(tmp_path / "v.mp4")
    whole = _encode(path, faststart="index_last" not in kind)
    content = {"whole_index_first": whole,
               "cut_half_way_index_first": whole[:(whole.find(b"mdat") + len(whole)) // 2],
               "cut_after_the_index": whole[:whole.find(b"mdat") + 8],
               "cut_half_way_index_last": whole[:len(whole) // 2],
               "empty": b"", "text": b"not a video\n" * 50}[kind]
    with open(path, "wb") as f:
        f.write(content)
    if isinstance(outcome, str) and outcome != "fewer":
        with pytest.raises(video.VideoError) as raised:
            video.probe(path)
            list(video.read_frames(path, range(FRAMES)))
        assert raised.value.reason == outcome
        return
    assert video.probe(path).frame_count == FRAMES
    frames = list(video.read_frames(path, range(FRAMES)))
    if outcome == "fewer":
        assert 0 < len(frames) < FRAMES
    else:
        assert len(frames) == outcome
    assert all(frame.shape == (32, 32, 3) for _, frame in frames)


# ------------------------------------------------- the command lines of issue 22

def test_prepare_refuses_a_bad_split_file_in_one_line_and_writes_nothing(tmp_path):
    root = str(tmp_path / "ffpp")
    _ffpp_pair(root)
    _touch(root, "splits/train.json", b'[["000", "104"]')
    out_dir = tmp_path / "out"
    result = run_module("data_pipeline.prepare", "--layout=ffpp", f"--data_dir={root}",
                        f"--out_dir={out_dir}", timeout=300)
    _assert_one_error_line(result, "splits/train.json is not valid JSON")
    assert not out_dir.exists()


def test_prepare_of_dfdc_counts_parts_and_entries_of_the_wrong_shape_and_goes_on(tmp_path):
    root = str(tmp_path / "dfdc")
    noise = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    with video_writer.VideoWriter(os.path.join(root, "dfdc_train_part_0", "a.mp4"), (64, 64),
                                  video_writer.COMPRESSIONS["c23"]) as writer:
        for frame in noise:
            writer.write(frame)
    _touch(root, "dfdc_train_part_0/metadata.json", json.dumps(
        {"a.mp4": {"label": "REAL"}, "x.mp4": "FAKE", "b.mp4": {"label": "FAKE", "original": 7},
         "c.mp4": {"label": "UNSURE"}}).encode())
    _touch(root, "dfdc_train_part_1/metadata.json", b'["a.mp4"]')
    out_dir = tmp_path / "out"
    result = run_module("data_pipeline.prepare", "--layout=dfdc", f"--data_dir={root}",
                        f"--out_dir={out_dir}", *PREPARE_FAST, timeout=300)
    # The one readable video is processed (it has no face): nothing usable, exit status 1, no traceback.
    _assert_one_error_line(result, "nothing usable was produced", status=1)
    with open(out_dir / "manifest.json") as f:
        by_reason = json.load(f)["skipped"]["by_reason"]
    assert by_reason == {"malformed_metadata": 1, "malformed_entry": 2, "unknown_label": 1, "no_face": 1}


def test_prepare_refuses_an_out_dir_whose_own_files_are_not_its_own(tmp_path):
    root = str(tmp_path / "dfdc")
    _dfdc_part(root, "dfdc_train_part_0", _GOOD_PART)
    out_dir = tmp_path / "out"
    _touch(str(out_dir), ".work/options.json", b"[1, 2")
    result = run_module("data_pipeline.prepare", "--layout=dfdc", f"--data_dir={root}",
                        f"--out_dir={out_dir}", timeout=300)
    _assert_one_error_line(result, "options.json cannot be read")
    assert sorted(os.listdir(out_dir)) == [".work"]


def test_prepare_killed_after_some_videos_resumes_from_them(tmp_path):
    from data_pipeline.runners import shards

    corpus = str(tmp_path / "corpus")
    synthetic.generate(corpus, num_originals=synthetic.MIN_ORIGINALS, methods=("Deepfakes",),
                       compressions=("c23",), seconds=0.2, progress=False)
    items = layouts.scan("ffpp", corpus, compressions=("c23",), methods=("Deepfakes",)).items
    out_dir = tmp_path / "out"
    prepare_here(out_dir, layout="ffpp", data_dir=corpus, max_videos=2)
    # What a run killed after two videos leaves: their work files, no shard, no manifest, and a
    # half-written temporary file of the video it was on.
    for name in os.listdir(out_dir):
        if name != shards.WORK_DIR:
            os.remove(out_dir / name)
    work = out_dir / shards.WORK_DIR
    interrupted = work / f".tmp-{shards.work_key(items[2].video_id)}.tfrecord"
    interrupted.write_bytes(b"\0" * 100)
    rerun = run_module("data_pipeline.prepare", "--layout=ffpp", f"--data_dir={corpus}",
                       f"--out_dir={out_dir}", *PREPARE_FAST)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(items) - 2} videos to process (2 already done)" in rerun.stderr
    assert not interrupted.exists()
    assert sorted({r["video/id"].decode() for r in read_records(str(out_dir))}) == sorted(
        item.video_id for item in items)
    # The rerun's speed counts the videos it processed, over its own wall-clock time.
    with open(out_dir / "manifest.json") as f:
        manifest = json.load(f)
    speed = manifest["speed"]
    rerun_frames = sum(shards.read_result(str(work), item.video_id)["frames"] for item in items[2:])
    assert speed["frames"] == rerun_frames
    assert 0 < speed["wall_seconds"] <= manifest["duration_s"] + 0.06  # rounded to 0.01 s and to 0.1 s
    # Computed from the unrounded seconds: a run of over 0.5 s puts it within 2 % (or 0.01) of this ratio.
    ratio = speed["frames"] / speed["wall_seconds"]
    assert speed["frames_per_second"] == pytest.approx(ratio, rel=0.02, abs=0.01)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A segmenter run trained for two steps on 32x32 records, with its records folder."""
    folder = tmp_path_factory.mktemp("tiny_run")
    pattern = write_shards(str(folder / "records"), "train", 8, num_shards=1)
    run_dir = str(folder / "run")
    train_here(exec_mode="train", input_size=32, batch_size=2, num_iter=2, save_every=2,
               train_pattern=pattern, run_dir=run_dir, augmentation="none")
    return run_dir, pattern


def test_train_on_a_corrupt_shard_is_one_error_line_naming_it(tmp_path, tiny_run):
    _, pattern = tiny_run
    bad = str(tmp_path / "train-00000-of-00001.tfrecord")
    _bad_shard("random_bytes", bad)
    result = run_module("unet_industrial.train", "--exec_mode=train", "--input_size=32", "--batch_size=2",
                        "--num_iter=2", f"--train_pattern={bad}", f"--run_dir={tmp_path / 'run'}",
                        timeout=300)
    _assert_one_error_line(result, f"{bad} is not a readable TFRecord shard")
    assert not (tmp_path / "run").exists()  # it failed on the first batch, before the run folder


def test_evaluate_on_a_bad_shard_or_model_is_one_error_line_naming_it(tmp_path, tiny_run, good_model_bytes):
    run_dir, pattern = tiny_run
    bad = str(tmp_path / "val-00000-of-00001.tfrecord")
    _bad_shard("png_that_does_not_decode", bad)
    result = run_module("unet_industrial.evaluate", f"--run_dir={run_dir}", f"--data_pattern={bad}",
                        "--split=val", "--calibrate", timeout=300)
    _assert_one_error_line(result, f"{bad} is not a readable TFRecord shard")
    assert not os.path.exists(os.path.join(run_dir, "eval"))
    broken = str(tmp_path / "broken")
    os.makedirs(os.path.join(broken, "checkpoints"))
    with open(os.path.join(run_dir, "config.json"), "rb") as f:
        _touch(broken, "config.json", f.read())
    _touch(broken, "checkpoints/last.keras", b"PK\x03\x04" + b"\0" * 100)
    result = run_module("unet_industrial.evaluate", f"--run_dir={broken}", f"--data_pattern={pattern}",
                        "--split=val", "--calibrate", timeout=300)
    _assert_one_error_line(result, "last.keras is not a readable Keras model")
    _touch(broken, "checkpoints/last.keras", good_model_bytes["other_size"])
    result = run_module("unet_industrial.evaluate", f"--run_dir={broken}", f"--data_pattern={pattern}",
                        "--split=val", "--calibrate", timeout=300)
    _assert_one_error_line(result, "takes 64x64x3 input")
    assert sorted(os.listdir(broken)) == ["checkpoints", "config.json"]
