"""Degraded copies of face crops: how a model's figures fall when a video is softer, noisier or smaller.

A detector trained on one kind of video meets others: out of focus,
noisier, re-compressed, or filmed at a lower resolution. Evaluating the
same split with its crops degraded on purpose (`evaluate --degrade=...`)
measures how much of a model's score rests on the fine texture of its
training videos: the demo model, for one, reads texture (docs/results.md,
"Robustness").

A degradation is written NAME:VALUE:
  blur:SIGMA        Gaussian blur, SIGMA in crop pixels (out of focus).
  noise:SIGMA       additive Gaussian noise, SIGMA in grey levels of 255 (sensor noise).
  jpeg:QUALITY      JPEG re-compression at QUALITY 1-100.
  downscale:FACTOR  shrunk by FACTOR (area) and enlarged back (linear): a
                    source of lower resolution.
"""

import dataclasses

import cv2
import numpy as np

from unet_industrial.config import ConfigError

# name -> (lowest, highest) value allowed, and whether the value is a whole number.
_RANGES = {"blur": (0.1, 10.0, False), "noise": (0.1, 64.0, False), "jpeg": (1, 100, True),
           "downscale": (1.1, 8.0, False)}
NAMES = tuple(_RANGES)


@dataclasses.dataclass(frozen=True)
class Degradation:
    """One named degradation and its strength (see the module docstring)."""

    name: str
    value: float

    @property
    def tag(self):
        """A folder-name-safe label, e.g. "blur0.7"."""
        return f"{self.name}{self.value:g}"


def parse(spec):
    """Parses "NAME:VALUE" into a Degradation.

    Raises:
      ConfigError: naming the flag, for an unknown name, a value that is not
        a number, or one out of range.
    """
    name, _, text = spec.partition(":")
    if name not in _RANGES:
        raise ConfigError(f"--degrade={spec!r}: write NAME:VALUE with NAME one of {', '.join(NAMES)}")
    low, high, whole = _RANGES[name]
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--degrade={spec!r}: {text!r} is not a number") from None
    if not low <= value <= high or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"--degrade={spec!r}: the {name} value must be {kind} from {low:g} to {high:g}")
    return Degradation(name, int(value) if whole else value)


def _one(crop, degradation, rng):
    """Degrades one (S, S) or (S, S, C) uint8 crop (OpenCV reads channels as they are)."""
    name, value = degradation.name, degradation.value
    if name == "blur":
        return cv2.GaussianBlur(crop, (0, 0), value)
    if name == "noise":
        # Rounded, not truncated: truncation would darken every crop by half a grey level.
        return np.clip(np.rint(crop + rng.normal(0.0, value, crop.shape)), 0, 255).astype(np.uint8)
    if name == "jpeg":
        # OpenCV's JPEG takes colour as BGR: its luma and chroma must see the channels in that order.
        colour = crop.ndim == 3
        ok, encoded = cv2.imencode(".jpg", crop[..., ::-1] if colour else crop,
                                   [cv2.IMWRITE_JPEG_QUALITY, int(value)])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a face crop")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
        return decoded[..., ::-1] if colour else decoded
    size = crop.shape[1], crop.shape[0]
    small = (max(1, round(size[0] / value)), max(1, round(size[1] / value)))
    shrunk = cv2.resize(crop, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(shrunk, size, interpolation=cv2.INTER_LINEAR).reshape(crop.shape)


def apply(crops, degradation, rng):
    """Degrades a batch of stored face crops, before `data_pipeline.model_input.to_model_input`.

    Args:
      crops: (N, H, W, 3) uint8 RGB crops, as the records store them and detect cuts them.
      degradation: a Degradation.
      rng: a numpy Generator (the noise's; seed it for a reproducible report).

    Returns:
      (N, H, W, 3) uint8 crops: the degradation stays in 8 bits, as a video frame would.
    """
    return np.stack([_one(np.asarray(crop, np.uint8), degradation, rng) for crop in crops])
