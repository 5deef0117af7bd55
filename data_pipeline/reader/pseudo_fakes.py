"""Self-blended pseudo-fakes: fake face crops with exact masks, made on the fly from real ones.

After Self-Blended Images (Shiohara and Yamasaki, CVPR 2022): a face is
blended with a slightly altered copy of itself, so the result has the
traces every face swap leaves (a blend boundary, a colour and sharpness
mismatch, a small misalignment) and no identity cue at all. A model trained
on them must look for those traces rather than recognise who is real.

One pseudo-fake, from a real crop in [0, 1]:
  1. the source copy: colour-jittered (brightness, contrast, per-channel
     shift, hue, saturation), then either sharpened or downscaled and back;
     then shifted and scaled slightly (an affine warp);
  2. the blend region: SBI takes the convex hull of 68 landmarks; the
     records hold no landmarks, so it is a face-shaped ellipse around where
     `prepare` puts the face (the centre of a crop enlarged 1.3x around the
     face box), its outline randomly deformed (elastic, low-frequency);
  3. the blend weights: that region blurred (a Gaussian of random width),
     times a blend ratio drawn from {0.25, 0.5, 0.75, 1};
  4. image = source x weights + original x (1 - weights); the mask, the
     pixels where the region's blurred weight reaches one half.

All randomness is stateless and drawn from a per-example seed.
"""

import math

import tensorflow as tf

from data_pipeline.reader import image_ops
from data_pipeline.reader.image_ops import uniform

PSEUDO_FAKES = ("none", "sbi")
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0)
# Where the face sits in a crop `prepare` cut (square, 1.3x the face box),
# as fractions of the crop: centre and semi-axes of the blend ellipse.
_CENTRE = (0.5, 0.52)
_SEMI_AXES = (0.30, 0.36)
_MAX_CENTRE_SHIFT = 0.04
_SEMI_AXIS_RANGE = (0.8, 1.15)
# Outline deformation: harmonics 2..5 of the angle, each up to this amplitude.
_HARMONICS = 4
_MAX_HARMONIC_AMPLITUDE = 0.06
# Source misalignment (SBI: translate up to 3 %, scale 0.95-1.05).
_MAX_SOURCE_SHIFT = 0.03
_MAX_SOURCE_SCALE_CHANGE = 0.05
# Blur of the region's edge, as a fraction of the crop size.
_BLUR_SIGMA_RANGE = (0.01, 0.05)
_MAX_CHANNEL_SHIFT = 20.0 / 255.0


def _jitter_colour(image, seed):
    """Brightness, contrast, a shift per channel, and hue and saturation for RGB."""
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    channels = image.shape[-1]
    image = tf.image.stateless_random_brightness(image, 0.1, seeds[0])
    image = tf.image.stateless_random_contrast(image, 0.8, 1.2, seeds[1])
    image = image + uniform(seeds[2], -_MAX_CHANNEL_SHIFT, _MAX_CHANNEL_SHIFT, [channels])
    if channels == 3:
        image = tf.clip_by_value(image, 0.0, 1.0)
        image = tf.image.stateless_random_hue(image, 0.05, seeds[3])
        image = tf.image.stateless_random_saturation(image, 0.8, 1.2, seeds[4])
    return tf.clip_by_value(image, 0.0, 1.0)


def _sharpen_or_downscale(image, seed):
    """Either an unsharp mask or a round trip through a 0.5-0.8x smaller image."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    size = tf.shape(image)[:2]

    def sharpen():
        amount = uniform(seeds[1], 0.5, 1.5)
        return image + amount * (image - image_ops.gaussian_blur(image, tf.constant(1.0)))

    def downscale():
        factor = uniform(seeds[2], 0.5, 0.8)
        smaller = tf.cast(tf.math.round(tf.cast(size, tf.float32) * factor), tf.int32)
        return tf.image.resize(tf.image.resize(image, smaller, method="area"), size, method="bilinear")

    image = tf.cond(uniform(seeds[0]) < 0.5, sharpen, downscale)
    return tf.clip_by_value(image, 0.0, 1.0)


def _misalign(image, seed):
    """A small random shift and scale about the centre."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    size = tf.cast(tf.shape(image)[0], tf.float32)
    scale = 1.0 + uniform(seeds[0], -_MAX_SOURCE_SCALE_CHANGE, _MAX_SOURCE_SCALE_CHANGE)
    shift_x = uniform(seeds[1], -_MAX_SOURCE_SHIFT, _MAX_SOURCE_SHIFT) * size
    shift_y = uniform(seeds[2], -_MAX_SOURCE_SHIFT, _MAX_SOURCE_SHIFT) * size
    return image_ops.warp(image, image_ops.centred_affine(size, 0.0, scale, shift_x, shift_y), "BILINEAR")


def blend_region(size, seed):
    """A face-shaped region of a `size` x `size` crop: a randomly deformed ellipse, 1 inside.

    Returns:
      float32 (size, size, 1) of 0s and 1s.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    centre = tf.constant(_CENTRE) + uniform(seeds[0], -_MAX_CENTRE_SHIFT, _MAX_CENTRE_SHIFT, [2])
    semi_axes = tf.constant(_SEMI_AXES) * uniform(seeds[1], *_SEMI_AXIS_RANGE, [2])
    coordinates = (tf.range(size, dtype=tf.float32) + 0.5) / tf.cast(size, tf.float32)
    y, x = tf.meshgrid(coordinates, coordinates, indexing="ij")
    dx, dy = (x - centre[0]) / semi_axes[0], (y - centre[1]) / semi_axes[1]
    # The outline's radius varies with the angle: 1 + a sum of low harmonics,
    # a smooth stand-in for SBI's elastic warp of the landmark hull.
    angle = tf.atan2(dy, dx)
    harmonics = tf.range(2, 2 + _HARMONICS, dtype=tf.float32)
    amplitudes = uniform(seeds[2], 0.0, _MAX_HARMONIC_AMPLITUDE, [_HARMONICS])
    phases = uniform(seeds[3], 0.0, 2.0 * math.pi, [_HARMONICS])
    radius = 1.0 + tf.reduce_sum(amplitudes * tf.cos(angle[..., None] * harmonics + phases), axis=-1)
    return tf.cast(tf.sqrt(dx * dx + dy * dy) <= radius, tf.float32)[..., None]


def self_blend(image, seed):
    """One self-blended pseudo-fake of a real face crop.

    Args:
      image: float32 (size, size, channels) in [0, 1], a real face crop.
      seed: int tensor of shape [2], a stateless seed.

    Returns:
      (image, mask): the pseudo-fake in [0, 1], same shape, and its fake
      pixels, float32 (size, size, 1) of 0s and 1s.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    size = tf.shape(image)[0]
    source = _misalign(_sharpen_or_downscale(_jitter_colour(image, seeds[0]), seeds[1]), seeds[2])
    sigma = uniform(seeds[3], *_BLUR_SIGMA_RANGE) * tf.cast(size, tf.float32)
    weights = image_ops.gaussian_blur(blend_region(size, seeds[4]), sigma)
    mask = tf.cast(weights >= 0.5, tf.float32)
    ratio = tf.gather(tf.constant(BLEND_RATIOS), tf.random.stateless_uniform(
        [], seeds[5], minval=0, maxval=len(BLEND_RATIOS), dtype=tf.int32))
    weights *= ratio
    blended = image + weights * (source - image)
    return tf.ensure_shape(blended, image.shape), tf.ensure_shape(mask, [*image.shape[:2], 1])


def replace_reals(image, mask, label, seed, ratio):
    """Turns a real crop into a pseudo-fake with probability `ratio`; fakes pass unchanged.

    Returns:
      (image, mask), as `self_blend` or as given.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    chosen = tf.logical_and(label <= 0, uniform(seeds[0]) < ratio)
    return tf.cond(chosen, lambda: self_blend(image, seeds[1]), lambda: (image, mask))
