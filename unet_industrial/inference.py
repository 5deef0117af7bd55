"""A trained run's model for prediction: loading a checkpoint and turning face crops into fake-pixel probabilities.

Shared by evaluation and detection, so both feed the model exactly as
training did (pixels in [-1, 1], the run's input size and channels).

A segmenter's run gives a probability per pixel, (N, S, S); a classifier's
(unet_industrial.classifier) one per crop, (N,). Which one a checkpoint is
follows from its output: a map or a single logit.

Test-time augmentation (`tta="dihedral"`) averages the probabilities of the
eight flips and quarter turns of each crop, each turned back: the views the
reference augmentation trains on. On four demo-sized models it lowered the
share of real test crops with any predicted fake pixel (0.28 -> 0.19,
0.56 -> 0.17, 0.37 -> 0.33, 0.22 -> 0.17) but moved frame ROC AUC by
-0.018 to +0.025 (mean -0.003) and video ROC AUC by -0.009 to +0.026 (mean
+0.007), for eight times the model time; so it is offered, not the default.
"""

import dataclasses
import os

import keras
import numpy as np

from unet_industrial import model as model_lib  # noqa: F401  (registers the custom layers for loading)
from unet_industrial import run_files
from unet_industrial import verdicts
from unet_industrial.config import CHECKPOINTS, ConfigError

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
          crops: (N, S, S, 3) uint8 RGB face crops already at input_size.
          tta: a verdicts.TTAS name.
          batch_size: crops per model call.

        Returns:
          (N, S, S) float32 probabilities; a classifier's (N,).
        """
        crops = np.asarray(crops)
        if crops.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"crops of {crops.shape[1:3]} for a model of {self.input_size} px")
        images = crops.astype(np.float32) / 255.0
        if self.channels == 1:
            # ITU-R 601 luma, the weights TensorFlow's rgb_to_grayscale uses.
            images = images @ np.float32([0.2989, 0.5870, 0.1140])[:, None]
        return self.model_input_probabilities(images * 2.0 - 1.0, tta, batch_size)

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
      ConfigError: for a folder without a model (one line for the user).
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
    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, OSError) as error:
        raise ConfigError(f"cannot load {path}: {error}") from error
    _, size, _, channels = model.input_shape
    # A segmenter's output is (batch, height, width, 1), a classifier's (batch, 1).
    kind = "segmenter" if len(model.output_shape) == 4 else "classifier"
    state_path = run_files.train_state_path(run_dir)
    step = None
    if os.path.exists(state_path):
        state = run_files.read_json(state_path)
        step = state["best"]["step"] if path.endswith(run_files.BEST_CHECKPOINT) else state.get("step")
    return TrainedModel(model, int(size), int(channels), path, step, kind)
