"""Keras port of NVIDIA's industrial UNet (DeepLearningExamples, UNet_Industrial).

The graph follows the reference's `model/unet.py` and `model/blocks/*`:

    input block   conv3x3(f0) act conv3x3(f0) act            -> skip 0, maxpool
    down block i  conv3x3(fi) act conv3x3(fi) act            -> skip i, maxpool
    bottleneck    conv3x3(fb) act conv3x3(fb) act deconv(fb/2) act
    up block i    concat(skip i) conv3x3(fi) act conv3x3(fi/2) act deconv(fi/2) act
    output block  concat(skip 0) conv3x3(f0) act conv3x3(f0) act conv1x1(1) -> logits

"deconv" is the reference's upscale-conv: a 2x nearest-neighbour resize then a
2x2 convolution with stride 1. Every convolution is `same`, with bias, no
normalization and no dropout. Only `keras`, `keras.ops` and numpy are used, so
the model runs under the TensorFlow and the JAX backends alike.

Inputs are float images scaled to [-1, 1] (as the reference feeds them); the
model returns float32 logits, also under mixed precision; a sigmoid gives the
per-pixel probability that the pixel is fake.
"""

import keras
from keras import layers, ops

from unet_industrial.config import ACTIVATIONS, INITIALIZERS, SIZE_MULTIPLE, UNET_VARIANTS


@keras.saving.register_keras_serializable(package="unet_industrial")
class CReLU(layers.Layer):
    """Concatenated ReLU: [relu(x), relu(-x)] on the channel axis (doubles channels)."""

    def call(self, inputs):
        return ops.concatenate([ops.relu(inputs), ops.relu(-inputs)], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else 2 * input_shape[-1]
        return (*input_shape[:-1], channels)


def _activation(name, activation, dtype):
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)
    if activation == "prelu":
        # One slope per channel, shared over height and width (the reference's
        # `prelu_not_shared`).
        return layers.PReLU(shared_axes=[1, 2], name=name, dtype=dtype)
    if activation == "crelu":
        return CReLU(name=name, dtype=dtype)
    return layers.Activation(activation, name=name, dtype=dtype)


class _Builder:
    """Creates the reference's layers with shared settings and readable names."""

    def __init__(self, activation, kernel_initializer, dtype):
        self.activation = activation
        self.kernel_initializer = kernel_initializer
        self.dtype = dtype

    def conv(self, x, filters, kernel_size, name, activate=True):
        x = layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=True,
            kernel_initializer=self.kernel_initializer, bias_initializer="zeros",
            name=name, dtype=self.dtype)(x)
        return _activation(f"{name}_act", self.activation, self.dtype)(x) if activate else x

    def deconv(self, x, filters, name):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upscale", dtype=self.dtype)(x)
        return self.conv(x, filters, 2, name)

    def concat(self, tensors, name):
        return layers.Concatenate(axis=-1, name=name, dtype=self.dtype)(tensors)

    def pool(self, x, name):
        return layers.MaxPooling2D(2, strides=2, padding="valid", name=name, dtype=self.dtype)(x)


def _contracting_path(variant, input_shape, activation, kernel_initializer, dtype_policy):
    """The UNet's input, down and bottleneck blocks, up to the bottleneck's second activation.

    Returns:
      (inputs, bottleneck features, skip tensors of the input and down blocks, the layer builder).
    """
    if variant not in UNET_VARIANTS:
        raise ValueError(f"unknown UNet variant {variant!r}; expected one of {sorted(UNET_VARIANTS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    if kernel_initializer not in INITIALIZERS:
        raise ValueError(f"unknown initializer {kernel_initializer!r}; expected one of {INITIALIZERS}")
    height, width, _ = input_shape
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"input height and width must be multiples of {SIZE_MULTIPLE}, got {input_shape}")

    input_filters, block_filters, bottleneck_filters, _ = UNET_VARIANTS[variant]
    build = _Builder(activation, kernel_initializer, dtype_policy)

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    net = build.conv(inputs, input_filters, 3, "input_block_conv1")
    net = build.conv(net, input_filters, 3, "input_block_conv2")
    skips = [net]
    net = build.pool(net, "input_block_pool")

    for index, filters in enumerate(block_filters, start=1):
        net = build.conv(net, filters, 3, f"downsample_block_{index}_conv1")
        net = build.conv(net, filters, 3, f"downsample_block_{index}_conv2")
        skips.append(net)
        net = build.pool(net, f"downsample_block_{index}_pool")

    net = build.conv(net, bottleneck_filters, 3, "bottleneck_block_conv1")
    net = build.conv(net, bottleneck_filters, 3, "bottleneck_block_conv2")
    return inputs, net, skips, build


def build_unet_encoder(variant="tinyUNet", input_shape=(512, 512, 1), activation="relu",
                       kernel_initializer="he_normal", dtype_policy=None):
    """The contracting half of `build_unet`: the same layers, names and weights, up to the bottleneck.

    The segmenter's own encoder, for a classifier that differs from the
    segmenter in its supervision (one label per crop) and not in its features.

    Args:
      variant, input_shape, activation, kernel_initializer, dtype_policy: as
        for `build_unet`.

    Returns:
      A `keras.Model` mapping images in [-1, 1] to the bottleneck's features,
      1/16 of the input's height and width.

    Raises:
      ValueError: as `build_unet`.
    """
    inputs, features, _, _ = _contracting_path(variant, input_shape, activation, kernel_initializer,
                                               dtype_policy)
    return keras.Model(inputs, features, name=f"UNet_Industrial_{variant}_encoder")


def build_unet(variant="tinyUNet", input_shape=(512, 512, 1), activation="relu",
               kernel_initializer="he_normal", dtype_policy=None):
    """Builds the industrial UNet as a functional Keras model.

    Args:
      variant: "tinyUNet" (1,850,305 parameters at one input channel) or
        "original" (29,137,793).
      input_shape: (height, width, channels); height and width multiples of 16.
      activation: relu, leaky_relu (slope 0.2), prelu, selu, elu or crelu.
      kernel_initializer: he_normal, he_uniform, glorot_normal, glorot_uniform
        or orthogonal. Biases start at zero.
      dtype_policy: a Keras dtype policy name such as "mixed_bfloat16"; None
        uses the global policy. The logits are float32 whatever the policy.

    Returns:
      A `keras.Model` mapping images in [-1, 1] to one channel of logits with
      the input's height and width.

    Raises:
      ValueError: for an unknown variant, activation or initializer, or a size
        that is not a multiple of 16.
    """
    inputs, net, skips, build = _contracting_path(variant, input_shape, activation, kernel_initializer,
                                                  dtype_policy)
    _, block_filters, bottleneck_filters, output_filters = UNET_VARIANTS[variant]
    net = build.deconv(net, bottleneck_filters // 2, "bottleneck_block_deconv")

    for index, filters in enumerate(reversed(block_filters), start=1):
        net = build.concat([net, skips.pop()], f"upsample_block_{index}_concat")
        net = build.conv(net, filters, 3, f"upsample_block_{index}_conv1")
        net = build.conv(net, filters // 2, 3, f"upsample_block_{index}_conv2")
        net = build.deconv(net, filters // 2, f"upsample_block_{index}_deconv")

    net = build.concat([net, skips.pop()], "output_block_concat")
    net = build.conv(net, output_filters, 3, "output_block_conv1")
    net = build.conv(net, output_filters, 3, "output_block_conv2")
    # float32 logits keep the sigmoid and the losses numerically safe under
    # mixed precision; a 1x1 conv with one output costs nothing in float32.
    logits = layers.Conv2D(
        1, 1, padding="same", kernel_initializer=kernel_initializer, bias_initializer="zeros",
        name="logits", dtype="float32")(net)
    return keras.Model(inputs, logits, name=f"UNet_Industrial_{variant}")
