"""The recipe flagfiles in unet_industrial/configs/ are valid training configurations."""

import dataclasses
import glob
import os

import pytest

from conftest import REPO_ROOT, write_shards
from unet_industrial import config as config_lib

FLAGFILES = sorted(glob.glob(os.path.join(REPO_ROOT, "unet_industrial", "configs", "*.flags")))


def _flag_values(path):
    """{name: text value} of a flagfile's flags (a bare --name is the boolean True)."""
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            assert line.startswith("--"), f"{path}: {line!r} is not a flag"
            name, _, value = line[2:].partition("=")
            values[name] = value if _ else "true"
    return values


def test_there_is_a_recipe_for_the_shipped_detector():
    assert [os.path.basename(path) for path in FLAGFILES] == ["ffpp_c23.flags"]


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_a_flagfile_builds_a_valid_training_config(path, tmp_path):
    fields = {field.name: field for field in dataclasses.fields(config_lib.TrainConfig)}
    defaults = config_lib.TrainConfig()
    chosen = {}
    for name, text in _flag_values(path).items():
        assert name in fields, f"{os.path.basename(path)} sets --{name}, which train does not define"
        kind = type(getattr(defaults, name))
        chosen[name] = (text.lower() == "true") if kind is bool else kind(text)
    pattern = write_shards(str(tmp_path / "records"), "train", 8)
    config = config_lib.TrainConfig(**chosen, train_pattern=pattern, eval_pattern=pattern)
    config_lib.validate(config)
    with open(path) as f:
        header = f.read()
    # The header states how to run it and what it gives.
    assert "python -m unet_industrial.train --flagfile=" in header and "ROC AUC" in header
