"""A trained run's model for prediction: loading a checkpoint and turning face crops into
fake-pixel probabilities.

Shared by evaluation and detection, so both feed the model exactly as
training did (pixels in [-1, 1], the run's input size and channels).

A segmenter's run gives a probability per pixel, (N, S, S); a classifier's
(unet_industrial.models.classifier) one per crop, (N,). Which one a checkpoint is
follows from its output: a map or a single logit.

Test-time augmentation (`tta="dihedral"`) averages the probabilities of the
eight flips and quarter turns of each crop, each turned back: the views the
reference augmentation trains on. It costs eight times the model time and
its measured effect is small and of either sign (docs/results.md,
"Test-time augmentation"), so it is offered, not the default.
"""

import dataclasses
import os
import zipfile

import keras
import numpy as np

from data_pipeline import model_input
from unet_industrial import run_files, verdicts
from unet_industrial.config import CHECKPOINTS, ConfigError
from unet_industrial.models import unet as model_lib  # noqa: F401  (registers the custom layers for loading)

# (quarter turns, horizontal flip) of each view a test-time augmentation
# (verdicts.TTAS) averages.
TTA_VIEWS = {"none": ((0, False),),
             "dihedral": tuple((turns, flip) for turns in range(4) for flip in (False, True))}


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A loaded checkpoint and the input it expects.

    Attributes:
      model: the Keras model (float32 logits out).
      input_size: side of its square input.
      channels: 1 (gray) or 3 (RGB).
      checkpoint: path of the loaded `.keras` file.
      step: training step of the checkpoint (None if unknown).
      kind: "segmenter" (a logit per pixel) or "classifier" (one per crop).
    """

    model: keras.Model
    input_size: int
    channels: int
    checkpoint: str
    step: object
    kind: str = "segmenter"

    @property
    def predicts_masks(self):
        return self.kind == "segmenter"

    def probabilities(self, crops, tta="none", batch_size=32):
        """Fake probabilities of face crops: per pixel for a segmenter, per crop for a classifier.

        Args:
          crops: (N, H, W, 3) uint8 RGB face crops as the recipe cut them; resized to
            input_size by `data_pipeline.model_input.to_model_input`, as the reader does.
          tta: a verdicts.TTAS name.
          batch_size: crops per model call.

        Returns:
          (N, S, S) float32 probabilities; a classifier's (N,).
        """
        crops = np.asarray(crops)
        images = np.asarray(model_input.to_model_input(crops, self.input_size, self.channels))
        return self.model_input_probabilities(images, tta, batch_size)

    def model_input_probabilities(self, images, tta="none", batch_size=32):
        """Fake probabilities (as `probabilities`) of images already in the model's input range.

        Args:
          images: (N, S, S, channels) float32 in [-1, 1], as `data_pipeline.reader` gives them.
          tta: a verdicts.TTAS name: "none", or "dihedral" for the mean over
            the eight flips and quarter turns.
          batch_size: crops per model call.

        Returns:
          (N, S, S) float32 probabilities; a classifier's (N,).
        """
        if tta not in TTA_VIEWS:
            raise ConfigError(f"--tta={tta!r} is not one of {', '.join(TTA_VIEWS)}")
        images = np.asarray(images, np.float32)
        total = np.zeros(images.shape[:3] if self.predicts_masks else images.shape[:1], np.float32)
        for turns, flip in TTA_VIEWS[tta]:
            view = np.rot90(images, turns, axes=(1, 2))
            view = np.ascontiguousarray(view[:, :, ::-1] if flip else view)
            logits = np.concatenate([self.model.predict_on_batch(view[start:start + batch_size])[..., 0]
                                     for start in range(0, len(view), batch_size)])
            probabilities = verdicts.sigmoid(logits.astype(np.float32))
            if self.predicts_masks:
                # Undo the view: first the flip, then the turns.
                probabilities = np.rot90(probabilities[:, :, ::-1] if flip else probabilities, -turns,
                                         axes=(1, 2))
            total += probabilities
        return total / len(TTA_VIEWS[tta])


def load(run_dir, checkpoint="best"):
    """Loads a run's checkpoint for prediction.

    Args:
      run_dir: a training run folder.
      checkpoint: "best" or "last"; "best" falls back to "last" for runs
        trained without evaluation (which keep no best checkpoint).

    Returns:
      A TrainedModel.

    Raises:
      ConfigError: one line for the user: a folder without a model, a model
        file that is not a readable Keras model (corrupt, cut short, not
        ours; loaded with Keras' safe mode, so it runs no code), or one
        whose input is not the square size and channel count the run was
        trained on.
    """
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"--checkpoint={checkpoint!r} is not one of {', '.join(CHECKPOINTS)}")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--run_dir={run_dir!r} is not a folder")
    path = run_files.checkpoint_path(run_dir, checkpoint)
    if checkpoint == "best" and not os.path.exists(path):
        path = run_files.checkpoint_path(run_dir, "last")
    if not os.path.exists(path):
        raise ConfigError(f"{run_dir} has no trained model ({os.path.relpath(path, run_dir)} is missing)")
    # Keras reports a file that is not a zip archive as "File not found".
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path} is not a readable Keras model: "
                          "not a .keras archive (corrupt or cut short)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:200]
        raise ConfigError(f"{path} is not a readable Keras model "
                          f"({type(error).__name__}: {reason})") from error
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[1] == shape[2]
            and shape[3] in (1, 3)):
        raise ConfigError(f"{path} takes input {shape}, not square face crops of 1 or 3 channels")
    _, size, _, channels = shape
    trained_on = run_files.saved_config(run_dir) or {}
    expected = (trained_on.get("input_size", size), trained_on.get("input_channels", channels))
    if (size, channels) != expected:
        raise ConfigError(f"{path} takes {size}x{size}x{channels} input, but {run_dir} was trained on "
                          f"{expected[0]}x{expected[0]}x{expected[1]} crops: "
                          "the file is not this run's model")
    # A segmenter's output is (batch, height, width, 1), a classifier's (batch, 1).
    kind = "segmenter" if len(model.output_shape) == 4 else "classifier"
    state_path = run_files.train_state_path(run_dir)
    step = None
    if os.path.exists(state_path):
        try:
            state = run_files.read_json(state_path)
            step = state["best"]["step"] if path.endswith(run_files.BEST_CHECKPOINT) else state.get("step")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the training state {state_path}: {error}") from error
    return TrainedModel(model, int(size), int(channels), path, step, kind)
