"""The one transform from a stored face crop to the model's input, shared by every stage.

The reader (training and evaluation), inference (detect, evaluate, serve),
the degradations of `evaluate --degrade` and the training previews all feed
the model through `to_model_input`, so that a crop cut by detect reaches the
network exactly as the same crop read from a TFRecord did in training:
RGB uint8 at the recipe's size -> bilinear resize to the model's side (only
when they differ) -> [0, 1] -> ITU-R 601 luma for a one-channel model ->
[-1, 1], the range NVIDIA's reference feeds.

The range conversions are plain arithmetic (numpy arrays or tensors), so the
training code imports this module on JAX-only machines; TensorFlow is
imported by the resize, where it is used.
"""


def to_unit_range(crops, image_size, channels):
    """Stored RGB crops to float32 in [0, 1] at the model's side and channels (augmentation works here).

    Args:
      crops: (..., H, W, 3) RGB, uint8 or float in [0, 255].
      image_size: the model's input side.
      channels: 1 (luma) or 3 (RGB).

    Returns:
      A float32 tensor (..., image_size, image_size, channels) in [0, 1].
    """
    import tensorflow as tf  # the reader's bilinear resize, bit for bit

    images = tf.cast(crops, tf.float32)
    if images.shape[-3] != image_size or images.shape[-2] != image_size:
        images = tf.image.resize(images, [image_size, image_size], method="bilinear")
    images = tf.clip_by_value(images / 255.0, 0.0, 1.0)
    if channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    return images


def unit_to_model_range(images):
    """Images in [0, 1] to the model's input range [-1, 1]."""
    return images * 2.0 - 1.0


def model_range_to_unit(images):
    """The model's inputs back to [0, 1], to show them (previews, overlays)."""
    return (images + 1.0) / 2.0


def to_model_input(crops, image_size, channels):
    """Stored RGB crops (uint8, any side) to the model's input: float32 in [-1, 1], resized,
    in its channels."""
    return unit_to_model_range(to_unit_range(crops, image_size, channels))
