"""The crop recipe: how face crops are cut from a video, recorded by prepare and followed by detect.

A model only means what it learned on crops cut one way: the face box found
by MTCNN on a copy of at most `detection_max_side` pixels, tracked through
`frames_per_video` sampled frames, squared and enlarged by `crop_scale`, cut
from the full-resolution frame and resized to `image_size`. prepare writes
this recipe into manifest.json, training copies it into the run's
config.json, calibration keeps it in calibration.json, and detect and
evaluate cut and feed exactly that, or refuse a mismatch in one line.
"""

import dataclasses
import json
import os

# Where a run keeps its recipe, and the manifest's key for it.
RECIPE_KEY = "crop_recipe"


class RecipeError(ValueError):
    """A recipe that is missing, malformed or does not match; one line for the user."""


@dataclasses.dataclass(frozen=True)
class CropRecipe:
    """How prepare cut its face crops.

    Attributes:
      image_size: side of the stored square crop, in pixels.
      crop_scale: the square face box's enlargement (FaceForensics++'s 1.3).
      frames_per_video: evenly spaced frames sampled per video.
      frame_stride: if positive, every frame_stride-th frame instead.
      detect_every: MTCNN runs at least every this many video frames; the
        faces are tracked in between.
      detection_max_side: MTCNN looks at a copy whose longer side is at most this.
    """

    image_size: int
    crop_scale: float
    frames_per_video: int
    frame_stride: int
    detect_every: int
    detection_max_side: int

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source):
        """The recipe stored in a JSON dict; `source` names the file for the error.

        Raises:
          RecipeError: for missing or unknown fields.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(values, dict) or set(values) != names:
            raise RecipeError(f"{source} holds no valid {RECIPE_KEY} (expected the fields "
                              f"{', '.join(sorted(names))})")
        return cls(**values)


def from_manifest(manifest_path):
    """The recipe of a records folder's manifest.json, or None for records prepared before recipes.

    Raises:
      RecipeError: for a manifest that cannot be read or holds a malformed recipe.
    """
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise RecipeError(f"cannot read {manifest_path}: {error}") from error
    if RECIPE_KEY not in manifest:
        return None
    return CropRecipe.from_dict(manifest[RECIPE_KEY], manifest_path)


def manifest_beside(file_pattern):
    """The manifest.json in the folder of a records pattern, or None where there is none (or it is remote)."""
    if not file_pattern or "://" in file_pattern:
        return None
    path = os.path.join(os.path.dirname(os.path.expanduser(file_pattern)), "manifest.json")
    return path if os.path.isfile(path) else None


def of_records(file_pattern):
    """The crop recipe of the records a pattern names (their manifest.json's); None without one.

    Raises:
      RecipeError: for a manifest that cannot be read or holds a malformed recipe.
    """
    manifest = manifest_beside(file_pattern)
    return from_manifest(manifest) if manifest else None
