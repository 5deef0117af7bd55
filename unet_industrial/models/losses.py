"""Segmentation losses of the reference recipe, on logits, in backend-neutral Keras.

All losses take `y_true` masks in {0, 1} and `y_pred` logits, both shaped
(batch, height, width, 1), and return one scalar for the batch. Like the
reference's `utils/losses.py`, Dice and Jaccard are computed over the whole
batch at once (one sum over every pixel of every image), not per image.
"""

import keras
from keras import ops

# The reference switches from cross-entropy to Dice once Dice is good enough.
ADAPTIVE_SWITCH = 0.3


def soft_dice(y_true, probs, smooth=1.0):
    """Sørensen-Dice of soft predictions over the whole batch: (2I + s) / (|A| + |B| + s)."""
    intersection = ops.sum(y_true * probs)
    return (2.0 * intersection + smooth) / (ops.sum(y_true) + ops.sum(probs) + smooth)


def soft_jaccard(y_true, probs, smooth=1.0):
    """Jaccard (intersection over union) of soft predictions over the whole batch.

    The reference's `dice_coe(loss_type='jaccard')` is really a Dice with squared
    terms in the denominator; this is the true soft IoU, I / (|A| + |B| - I).
    """
    intersection = ops.sum(y_true * probs)
    union = ops.sum(y_true) + ops.sum(probs) - intersection
    return (intersection + smooth) / (union + smooth)


def _as_float32(y_true, y_pred):
    # Mixed precision gives float16/bfloat16 activations; sums over a whole
    # batch of pixels need float32.
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def binary_cross_entropy(y_true, logits):
    """Mean binary cross-entropy from logits over every pixel of the batch."""
    y_true, logits = _as_float32(y_true, logits)
    return ops.mean(ops.binary_crossentropy(y_true, logits, from_logits=True))


@keras.saving.register_keras_serializable(package="unet_industrial")
def batch_loss(y_true, y_pred, kind="adaptive", smooth=1.0, switch_at=ADAPTIVE_SWITCH):
    """One scalar for the whole batch: the loss `kind` of `BatchLoss` on logits `y_pred`.

    This is the value to report (the `reconstruction_loss` metric wraps it);
    training goes through `BatchLoss`, which scales it for tf.distribute.
    """
    y_true, logits = _as_float32(y_true, y_pred)
    if kind == "bce":
        return binary_cross_entropy(y_true, logits)
    probs = ops.sigmoid(logits)
    if kind == "jaccard":
        return 1.0 - soft_jaccard(y_true, probs, smooth)
    dice_loss = 1.0 - soft_dice(y_true, probs, smooth)
    if kind == "dice":
        return dice_loss
    # ops.where rather than a Python branch keeps the switch inside the
    # compiled step; both branches are cheap next to the network.
    return ops.where(dice_loss < switch_at, dice_loss, binary_cross_entropy(y_true, logits))


@keras.saving.register_keras_serializable(package="unet_industrial")
class BatchLoss(keras.losses.Loss):
    """A batch-level segmentation loss on logits, selected by name.

    Kinds:
      adaptive: the reference's default. Dice loss (1 - soft Dice, smoothing 1)
        when it is below 0.3 at this step, else binary cross-entropy from
        logits; the choice is made anew at every step.
      bce: binary cross-entropy from logits.
      dice: 1 - soft Dice.
      jaccard: 1 - soft Jaccard (IoU).

    Under a tf.distribute strategy each replica computes the loss of its own
    share of the global batch (Dice and Jaccard over that share, as the
    reference's Horovod workers do) and the replicas' gradients are averaged.
    """

    def __init__(self, kind="adaptive", smooth=1.0, switch_at=ADAPTIVE_SWITCH, name=None, **kwargs):
        if kind not in ("adaptive", "bce", "dice", "jaccard"):
            raise ValueError(f"unknown loss {kind!r}; expected adaptive, bce, dice or jaccard")
        super().__init__(name=name or f"{kind}_loss", **kwargs)
        self.kind = kind
        self.smooth = smooth
        self.switch_at = switch_at

    def call(self, y_true, y_pred):
        # A one-element vector, not a scalar: Keras reduces a vector loss and,
        # on N tf.distribute replicas, divides it by N so that the summed
        # replica gradients are the mean gradient. A scalar passes through
        # unscaled: N times the gradient, and N times the logged loss.
        value = batch_loss(y_true, y_pred, self.kind, self.smooth, self.switch_at)
        return ops.reshape(value, (1,))

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "smooth": self.smooth,
                "switch_at": self.switch_at}


def add_l2_weight_decay(model, weight_decay):
    """Adds the reference's L2 regularization to every trainable variable.

    The reference adds `weight_decay * sum(tf.nn.l2_loss(v))` over all
    trainable variables (kernels, biases, PReLU slopes), where
    `l2_loss(v) = sum(v**2) / 2`; a Keras L2 regularizer computes `l2 *
    sum(v**2)`, hence the factor one half. The regularizers are attached to
    the variables, not to the saved architecture, so exported models carry no
    training-only state.

    Args:
      model: a built Keras model.
      weight_decay: the coefficient; 0 removes regularization.
    """
    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    for variable in model.trainable_weights:
        variable.regularizer = regularizer
