"""prepare's Beam runner (`--runner=beam`): the local runner's examples, shards and manifest.

The multi-process Beam run goes through `python -m data_pipeline.prepare`,
Beam's own options after `--` included; the others run in this process.
"""

import hashlib
import json
import os
import sys

import pytest
from conftest import PREPARE_FAST, prepare_here, read_records, run_module

import data_pipeline
from data_pipeline import config as config_lib
from data_pipeline import preparation, schema, synthetic

# 4 videos of 3 frames a split: 3 shards of each split to plan and write.
EXAMPLES_PER_SHARD = 4
FLAGS = [*PREPARE_FAST, f"--examples_per_shard={EXAMPLES_PER_SHARD}"]
# Two worker processes, each running the per-video work. The runner is named FnApiRunner, the engine
# of Beam's Python DirectRunner for batch pipelines and the one that honours these options: Beam
# 2.77's "DirectRunner" first tries Prism, a binary it downloads from GitHub, which ignores them,
# so that name would run one way on a machine with internet and another way without.
BEAM_MULTI_PROCESSING = ["--runner=beam", "--beam_runner=FnApiRunner", "--", "--direct_num_workers=2",
                         "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A synthetic FF++ corpus: 6 originals and their 6 Deepfakes, a pair of each in train, val and test."""
    root = str(tmp_path_factory.mktemp("corpus"))
    synthetic.generate(root, num_originals=6, methods=("Deepfakes",), compressions=("c23",), seconds=0.4,
                       progress=False)
    return root


def _prepare(corpus, out_dir, *flags):
    """The command line's run; returns the manifest."""
    result = run_module("data_pipeline.prepare", "--layout=ffpp", f"--data_dir={corpus}",
                        f"--out_dir={out_dir}", *FLAGS, *flags)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


def _prepare_here(corpus, out_dir, **fields):
    """A run in this process (FLAGS as fields); returns the manifest."""
    return prepare_here(out_dir, layout="ffpp", data_dir=corpus, examples_per_shard=EXAMPLES_PER_SHARD,
                        **fields)


def _examples(out_dir, split):
    """{(video id, frame index, face number): (sha1 of the image, sha1 of the mask)} of a split."""
    def sha1(data):
        return hashlib.sha1(data).hexdigest()

    return {(r[schema.VIDEO_ID], int(r[schema.FRAME_INDEX]), int(r[schema.FACE_NUMBER])):
            (sha1(r[schema.IMAGE]), sha1(r[schema.MASK])) for r in read_records(out_dir, split)}


def _shard_files(out_dir):
    return sorted(name for name in os.listdir(out_dir) if name.endswith(".tfrecord"))


def test_beam_writes_the_same_examples_shards_and_counts_as_the_local_runner(tmp_path, corpus):
    local = _prepare_here(corpus, tmp_path / "local")
    beam = _prepare(corpus, tmp_path / "beam", *BEAM_MULTI_PROCESSING)
    assert (local["config"]["runner"], beam["config"]["runner"]) == ("local", "beam")
    assert beam["counts"] == local["counts"]
    assert beam["skipped"] == local["skipped"] == {"by_reason": {}, "videos": []}
    assert sorted(beam["shards"]) == ["test", "train", "val"]
    for split, names in beam["shards"].items():
        assert names == [f"{split}-{i:05d}-of-00003.tfrecord" for i in range(3)]
        examples = _examples(tmp_path / "beam", split)
        assert len(examples) == beam["counts"]["examples"][split]["total"] == 12
        assert examples == _examples(tmp_path / "local", split)
    assert beam["shards"] == local["shards"]
    # Same plan, same per-video work files: the shards are the same bytes.
    assert _shard_files(tmp_path / "beam") == _shard_files(tmp_path / "local")
    for name in _shard_files(tmp_path / "local"):
        assert (tmp_path / "beam" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_beam_resumes_a_folder_without_redoing_its_videos(tmp_path, corpus):
    out_dir = tmp_path / "out"
    _prepare_here(corpus, out_dir)
    work = out_dir / ".work"
    done = {path.name: path.stat().st_mtime_ns for path in work.iterdir() if path.suffix == ".tfrecord"}
    shards = {name: (out_dir / name).read_bytes() for name in _shard_files(out_dir)}
    # Beam in this one process (see BEAM_MULTI_PROCESSING): nothing is left to do but the shards.
    _prepare_here(corpus, out_dir, runner="beam", beam_runner="FnApiRunner")
    assert {name: (work / name).stat().st_mtime_ns for name in done} == done
    assert {name: (out_dir / name).read_bytes() for name in _shard_files(out_dir)} == shards


def test_beam_missing_is_one_error_naming_its_requirements_file(tmp_path, monkeypatch):
    # As if Beam were not installed: importing it fails, and the Beam runner is imported afresh.
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    monkeypatch.delitem(sys.modules, "data_pipeline.runners.beam", raising=False)
    monkeypatch.delattr(data_pipeline.runners, "beam", raising=False)
    config = config_lib.PrepareConfig(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"), runner="beam")
    with pytest.raises(config_lib.PrepareError, match=r"pip install -r requirements-beam\.txt"):
        preparation.prepare(config)
