"""Small stateless image operations that the reader's augmentation and the pseudo-fakes share."""

import tensorflow as tf


def uniform(seed, low=0.0, high=1.0, shape=()):
    """Stateless uniform draws in [low, high) from a seed of shape [2]."""
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def gaussian_blur(image, sigma, radius=None):
    """Separable Gaussian blur of an (height, width, channels) image, edges reflected.

    Args:
      image: float32 (height, width, channels).
      sigma: the standard deviation in pixels (a scalar tensor or float).
      radius: kernel half-width in pixels; None takes 3 sigma (rounded up).
    """
    if radius is None:
        radius = tf.cast(tf.math.ceil(3.0 * sigma), tf.int32)
    x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    kernel = tf.exp(-0.5 * tf.square(x / sigma))
    kernel /= tf.reduce_sum(kernel)
    channels = tf.shape(image)[-1]
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = tf.tile(kernel[:, None, None, None], [1, 1, channels, 1])
    columns = tf.tile(kernel[None, :, None, None], [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "VALID")[0]


def centred_affine(size, angle, scale, shift_x, shift_y):
    """The projective transform of "rotate by `angle` and scale about the centre, then shift".

    As ImageProjectiveTransformV3 wants it: the map from output pixels to
    input pixels, that is the inverse of the movement, as 8 numbers.
    """
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1.0) / 2.0
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = centre - a0 * (centre + shift_x) - a1 * (centre + shift_y)
    b2 = centre - b0 * (centre + shift_x) - b1 * (centre + shift_y)
    return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])


def warp(tensor, transform, interpolation):
    """`tensor` (height, width, channels) moved by `transform` (centred_affine), edges reflected."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tensor[None], transforms=transform[None], output_shape=tf.shape(tensor)[:2], fill_value=0.0,
        interpolation=interpolation, fill_mode="REFLECT")[0]
