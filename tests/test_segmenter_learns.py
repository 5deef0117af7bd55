"""The segmenter learns a mask it can see: the model, loss, optimizer and metric of training, end to end.

A bright square on a noisy background, and the square's pixels as the mask:
any working segmenter finds it within a few dozen steps. Guards the whole
training path (the reference's adaptive loss on logits, the L2 term,
centered RMSProp, the [-1, 1] input): a segmenter that stays near chance on
real data must then be the data's doing, not a broken path.
"""

import keras
import numpy as np
from conftest import make_face_like_example

from unet_industrial import config as config_lib
from unet_industrial.models import metrics
from unet_industrial.training import trainer

SIZE = 32
TRAIN_EXAMPLES = 64
EPOCHS = 4  # 8 steps each: 32 steps of batch 8
DICE_BAR = 0.8


def _examples(count, seed, fake_only=False):
    """(images in [-1, 1], masks) of `count` 32x32 crops; every other one real (empty mask)
    unless fake_only."""
    rng = np.random.default_rng(seed)
    pairs = [make_face_like_example(rng, SIZE, fake=fake_only or index % 2 == 0) for index in range(count)]
    images = np.stack([image for image, _ in pairs]).astype(np.float32) / 127.5 - 1.0
    masks = np.stack([mask for _, mask in pairs]).astype(np.float32)[..., None]
    return images, masks


def _dice_on_fakes(model, images, masks):
    """The training metric, per-image Dice at 0.5, over crops that all have a mask (no free empty matches)."""
    dice = metrics.Dice(0.5)
    dice.update_state(masks, model.predict_on_batch(images))
    return float(dice.result())


def test_the_segmenter_learns_a_mask_it_can_see():
    keras.utils.set_random_seed(0)
    config = config_lib.TrainConfig(input_size=SIZE, batch_size=8, learning_rate=1e-3, augmentation="none")
    model = trainer.build_model(config)
    trainer.compile_for_training(model, config)
    held_out = _examples(16, seed=1, fake_only=True)
    before = _dice_on_fakes(model, *held_out)

    images, masks = _examples(TRAIN_EXAMPLES, seed=0)
    # Batch by batch, not `fit`: under TensorFlow, fit on arrays runs an
    # autotuned tf.data pipeline (see data_pipeline.reader.without_autotuning).
    order = np.random.default_rng(2)
    for _ in range(EPOCHS):
        for batch in np.split(order.permutation(TRAIN_EXAMPLES), TRAIN_EXAMPLES // config.batch_size):
            model.train_on_batch(images[batch], masks[batch])
    after = _dice_on_fakes(model, *held_out)

    # The bar is one an untrained model is far from, so passing it is the training's doing.
    assert before < DICE_BAR / 2, before
    assert after > DICE_BAR, (before, after)
