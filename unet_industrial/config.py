"""The training job's configuration: one frozen dataclass and its validation.

This module imports nothing heavy (no Keras, no TensorFlow) so that a bad
command line is rejected in a fraction of a second, before anything is written.
"""

import dataclasses
import glob
import json
import os

from data_pipeline import recipe as recipe_lib  # the standard library only: no TensorFlow

# Filters of each variant, as in NVIDIA's UNet_Industrial `model/unet.py`:
# (input block, down blocks, bottleneck, output block).
UNET_VARIANTS = {
    "tinyUNet": (32, (32, 64, 128), 256, 32),
    "original": (64, (128, 256, 512), 1024, 64),
}
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "selu", "elu", "crelu")
INITIALIZERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "orthogonal")
LOSSES = ("adaptive", "bce", "dice", "jaccard")
EXEC_MODES = ("train", "train_and_evaluate", "evaluate", "training_benchmark", "inference_benchmark")
AMP_DTYPES = ("float16", "bfloat16")
CHECKPOINTS = ("best", "last")
# none: one device; mirrored: MirroredStrategy over the local GPUs;
# multi_worker: MultiWorkerMirroredStrategy over the machines TF_CONFIG names.
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
DISTRIBUTED_EXEC_MODES = ("train", "train_and_evaluate")
# Kept in step with data_pipeline.reader.AUGMENTATIONS (not imported: it needs TensorFlow).
AUGMENTATIONS = ("faces", "reference", "none")
# Kept in step with data_pipeline.reader.pseudo_fakes.PSEUDO_FAKES, likewise.
PSEUDO_FAKES = ("none", "sbi")
# Thresholds at which the reference reports its metrics.
METRIC_THRESHOLDS = (0.05, 0.125, 0.25, 0.5, 0.75, 0.85, 0.95, 0.99)
# Every spatial size must survive four 2x2 max-pools.
SIZE_MULTIPLE = 16
# segmenter: the UNet, trained on fake-pixel masks; classifier: a backbone
# (CLASSIFIERS) with one logit per face crop, trained on frame labels.
MODEL_KINDS = ("segmenter", "classifier")
# Classification backbones and the smallest input side each accepts (for
# keras.applications, its own `min_size`): Xception, the FaceForensics++
# baseline (299 px there), EfficientNet-B0 / B4, the DFDC winner's family,
# and the segmenter's own tinyUNet encoder, which isolates what the mask
# supervision adds (sides a multiple of 16; no pretrained weights).
UNET_ENCODER = "unet_encoder"
CLASSIFIERS = {"xception": 71, "efficientnet_b0": 32, "efficientnet_b4": 32, UNET_ENCODER: SIZE_MULTIPLE}
# none: random initialization (works offline); imagenet: keras.applications'
# pretrained backbone weights (downloaded once into ~/.keras/models).
WEIGHTS = ("none", "imagenet")
# Flags that shape only the segmenter: a classifier refuses values other than their defaults.
SEGMENTER_ONLY = ("unet_variant", "activation_fn", "weight_init_method", "loss_fn_name")
# And those that shape only the classifier.
CLASSIFIER_ONLY = ("classifier", "weights")


class ConfigError(ValueError):
    """A configuration that cannot run; its message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training, evaluation or benchmark run depends on.

    Defaults follow NVIDIA's reference recipe (1 GPU, batch 16, 2,500 steps,
    centered RMSProp, adaptive loss) except the input, which is a 256x256 RGB
    face crop rather than a 512x512 grayscale DAGM image.
    """

    exec_mode: str = "train"
    model_kind: str = "segmenter"
    classifier: str = "xception"
    weights: str = "none"
    unet_variant: str = "tinyUNet"
    activation_fn: str = "relu"
    weight_init_method: str = "he_normal"
    input_size: int = 256
    input_channels: int = 3
    batch_size: int = 16
    num_iter: int = 2500
    warmup_step: int = 200
    learning_rate: float = 1e-4
    learning_rate_decay_factor: float = 0.8
    learning_rate_decay_steps: int = 500
    rmsprop_decay: float = 0.9
    rmsprop_momentum: float = 0.8
    weight_decay: float = 1e-5
    loss_fn_name: str = "adaptive"
    augmentation: str = "faces"
    balance_classes: bool = False
    pseudo_fakes: str = "none"
    pseudo_fake_ratio: float = 0.5
    train_methods: str = ""
    train_compressions: str = ""
    amp: bool = False
    amp_dtype: str = "float16"
    xla: bool = False
    seed: int = 0
    run_dir: str = ""
    resume: bool = False
    train_pattern: str = ""
    eval_pattern: str = ""
    synthetic_data: bool = False
    save_every: int = 500
    log_every: int = 50
    eval_batches: int = 0
    checkpoint: str = "best"
    shuffle_buffer: int = 2048
    distribution: str = "none"

    @property
    def input_shape(self):
        """(height, width, channels) of the model input."""
        return (self.input_size, self.input_size, self.input_channels)

    @property
    def is_benchmark(self):
        return self.exec_mode.endswith("_benchmark")

    @property
    def uses_synthetic_data(self):
        """Random tensors instead of TFRecords: on request, or a benchmark given no data."""
        return self.synthetic_data or (self.is_benchmark and not self.train_pattern)

    @property
    def train_method_list(self):
        """The fake methods training keeps (with every real example); empty keeps all."""
        return _comma_list(self.train_methods)

    @property
    def train_compression_list(self):
        """The compressions training keeps; empty keeps all."""
        return _comma_list(self.train_compressions)

    @property
    def trains(self):
        return self.exec_mode in ("train", "train_and_evaluate", "training_benchmark")


def _comma_list(value):
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _choice(name, value, choices):
    if value not in choices:
        raise ConfigError(f"--{name}={value!r} is not one of {', '.join(choices)}")


def _positive(name, value):
    if value <= 0:
        raise ConfigError(f"--{name} must be positive, got {value}")


def check_pattern(flag_name, pattern):
    """Raises ConfigError unless `pattern` names at least one file.

    Local patterns are globbed with the standard library (fast, no TensorFlow
    import); URLs such as gs://... are checked by tf.io.gfile when the data are
    read.
    """
    if not pattern:
        raise ConfigError(f"--{flag_name} is required for this --exec_mode")
    if "://" in pattern:
        return
    if not glob.glob(os.path.expanduser(pattern)):
        raise ConfigError(f"--{flag_name}={pattern!r} matches no file")


def _refuse_non_defaults(config, names, why):
    defaults = TrainConfig()
    for name in names:
        if getattr(config, name) != getattr(defaults, name):
            raise ConfigError(f"--{name}={getattr(config, name)} {why}")


def _check_unet_input_size(config):
    if config.input_size <= 0 or config.input_size % SIZE_MULTIPLE:
        raise ConfigError(f"--input_size={config.input_size} must be a positive multiple of {SIZE_MULTIPLE} "
                          "(the UNet pools four times by 2)")


def _check_model(config):
    """The model's flags: its kind, its own options, the input it can take."""
    _choice("model_kind", config.model_kind, MODEL_KINDS)
    if config.input_channels not in (1, 3):
        raise ConfigError(f"--input_channels={config.input_channels} must be 1 or 3")
    if config.model_kind == "segmenter":
        _refuse_non_defaults(config, CLASSIFIER_ONLY, "is for --model_kind=classifier")
        _check_unet_input_size(config)
        return
    _refuse_non_defaults(config, SEGMENTER_ONLY, "is for --model_kind=segmenter (a classifier trains "
                                                 "its backbone on cross-entropy)")
    _choice("classifier", config.classifier, tuple(CLASSIFIERS))
    _choice("weights", config.weights, WEIGHTS)
    if config.classifier == UNET_ENCODER:
        _check_unet_input_size(config)
        if config.weights != "none":
            raise ConfigError(f"--weights={config.weights}: --classifier={UNET_ENCODER} has no pretrained "
                              "weights; use --weights=none")
        return  # it takes one channel or three, as the segmenter does
    min_size = CLASSIFIERS[config.classifier]
    if config.input_size < min_size:
        raise ConfigError(f"--input_size={config.input_size} is below {min_size}, the smallest input "
                          f"keras.applications accepts for --classifier={config.classifier}")
    if config.input_channels != 3:
        # EfficientNet normalizes with per-channel RGB statistics; ImageNet weights are RGB.
        raise ConfigError("--model_kind=classifier needs --input_channels=3 (its backbones take RGB)")


def validate(config):
    """Checks a TrainConfig; raises ConfigError naming the first problem."""
    _choice("exec_mode", config.exec_mode, EXEC_MODES)
    _choice("unet_variant", config.unet_variant, tuple(UNET_VARIANTS))
    _choice("activation_fn", config.activation_fn, ACTIVATIONS)
    _choice("weight_init_method", config.weight_init_method, INITIALIZERS)
    _choice("loss_fn_name", config.loss_fn_name, LOSSES)
    _choice("amp_dtype", config.amp_dtype, AMP_DTYPES)
    _choice("checkpoint", config.checkpoint, CHECKPOINTS)
    _choice("augmentation", config.augmentation, AUGMENTATIONS)
    _choice("pseudo_fakes", config.pseudo_fakes, PSEUDO_FAKES)
    if not 0 <= config.pseudo_fake_ratio <= 1:
        raise ConfigError(f"--pseudo_fake_ratio={config.pseudo_fake_ratio} must lie in [0, 1]")
    _choice("distribution", config.distribution, DISTRIBUTIONS)
    if config.distribution != "none" and config.exec_mode not in DISTRIBUTED_EXEC_MODES:
        raise ConfigError(f"--distribution={config.distribution} is for --exec_mode "
                          f"{' or '.join(DISTRIBUTED_EXEC_MODES)}; --exec_mode={config.exec_mode} "
                          "runs on one device")
    _check_model(config)
    for name in ("batch_size", "num_iter", "learning_rate", "learning_rate_decay_steps",
                 "save_every", "log_every", "shuffle_buffer"):
        _positive(name, getattr(config, name))
    if not 0 < config.learning_rate_decay_factor <= 1:
        raise ConfigError("--learning_rate_decay_factor must be in (0, 1]")
    if config.weight_decay < 0 or config.warmup_step < 0 or config.eval_batches < 0:
        raise ConfigError("--weight_decay, --warmup_step and --eval_batches must not be negative")
    if config.is_benchmark and config.warmup_step >= config.num_iter:
        raise ConfigError(
            f"--num_iter={config.num_iter} must exceed --warmup_step={config.warmup_step} "
            "so that some steps are timed")
    if config.exec_mode == "evaluate" and not config.run_dir:
        raise ConfigError("--exec_mode=evaluate needs --run_dir of a trained run")
    if config.resume and not config.run_dir:
        raise ConfigError("--resume needs --run_dir of the run to continue")
    if not config.uses_synthetic_data:
        if config.exec_mode in ("train", "train_and_evaluate", "training_benchmark",
                                "inference_benchmark"):
            check_pattern("train_pattern", config.train_pattern)
        if config.exec_mode in ("train_and_evaluate", "evaluate"):
            check_pattern("eval_pattern", config.eval_pattern)
        if config.trains:
            _check_selection_against_manifest(config)
        if config.exec_mode == "train_and_evaluate":
            _check_same_recipe(config)


def held_in_manifest(manifest, kind, split=None):
    """The fake methods (kind "method") or compressions with examples in a records manifest.json.

    Args:
      manifest: the parsed manifest.json of data_pipeline.prepare.
      kind: "method" (fakes only: "original" is left out) or "compression".
      split: "train", "val" or "test"; None for any split.

    Returns:
      A sorted list of names.
    """
    counts = manifest["counts"]["examples"]
    splits = [counts.get(split, {})] if split else counts.values()
    return sorted({key.split("/", 1)[1] for split_counts in splits for key, count in split_counts.items()
                   if key.startswith(kind + "/") and key != "method/original" and count > 0})


def _check_selection_against_manifest(config):
    """Refuses --train_methods / --train_compressions that the records' manifest.json does not hold.

    A selection that matches no example would leave training waiting forever
    for its first batch. Records without a manifest beside them (or remote
    ones) are not checked.
    """
    selections = {"method": ("train_methods", config.train_method_list),
                  "compression": ("train_compressions", config.train_compression_list)}
    manifest_path = recipe_lib.manifest_beside(config.train_pattern)
    if not any(values for _, values in selections.values()) or manifest_path is None:
        return
    with open(manifest_path) as f:
        manifest = json.load(f)
    for kind, (flag, values) in selections.items():
        held = held_in_manifest(manifest, kind)
        missing = [value for value in values if value not in held]
        if missing:
            raise ConfigError(f"--{flag} names {', '.join(missing)}, which {manifest_path} does not hold "
                              f"(it has {', '.join(held)})")


def _check_same_recipe(config):
    """Refuses training and evaluation records cut by different crop recipes (their manifests say so).

    The best checkpoint is picked on the evaluation records, and calibration
    and detect later follow one recipe: two would leave one of them wrong.
    """
    try:
        recipes = {flag: recipe_lib.of_records(getattr(config, flag))
                   for flag in ("train_pattern", "eval_pattern")}
    except recipe_lib.RecipeError as error:
        raise ConfigError(str(error)) from error
    if None not in recipes.values() and recipes["train_pattern"] != recipes["eval_pattern"]:
        raise ConfigError(f"--train_pattern and --eval_pattern were prepared with different crop recipes "
                          f"({recipes['train_pattern']} against {recipes['eval_pattern']}); prepare both "
                          "with the same flags")


# Taken from the command line even when a saved configuration is reused:
# where the run is and what this invocation does, and the machines it runs
# on (a run may continue on other hardware; evaluation runs on one device).
_COMMAND_LINE_ONLY = ("run_dir", "resume", "distribution")


def resolve(values, present, saved=None):
    """Builds the TrainConfig of a job from parsed flags.

    A resumed or evaluated run reuses the configuration it was trained with:
    `saved` (its config.json) gives every field the command line leaves
    unset, so `--resume --run_dir=runs/x` alone continues run x as it was
    (on one device: --distribution is given anew each time).

    Args:
      values: flag name -> parsed value, for at least every TrainConfig field.
      present: names of the flags given explicitly.
      saved: the run's saved config dict, or None for a new run.

    Returns:
      A TrainConfig (not yet validated).
    """
    names = [field.name for field in dataclasses.fields(TrainConfig)]
    chosen = {name: values[name] for name in names}
    if saved is not None:
        unknown = set(saved) - set(names)
        if unknown:
            raise ConfigError(f"the saved config has fields this version does not know: {sorted(unknown)}")
        explicit = set(present) | set(_COMMAND_LINE_ONLY)
        chosen = {name: chosen[name] if name in explicit or name not in saved else saved[name]
                  for name in names}
    return TrainConfig(**chosen)
