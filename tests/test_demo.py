"""The demo end to end at toy size: every stage runs through the real libraries and leaves its files."""

import json
import os
import re

import pytest
from conftest import run_module

from unet_industrial.config import ConfigError
from unet_industrial.experiments import demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    config = demo.DemoConfig(workdir=str(tmp_path_factory.mktemp("demo") / "work"), num_originals=6,
                             seconds=0.4, frames_per_video=4, image_size=32, batch_size=4, num_iter=2)
    report, table = demo.run(config)
    return config, report, table


def test_the_demo_leaves_corpus_records_model_calibration_report_and_detections(demo_run):
    config, report, _ = demo_run
    assert os.path.isfile(os.path.join(config.corpus_dir, "synthetic.json"))
    with open(os.path.join(config.records_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert set(manifest["counts"]["examples"]) == {"train", "val", "test"}
    assert manifest["config"]["mask_source"] == "diff"  # the product's own masks, not the corpus's truth
    assert os.path.isfile(os.path.join(config.model_dir, "checkpoints", "last.keras"))
    with open(os.path.join(config.model_dir, "calibration.json")) as f:
        assert json.load(f)["data_pattern"] == config.records("val")
    with open(os.path.join(config.model_dir, "eval", "test", "report.json")) as f:
        assert json.load(f)["frame"]["roc_auc"] == report["frame"]["roc_auc"]
    with open(os.path.join(config.corpus_dir, "synthetic.json")) as f:
        corpus = json.load(f)
    test_fakes = {fake["id"] for fake in corpus["fakes"] if fake["split"] == "test"}
    test_reals = {original["id"] for original in corpus["originals"] if original["split"] == "test"}
    outputs = sorted(os.listdir(config.detect_dir))
    assert len(outputs) == 4
    fake_name, real_name = outputs[0][len("fake-"):-len(".json")], outputs[2][len("real-"):-len(".json")]
    assert outputs == [f"fake-{fake_name}.json", f"fake-{fake_name}.mp4", f"real-{real_name}.json",
                       f"real-{real_name}.mp4"]
    assert fake_name in test_fakes and real_name in test_reals


def test_the_demo_table_reports_the_test_figures_blurred_too_and_both_verdicts(demo_run):
    config, report, table = demo_run
    lines = table.splitlines()
    assert lines[:2] == ["| figure | value |", "|---|---|"]
    low, high = report["frame"]["roc_auc_interval"]
    assert lines[2] == f"| frame ROC AUC (test) | {report['frame']['roc_auc']:.3f} ({low:.3f}-{high:.3f}) |"
    assert lines[4] == f"| pixel IoU on fake frames (test) | {report['pixel']['iou']:.3f} |"
    with open(os.path.join(config.model_dir, "eval", "test-blur0.5", "report.json")) as f:
        blurred = json.load(f)
    assert blurred["degradation"] == {"name": "blur", "value": 0.5}
    for line, section in zip(lines[5:7], (report, blurred)):
        (real_as_real, real_as_fake), _ = section["video"]["confusion_matrix"]
        assert line.endswith(f" | {real_as_fake} of {real_as_real + real_as_fake} |"), line
    low, high = blurred["frame"]["roc_auc_interval"]
    assert lines[7] == (f"| frame ROC AUC (test, crops blurred by 0.5 px) | "
                        f"{blurred['frame']['roc_auc']:.3f} ({low:.3f}-{high:.3f}) |")
    assert lines[8].startswith("| detect, fake (") and lines[9].startswith("| detect, real (")
    for line in lines[8:]:
        verdict = line.split(" video | ")[1]
        assert verdict.split(" ")[0] in ("fake", "real", "no"), line


def test_a_used_workdir_or_a_bad_size_is_refused(demo_run, tmp_path):
    config, _, _ = demo_run
    with pytest.raises(ConfigError, match="is not an empty folder"):
        demo.validate(config)
    result = run_module("unet_industrial.demo", f"--workdir={tmp_path / 'new'}", "--image_size=40")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --image_size=40 is not a positive multiple of 16"
    assert not os.path.exists(tmp_path / "new")


def test_more_originals_than_the_catalogue_has_faces_is_refused_before_anything_is_written(tmp_path,
                                                                                         monkeypatch):
    # The corpus's own range allows 100 originals, but MTCNN finds a face in
    # fewer of the packaged photographs; the demo must say so before writing
    # anything. Cut to four photographs, the catalogue runs out at 6 (the
    # command line turns the ConfigError into its `error:` line, as above).
    from data_pipeline.synthetic import photos

    four = photos.catalogue()[:4]
    monkeypatch.setattr(photos, "catalogue", lambda: four)
    workdir = tmp_path / "new"
    with pytest.raises(ConfigError) as refused:
        demo.run(demo.DemoConfig(workdir=str(workdir), num_originals=6))
    assert re.fullmatch(r"--num_originals=6: MTCNN finds a face in only [0-4] of the photographs",
                        str(refused.value)), refused.value
    assert not os.path.exists(workdir)
