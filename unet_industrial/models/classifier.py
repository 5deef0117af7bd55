"""A frame classifier beside the segmenter: a backbone and one logit per face crop.

The baselines of the literature: Xception (the FaceForensics++ benchmark's,
at 299 px there) and EfficientNet-B0 / B4 (the family of the DFDC winner),
all from `keras.applications` without their ImageNet top; and the
segmenter's own tinyUNet encoder (`unet_encoder`), so that a comparison can
differ in the supervision alone (a mask per crop against one label). The
model is

    image in [-1, 1] -> rescaled to the backbone's input range -> backbone
    (global average pooling) -> dropout -> Dense(1) -> float32 logit

and trains on the same batches as the segmenter: (images, masks), a frame
being fake when its mask has any pixel set (`frame_labels`), so the data
path is the segmenter's, unchanged, under every reader option and on every
backend. (A fake whose mask is empty, as an audio-only fake, counts as real
here, as it does in the segmenter's per-image TPR / TNR.)

Only `keras`, `keras.ops` and numpy, as in unet.py.
"""

import keras
from keras import layers, ops

from unet_industrial.config import CLASSIFIERS, UNET_ENCODER, ConfigError
from unet_industrial.models.unet import build_unet_encoder


def _unet_encoder(input_shape, **applications_arguments):
    """The segmenter's tinyUNet encoder with average pooling, called as a keras.applications constructor.

    keras.applications' other arguments ask for no top, average pooling and
    (validated before) no pretrained weights: what this backbone always is.
    """
    del applications_arguments
    encoder = build_unet_encoder("tinyUNet", input_shape)
    pooled = layers.GlobalAveragePooling2D(name="avg_pool")(encoder.output)
    return keras.Model(encoder.inputs, pooled, name=UNET_ENCODER)


# Backbone constructor, and the (scale, offset) that maps our [-1, 1] pixels
# to the range the backbone expects. Xception's preprocess_input maps
# [0, 255] to [-1, 1] ("tf" mode), our range already, as is the UNet's;
# Keras' EfficientNets rescale and normalize inside the model and take [0, 255].
BACKBONES = {
    "xception": (keras.applications.Xception, 1.0, 0.0),
    "efficientnet_b0": (keras.applications.EfficientNetB0, 127.5, 127.5),
    "efficientnet_b4": (keras.applications.EfficientNetB4, 127.5, 127.5),
    UNET_ENCODER: (_unet_encoder, 1.0, 0.0),
}
# Dropout before the logit: the rates of Keras' own EfficientNet tops
# (B0 0.2, B4 0.4); Xception's top has none, it gets B0's; the segmenter
# has none, and neither has its encoder here.
DROPOUT = {"xception": 0.2, "efficientnet_b0": 0.2, "efficientnet_b4": 0.4, UNET_ENCODER: 0.0}
INPUT_RANGE_LAYER = "to_backbone_range"


def frame_labels(masks):
    """Per-frame labels from a batch of masks: 1.0 where any pixel is fake, shaped (batch, 1)."""
    pixel_axes = tuple(range(1, len(masks.shape)))
    return ops.cast(ops.max(ops.cast(masks, "float32"), axis=pixel_axes) > 0, "float32")[:, None]


def _backbone(name, input_shape, weights):
    """The keras.applications backbone, or ConfigError (one line) when its weights cannot be had."""
    constructor = BACKBONES[name][0]
    try:
        return constructor(include_top=False, weights=None if weights == "none" else weights,
                           input_shape=tuple(input_shape), pooling="avg")
    # keras.utils.get_file raises a bare Exception for network and HTTP
    # errors (and ValueError for a corrupt download); the configuration was
    # validated before, so what fails here is getting the weights.
    except Exception as error:
        if weights == "none":
            raise
        message = " ".join(str(error).split())
        # get_file reads ~/.keras/models first and downloads only a missing file.
        raise ConfigError(f"--weights={weights}: cannot load the {name} ImageNet weights (offline? a copy "
                          f"in ~/.keras/models is used when present): {message}") from error


def build_classifier(name="xception", input_shape=(299, 299, 3), weights="none", dtype_policy=None):
    """Builds a frame classifier as a functional Keras model.

    Args:
      name: a key of BACKBONES.
      input_shape: (height, width, channels); the side at least
        CLASSIFIERS[name]; three channels but for unet_encoder.
      weights: "none" (random initialization) or "imagenet" (not for unet_encoder).
      dtype_policy: a Keras dtype policy name such as "mixed_bfloat16"; None
        uses the global policy. The logit is float32 whatever the policy.

    Returns:
      A `keras.Model` mapping images in [-1, 1] to logits shaped (batch, 1).

    Raises:
      ValueError: for an unknown backbone or an input it cannot take.
      ConfigError: when ImageNet weights are asked for and cannot be downloaded.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown classifier {name!r}; expected one of {sorted(BACKBONES)}")
    if name == UNET_ENCODER and weights != "none":
        raise ValueError(f"{UNET_ENCODER} has no pretrained weights, got weights={weights!r}")
    if min(input_shape[:2]) < CLASSIFIERS[name]:
        raise ValueError(f"{name} needs inputs of at least {CLASSIFIERS[name]} px, got {input_shape}")
    # keras.applications builds its layers under the global policy; it is
    # set for the backbone alone and restored, so nothing else changes.
    previous = keras.config.dtype_policy()
    if dtype_policy:
        keras.config.set_dtype_policy(dtype_policy)
    try:
        backbone = _backbone(name, input_shape, weights)
    finally:
        keras.config.set_dtype_policy(previous)
    _, scale, offset = BACKBONES[name]
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    net = layers.Rescaling(scale, offset=offset, name=INPUT_RANGE_LAYER, dtype=dtype_policy)(inputs)
    net = backbone(net)
    net = layers.Dropout(DROPOUT[name], name="dropout", dtype=dtype_policy)(net)
    # A float32 logit keeps the sigmoid and the loss numerically safe under mixed precision.
    logits = layers.Dense(1, name="logits", dtype="float32")(net)
    return keras.Model(inputs, logits, name=f"classifier_{name}")


@keras.saving.register_keras_serializable(package="unet_industrial")
def frame_cross_entropy(y_true, y_pred):
    """Per-example binary cross-entropy of logits `y_pred` (batch, 1) against masks `y_true`."""
    return ops.binary_crossentropy(frame_labels(y_true), ops.cast(y_pred, "float32"), from_logits=True)[:, 0]


@keras.saving.register_keras_serializable(package="unet_industrial")
class FrameLoss(keras.losses.Loss):
    """Binary cross-entropy of the frame logit against the frame label of the target mask.

    One value per example, which Keras averages over the batch (and scales
    for tf.distribute replicas) as for any per-example loss.
    """

    def __init__(self, name="frame_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return frame_cross_entropy(y_true, y_pred)


class _OnFrameLabels:
    """Mixin for a Keras metric of labels and logits: feeds it frame labels from the target masks."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(frame_labels(y_true), ops.cast(y_pred, "float32"), sample_weight)


@keras.saving.register_keras_serializable(package="unet_industrial")
class FrameAUC(_OnFrameLabels, keras.metrics.AUC):
    """ROC AUC of the frame logits (Keras' 200-threshold approximation)."""

    def __init__(self, name="auc", **kwargs):
        kwargs.setdefault("from_logits", True)
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="unet_industrial")
class FrameAccuracy(_OnFrameLabels, keras.metrics.BinaryAccuracy):
    """Share of frames whose logit is on the side of 0 their label is (probability 0.5)."""

    def __init__(self, name="accuracy", **kwargs):
        # BinaryAccuracy thresholds its input; on logits, 0 is probability 0.5.
        kwargs.setdefault("threshold", 0.0)
        super().__init__(name=name, **kwargs)


def frame_metrics(with_loss=False):
    """The classifier's metrics, named accuracy and auc (and frame_bce, the loss without L2)."""
    loss = [keras.metrics.MeanMetricWrapper(frame_cross_entropy, name="frame_bce")] if with_loss else []
    return [*loss, FrameAccuracy(), FrameAUC()]
