"""The TFRecord schema: the one place that names feature keys and their types.

Every record is one face crop of one video frame with its fake-pixel mask.
The writer (`serialize_example`) and the reader (`parse_example`) both use the
table below, so they cannot drift apart. Images and masks are stored encoded:
the face as PNG by default (re-encoding as JPEG adds the very artifacts the
detector looks at) and the mask always as a one-channel PNG of 0/1 values.

TensorFlow is imported where a record is made or read, not with the keys:
a command line that stops at its flags or at the data's layout answers at
once, not after TensorFlow's import.
"""

IMAGE = "image/encoded"
IMAGE_FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
MASK = "image/segmentation/class/encoded"
LABEL = "label"  # 1 = fake, 0 = real
VIDEO_ID = "video/id"
ORIGINAL_ID = "video/original_id"
IDENTITY = "video/identity"
METHOD = "video/method"
COMPRESSION = "video/compression"
FRAME_INDEX = "frame/index"
FACE_NUMBER = "face/number"  # 0 = the video's main face track, 1, 2, ... others (--all_faces)
BOX = "frame/box"  # the cut-out (square, enlarged) box in frame pixels: x0, y0, x1, y1
MASK_AREA = "mask/area_fraction"
# 1 for a label-only fake (its original is missing, so which pixels are fake is
# not known and its all-zero mask means nothing); 0, the default, otherwise.
MASK_UNKNOWN = "mask/unknown"

_BYTES, _INT, _FLOAT = "bytes", "int64", "float"

# key -> (kind, length); length None means a scalar.
FEATURES = {
    IMAGE: (_BYTES, None),
    IMAGE_FORMAT: (_BYTES, None),
    HEIGHT: (_INT, None),
    WIDTH: (_INT, None),
    MASK: (_BYTES, None),
    LABEL: (_INT, None),
    VIDEO_ID: (_BYTES, None),
    ORIGINAL_ID: (_BYTES, None),
    IDENTITY: (_BYTES, None),
    METHOD: (_BYTES, None),
    COMPRESSION: (_BYTES, None),
    FRAME_INDEX: (_INT, None),
    FACE_NUMBER: (_INT, None),
    BOX: (_FLOAT, 4),
    MASK_AREA: (_FLOAT, None),
    MASK_UNKNOWN: (_INT, None),
}

_DEFAULTS = {_BYTES: b"", _INT: 0, _FLOAT: 0.0}
_TF_TYPES = {_BYTES: "string", _INT: "int64", _FLOAT: "float32"}


def _feature(kind, value):
    import tensorflow as tf

    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if kind == _BYTES:
        values = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == _INT:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def serialize_example(fields):
    """Serializes one record.

    Args:
      fields: a dict from the keys above to values: bytes or str for byte
        features, ints, floats, or a sequence of 4 floats for BOX. IMAGE and
        MASK are required; others default to empty / zero.

    Returns:
      The serialized `tf.train.Example`.

    Raises:
      KeyError: for a key that is not in the schema, or a missing image or mask.
      ValueError: for a list feature of the wrong length.
    """
    unknown = set(fields) - set(FEATURES)
    if unknown:
        raise KeyError(f"not in the TFRecord schema: {sorted(unknown)}")
    for required in (IMAGE, MASK):
        if required not in fields:
            raise KeyError(f"a record needs {required!r}")
    feature = {}
    for key, (kind, length) in FEATURES.items():
        value = fields.get(key, [_DEFAULTS[kind]] * length if length else _DEFAULTS[kind])
        if length and len(value) != length:
            raise ValueError(f"{key} needs {length} values, got {len(value)}")
        feature[key] = _feature(kind, value)
    import tensorflow as tf

    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Protobuf serializes maps in an unspecified order that differs between
    # processes; sorted keys make records byte-identical whatever the worker.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized):
    """Parses one serialized record into a dict of tensors keyed as above."""
    import tensorflow as tf

    spec = {
        key: tf.io.FixedLenFeature([length] if length else [], tf.as_dtype(_TF_TYPES[kind]),
                                   default_value=[_DEFAULTS[kind]] * length if length else _DEFAULTS[kind])
        for key, (kind, length) in FEATURES.items()
    }
    return tf.io.parse_single_example(serialized, spec)
