"""The Keras port against the facts of NVIDIA's UNet_Industrial graph."""

import keras
import numpy as np
import pytest

from unet_industrial.models.unet import build_unet

# Every convolution of tinyUNet at one input channel, in graph order, as the
# reference's blocks define them: (kernel h, kernel w, in channels, out channels).
TINY_UNET_KERNELS = [
    (3, 3, 1, 32), (3, 3, 32, 32),                        # input block
    (3, 3, 32, 32), (3, 3, 32, 32),                       # down 1
    (3, 3, 32, 64), (3, 3, 64, 64),                       # down 2
    (3, 3, 64, 128), (3, 3, 128, 128),                    # down 3
    (3, 3, 128, 256), (3, 3, 256, 256), (2, 2, 256, 128),  # bottleneck + deconv
    (3, 3, 256, 128), (3, 3, 128, 64), (2, 2, 64, 64),    # up 1: concat(128 + 128)
    (3, 3, 128, 64), (3, 3, 64, 32), (2, 2, 32, 32),      # up 2: concat(64 + 64)
    (3, 3, 64, 32), (3, 3, 32, 16), (2, 2, 16, 16),       # up 3: concat(32 + 32)
    (3, 3, 48, 32), (3, 3, 32, 32), (1, 1, 32, 1),        # output: concat(16 + 32)
]


@pytest.mark.parametrize("variant, shape, expected", [
    ("tinyUNet", (512, 512, 1), 1_850_305),
    ("tinyUNet", (256, 256, 3), 1_850_881),
    ("original", (512, 512, 1), 29_137_793),
])
def test_parameter_counts_match_the_reference(variant, shape, expected):
    assert build_unet(variant, shape).count_params() == expected


def test_convolutions_follow_the_reference_graph():
    model = build_unet("tinyUNet", (64, 64, 1))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [tuple(layer.kernel.shape) for layer in convs] == TINY_UNET_KERNELS
    assert all(layer.use_bias and layer.padding == "same" and layer.strides == (1, 1) for layer in convs)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MaxPooling2D") == 4
    assert kinds.count("Concatenate") == 4
    upsamplers = [layer for layer in model.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(upsamplers) == 4
    assert all(layer.interpolation == "nearest" and layer.size == (2, 2) for layer in upsamplers)
    assert not any("Normalization" in kind or "Dropout" in kind for kind in kinds)


def test_deconv_is_nearest_upscale_then_2x2_conv():
    model = build_unet("tinyUNet", (32, 32, 1))
    upscale = model.get_layer("bottleneck_block_deconv_upscale")
    x = np.arange(2 * 2 * 1, dtype="float32").reshape(1, 2, 2, 1)
    expected = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(upscale(x)), expected)
    assert model.get_layer("bottleneck_block_deconv").kernel.shape == (2, 2, 256, 128)


@pytest.mark.parametrize("shape", [(32, 32, 3), (48, 80, 1)])
def test_output_is_one_channel_of_logits_at_input_size(shape):
    model = build_unet("tinyUNet", shape)
    logits = keras.ops.convert_to_numpy(model(np.random.default_rng(0).uniform(-1, 1, (2, *shape))))
    assert logits.shape == (2, shape[0], shape[1], 1)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    # Logits, not probabilities: a sigmoid output could never leave [0, 1].
    assert logits.min() < 0 or logits.max() > 1


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_logits_are_float32_under_mixed_precision(policy):
    model = build_unet("tinyUNet", (32, 32, 3), dtype_policy=policy)
    assert model.get_layer("input_block_conv1").compute_dtype == policy.removeprefix("mixed_")
    logits = model(np.zeros((1, 32, 32, 3), "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


@pytest.mark.parametrize("size", [(30, 32, 1), (32, 40, 1)])
def test_size_not_multiple_of_16_is_refused(size):
    with pytest.raises(ValueError, match="multiples of 16"):
        build_unet("tinyUNet", size)


@pytest.mark.parametrize("argument, value", [
    ("variant", "hugeUNet"), ("activation", "swish"), ("kernel_initializer", "zeros")])
def test_unknown_choices_are_refused(argument, value):
    with pytest.raises(ValueError, match=value):
        build_unet(**{argument: value, "input_shape": (32, 32, 1)})


# Channels that pass through an activation in tinyUNet: one PReLU slope each.
_ACTIVATED_CHANNELS = 64 + 64 + 128 + 256 + (256 + 256 + 128) + (128 + 64 + 64) + (64 + 32 + 32) \
    + (32 + 16 + 16) + (32 + 32)


@pytest.mark.parametrize("activation, expected_params", [
    ("relu", 1_850_305), ("leaky_relu", 1_850_305), ("selu", 1_850_305), ("elu", 1_850_305),
    ("prelu", 1_850_305 + _ACTIVATED_CHANNELS),
])
def test_activations(activation, expected_params):
    model = build_unet("tinyUNet", (32, 32, 1), activation=activation)
    assert model.count_params() == expected_params
    act = model.get_layer("input_block_conv1_act")
    x = np.array([[-2.0, -0.5, 0.0, 1.5]], "float32")
    expected = {
        "relu": np.maximum(x, 0), "leaky_relu": np.where(x > 0, x, 0.2 * x),
        "elu": np.where(x > 0, x, np.expm1(x)),
        "selu": 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
    }
    if activation in expected:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(act(x)), expected[activation], rtol=1e-5)


def test_crelu_concatenates_positive_and_negative_parts():
    model = build_unet("tinyUNet", (32, 32, 1), activation="crelu")
    act = model.get_layer("input_block_conv1_act")
    x = np.array([[[[-2.0, 3.0]]]], "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(act(x)), [[[[0.0, 3.0, 2.0, 0.0]]]])
    # Doubled channels feed the next convolution.
    assert model.get_layer("input_block_conv2").kernel.shape == (3, 3, 64, 32)


@pytest.mark.parametrize("initializer, gain", [
    ("he_normal", "he"), ("he_uniform", "he"), ("glorot_normal", "glorot"), ("glorot_uniform", "glorot")])
def test_variance_scaling_initializers(initializer, gain):
    keras.utils.set_random_seed(0)
    model = build_unet("tinyUNet", (32, 32, 1), kernel_initializer=initializer)
    kernel = keras.ops.convert_to_numpy(model.get_layer("bottleneck_block_conv2").kernel)
    fan_in, fan_out = 9 * 256, 9 * 256
    expected_std = np.sqrt(2.0 / fan_in) if gain == "he" else np.sqrt(2.0 / (fan_in + fan_out))
    assert kernel.std() == pytest.approx(expected_std, rel=0.05)
    bias = keras.ops.convert_to_numpy(model.get_layer("bottleneck_block_conv2").bias)
    assert not bias.any()


def test_orthogonal_initializer():
    keras.utils.set_random_seed(0)
    model = build_unet("tinyUNet", (32, 32, 1), kernel_initializer="orthogonal")
    kernel = keras.ops.convert_to_numpy(model.get_layer("bottleneck_block_conv2").kernel)
    matrix = kernel.reshape(-1, kernel.shape[-1])  # (fan_in, fan_out), fan_in > fan_out
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(matrix.shape[1]), atol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "crelu", "prelu"])
def test_save_and_reload_round_trip(tmp_path, activation):
    model = build_unet("tinyUNet", (32, 32, 3), activation=activation)
    path = str(tmp_path / "unet.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    assert reloaded.count_params() == model.count_params()
