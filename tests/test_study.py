"""`python -m unet_industrial.study`: which models a protocol trains, on what, and the matrix it writes."""

import glob
import json
import os

import cv2
import pytest
from conftest import run_module, write_records

from unet_industrial.config import ConfigError
from unet_industrial.experiments import study

METHODS = ("Deepfakes", "FaceSwap")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_records(str(tmp_path_factory.mktemp("records")))


def _study(records, run_dir, protocol, **fields):
    return study.StudyConfig(protocol=protocol, data_dir=records, run_dir=str(run_dir),
                                 **{"num_iter": 2, "batch_size": 4, **fields})


def test_plans_follow_the_records(records):
    manifest = study.read_manifest(records)
    cross_method = study.plan(_study(records, "unused", "cross_manipulation"), manifest)
    assert cross_method == [("all-methods", {}), ("without-Deepfakes", {"train_methods": "FaceSwap"}),
                            ("without-FaceSwap", {"train_methods": "Deepfakes"})]
    cross_compression = study.plan(_study(records, "unused", "cross_compression"), manifest)
    assert cross_compression == [("train-c23", {"train_compressions": "c23"}),
                                 ("train-c40", {"train_compressions": "c40"})]
    # Matrix columns: the test split's methods, or its compressions (training
    # on one compression is the reader's selection, tested with the reader).
    assert study.columns(_study(records, "unused", "cross_manipulation"), manifest) == [
        ("Deepfakes", "by_method", "Deepfakes"), ("FaceSwap", "by_method", "FaceSwap")]
    assert study.columns(_study(records, "unused", "cross_compression"), manifest) == [
        ("c23", "by_compression", "c23"), ("c40", "by_compression", "c40")]
    versus = study.models(_study(records, "unused", "segmentation_vs_classification"), manifest)
    assert [(name, model.model_kind, model.classifier) for name, model in versus] == [
        ("segmenter", "segmenter", "xception"),
        ("classifier-efficientnet_b0", "classifier", "efficientnet_b0")]
    cross_classifier = study.plan(
        _study(records, "unused", "cross_manipulation", model_kind="classifier"), manifest)
    assert cross_classifier[1] == ("without-Deepfakes", {
        "train_methods": "FaceSwap", "model_kind": "classifier", "classifier": "efficientnet_b0",
        "weights": "none"})
    trained = dict(study.models(_study(records, "unused", "cross_compression"), manifest))
    assert trained["train-c40"].train_compression_list == ("c40",)
    assert trained["train-c40"].run_dir == os.path.join("unused", "train-c40")


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_cross_manipulation_study_writes_its_matrix_from_each_models_test_report(records, tmp_path):
    run_dir = tmp_path / "study"
    args = ["--protocol=cross_manipulation", f"--data_dir={records}", f"--run_dir={run_dir}", "--num_iter=2",
            "--batch_size=4"]
    result = run_module("unet_industrial.study", *args, timeout=600)
    assert result.returncode == 0, result.stderr
    record = _read(run_dir / "study.json")
    assert list(record["runs"]) == ["all-methods", "without-Deepfakes", "without-FaceSwap"]
    markdown = (run_dir / "matrix.md").read_text()
    assert "| trained | Deepfakes | FaceSwap | all |" in markdown
    for name, expected_methods in (("all-methods", ""), ("without-Deepfakes", "FaceSwap"),
                                   ("without-FaceSwap", "Deepfakes")):
        run = record["runs"][name]
        saved = _read(os.path.join(run["run_dir"], "config.json"))["config"]
        assert saved["train_methods"] == expected_methods
        report = _read(os.path.join(run["run_dir"], "eval", "test", "report.json"))
        for level in ("frame", "video"):
            expected = {method: report[level]["by_method"][method]["roc_auc"] for method in METHODS}
            expected["all"] = report[level]["roc_auc"]
            assert run[level] == pytest.approx(expected)
        cells = [f"{run['frame'][column]:.3f}" for column in (*METHODS, "all")]
        row = f"| {name} | " + " | ".join(cells) + " |"
        assert row in markdown
    image = cv2.imread(str(run_dir / "matrix.png"))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 200

    # Started again with the same flags, the study reuses every finished model
    # (in this process: the command line's start-up was tested above): no model
    # file or report is written again. Compared through the files rather than
    # the log, which other tests' absl set-up in the same worker can silence.
    written = {path: os.stat(path).st_mtime_ns
               for path in glob.glob(str(run_dir / "*" / "**"), recursive=True) if os.path.isfile(path)}
    again = study.run(_study(records, run_dir, "cross_manipulation"))
    assert again["runs"] == record["runs"]
    assert {path: os.stat(path).st_mtime_ns for path in written} == written
    assert _read(run_dir / "study.json")["runs"] == record["runs"]

    # With other flags it refuses the folder, in one line (the command line prints it as `error: ...`).
    with pytest.raises(ConfigError) as refused:
        study.run(_study(records, run_dir, "cross_manipulation", batch_size=8))
    assert str(refused.value) == (f"--run_dir={str(run_dir)!r} holds a study with another configuration; "
                                  "choose a new --run_dir")


@pytest.mark.parametrize("make, protocol, fields, message", [
    (lambda d: os.makedirs(d), "cross_manipulation", {}, "holds no manifest.json"),
    (lambda d: write_records(d, methods=("Deepfakes",)), "cross_manipulation", {},
     "needs fakes of at least two methods; "),
    (lambda d: write_records(d, compressions=("c23",)), "cross_compression", {},
     "needs records of at least two compressions"),
    (write_records, "segmentation_vs_classification", {"classifier": "xception"},
     "--input_size=32 is below 71, the smallest input keras.applications accepts for --classifier=xception"),
])
def test_records_that_cannot_serve_the_protocol_are_refused(tmp_path, make, protocol, fields, message):
    records = str(tmp_path / "records")
    make(records)
    with pytest.raises(ConfigError, match=message):
        study.validate(_study(records, tmp_path / "study", protocol, **fields))
    assert not (tmp_path / "study").exists()


def test_the_docker_job_router_runs_studies(tmp_path):
    # `docker run IMAGE study ...` goes through unet_industrial/__main__.py.
    result = run_module("unet_industrial", "study", "--protocol=cross_manipulation",
                        f"--data_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: --data_dir={str(tmp_path)!r} holds no manifest.json: "
                                                  "give a folder that data_pipeline.prepare wrote"]


def test_a_method_the_records_do_not_hold_is_refused_before_training(records, tmp_path):
    result = run_module("unet_industrial.train", "--exec_mode=train", "--input_size=32",
                        f"--train_pattern={records}/train-*.tfrecord", f"--run_dir={tmp_path / 'run'}",
                        "--train_methods=Deepfakes,NoSuchMethod", timeout=120)
    assert result.returncode == 2
    assert "--train_methods names NoSuchMethod, which " in result.stderr
    assert "(it has Deepfakes, FaceSwap)" in result.stderr
    assert not (tmp_path / "run").exists()
