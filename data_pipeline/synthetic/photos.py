"""Face photographs that ship inside installed packages, and the virtual camera that films them.

The synthetic corpus (`data_pipeline.synthetic`) is made on the spot, offline,
from real photographs that the pinned requirements already install:
scikit-image's `astronaut` (Eileen Collins) and `camera` (the cameraman),
matplotlib's `grace_hopper.jpg`, and the 100 faces of scikit-image's
`lfw_subset` (25x25 grayscale crops from Labeled Faces in the Wild).

A still becomes an "original" video through a virtual camera: a smooth pan,
zoom and small rotation of the photograph, a slow lighting drift and fresh
sensor noise in every frame. MTCNN runs once per photograph; the camera
transform of each frame carries its five landmarks into the frame, so no
frame needs a detector.
"""

import dataclasses

import cv2
import numpy as np

from data_pipeline.synthetic.media import FPS

# The LFW crops are 25x25; they are enlarged before filming so that the
# camera's own interpolation does not have to do all of the upsampling.
_LFW_SIZE = 25
_LFW_UPSCALE = 4
# The canvas an LFW face is placed on, in face widths: room for the camera to move.
_LFW_CANVAS = (4.0, 3.2)
# Enlarging a 25-pixel crop leaves a face with no detail finer than about 4
# pixels, softer than any real video and as soft as the re-rendered face of
# a Deepfakes fake: a detector learns "soft = fake" and calls these
# originals fake. A fixed grain of skin-pore size on the face (relative
# standard deviation 7 %, correlated over about a pixel) restores the fine
# detail a camera would have recorded; it also makes H.264 treat the face
# as it treats a real one, where codec noise follows the texture.
_LFW_GRAIN = 0.07
_LFW_GRAIN_SIGMA = 0.7
# Grayscale photographs get a warm tint so that colour-based manipulations
# (colour matching, colour shifts) have colour to work with.
_TINTS = np.float32([[1.0, 0.87, 0.76], [1.0, 0.84, 0.72], [1.0, 0.9, 0.8], [0.98, 0.85, 0.7]])


@dataclasses.dataclass(frozen=True)
class Photo:
    """One photograph of one person.

    Attributes:
      identity: the person, unique in the catalogue ("astronaut", "lfw-017").
      source: where the pixels come from, for provenance.
      image: RGB uint8 pixels.
    """

    identity: str
    source: str
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class Face:
    """A photograph with the face MTCNN found in it (still-image pixels).

    Attributes:
      photo: the photograph.
      box: x0, y0, x1, y1 of the face box.
      landmarks: (5, 2) float32 x, y of left eye, right eye, nose, mouth left,
        mouth right, in MTCNN's order (left = smaller x).
    """

    photo: Photo
    box: np.ndarray
    landmarks: np.ndarray


@dataclasses.dataclass(frozen=True)
class Shot:
    """How the virtual camera films a still: everything a frame depends on.

    Attributes:
      matrices: (T, 2, 3) affine maps from still pixels to frame pixels.
      gains: (T, 3) per-channel light gain of each frame.
      gradients: (T,) strength of a left-to-right light gradient in each frame.
      noise_sigma: standard deviation of the sensor noise, in grey levels.
      noise_seed: seeds the noise, so a frame can be rendered again identically.
      frame_size: (width, height).
    """

    matrices: np.ndarray
    gains: np.ndarray
    gradients: np.ndarray
    noise_sigma: float
    noise_seed: int
    frame_size: tuple


def _gray_to_rgb(gray, tint):
    return np.clip(gray.astype(np.float32)[..., None] * tint, 0, 255).astype(np.uint8)


def _lfw_photo(face, background, tint, seed):
    """An LFW crop enlarged, given a fixed grain, and set with a soft oval edge on a blurred natural background."""
    side = _LFW_SIZE * _LFW_UPSCALE
    width, height = int(side * _LFW_CANVAS[0]), int(side * _LFW_CANVAS[1])
    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.GaussianBlur(cv2.resize(background, (width, height), interpolation=cv2.INTER_CUBIC),
                              (0, 0), side * 0.06)
    x0, y0 = (width - side) // 2, int(height * 0.4 - side / 2)
    placed = np.zeros_like(canvas)
    placed[y0:y0 + side, x0:x0 + side] = face
    alpha = np.zeros(canvas.shape, np.float32)
    centre, axes = (x0 + side // 2, y0 + side // 2), (int(side * 0.48), int(side * 0.56))
    cv2.ellipse(alpha, centre, axes, 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), side * 0.06)
    grain = cv2.GaussianBlur(np.random.default_rng(seed).standard_normal((height, width), np.float32),
                             (0, 0), _LFW_GRAIN_SIGMA)
    # On the face only: the backdrop is out of focus.
    grain *= _LFW_GRAIN / grain.std() * alpha
    return _gray_to_rgb((canvas * (1 - alpha) + placed * alpha) * (1 + grain), tint)


def catalogue():
    """Every photograph the corpus may use, full-resolution ones first.

    Returns:
      A list of `Photo`: astronaut, grace_hopper, cameraman, then lfw-000 to
      lfw-099. The LFW subset carries no names: each crop counts as its own
      identity, although LFW repeats some people.
    """
    import matplotlib.cbook
    import skimage.data

    hopper = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    photos = [
        Photo("astronaut", "skimage.data.astronaut", skimage.data.astronaut()),
        Photo("grace_hopper", "matplotlib sample_data/grace_hopper.jpg",
              cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB)),
        Photo("cameraman", "skimage.data.camera", _gray_to_rgb(skimage.data.camera(), _TINTS[0])),
    ]
    # lfw_subset: 100 faces then 100 non-faces; non-face i is face i's backdrop.
    lfw = (skimage.data.lfw_subset() * 255).astype(np.float32)
    faces, backgrounds = lfw[:100], lfw[100:]
    for index, (face, background) in enumerate(zip(faces, backgrounds)):
        photos.append(Photo(f"lfw-{index:03d}", f"skimage.data.lfw_subset()[{index}]",
                            _lfw_photo(face, background, _TINTS[index % len(_TINTS)], seed=index)))
    return photos


def _best_face(detections, min_confidence):
    faces = [d for d in detections if d["confidence"] >= min_confidence]
    if not faces:
        return None
    return max(faces, key=lambda d: d["box"][2] * d["box"][3])


def find_faces(photos, count, min_confidence=0.9):
    """Runs MTCNN on photographs in order until `count` of them show a face.

    Args:
      photos: `Photo`s, in the order of preference.
      count: how many faces are needed.
      min_confidence: MTCNN confidence below which a detection is ignored.

    Returns:
      (faces, skipped): a list of `count` `Face`s (fewer when the photographs
      run out) and the identities of the photographs in which no face was found.
    """
    from mtcnn import MTCNN  # Imported here: loading TensorFlow takes seconds.

    detector = MTCNN()
    faces, skipped = [], []
    for photo in photos:
        if len(faces) == count:
            break
        found = _best_face(detector.detect_faces(photo.image), min_confidence)
        if found is None:
            skipped.append(photo.identity)
            continue
        x, y, w, h = found["box"]
        keypoints = found["keypoints"]
        landmarks = [keypoints[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")]
        faces.append(Face(photo, np.float32([x, y, x + w, y + h]), np.float32(landmarks)))
    return faces, skipped


def apply_affine(matrix, points):
    """Maps (N, 2) points through a 2x3 affine matrix."""
    points = np.asarray(points, np.float32)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _ease(num_frames):
    """0 -> 1 over the clip along a cosine, so that camera moves start and stop gently."""
    progress = np.arange(num_frames) / max(num_frames - 1, 1)
    return (1 - np.cos(np.pi * progress)) / 2


def _keep_inside(matrix, still_shape, frame_size):
    """Shifts a camera matrix so that the frame sees only the still, where the still is large enough.

    The frame's centre, taken back into the still, is clamped so that the
    frame's (rotated) half-extent stays within the photograph; a still
    smaller than the view is centred and its border reflected.
    """
    width, height = frame_size
    linear = matrix[:, :2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    cos, sin = abs(linear[0, 0]) / scale, abs(linear[1, 0]) / scale
    half = np.float32([(width * cos + height * sin) / 2, (width * sin + height * cos) / 2]) / scale
    still_size = np.float32([still_shape[1], still_shape[0]])
    centre = apply_affine(cv2.invertAffineTransform(matrix), [[width / 2, height / 2]])[0]
    low, high = half, still_size - half
    centre = np.where(low < high, np.clip(centre, low, high), still_size / 2)
    shifted = matrix.copy()
    shifted[:, 2] = np.float32([width / 2, height / 2]) - linear @ centre
    return shifted


def _wave(rng, seconds, amplitude, frequency, size=None):
    """A sine over time with amplitude and frequency drawn from (low, high) ranges and a random phase."""
    phase = rng.uniform(0, 2 * np.pi, size=size)
    cycles = rng.uniform(*frequency, size=size) * np.reshape(seconds, (-1, 1) if size else -1)
    return rng.uniform(*amplitude) * np.sin(2 * np.pi * cycles + phase)


def plan_shot(rng, face, frame_size, num_frames):
    """Draws a camera path and lighting for one original video.

    The face's box height takes 30-45 % of the frame height (more when the
    photograph is too small to fill the frame otherwise), the face drifts by
    up to a tenth of the frame from the centre, the zoom changes by -8 to
    +12 %, the camera rolls by up to 3 degrees and shakes slightly; the light
    swells by 2-6 %, its colour drifts by up to 4 % and a soft gradient
    sweeps across the frame.

    Args:
      rng: a numpy Generator; the only source of randomness.
      face: the `Face` to film.
      frame_size: (width, height) of the video.
      num_frames: frames in the video.

    Returns:
      A `Shot`.
    """
    width, height = frame_size
    still_shape = face.photo.image.shape
    x0, y0, x1, y1 = face.box
    cover = max(width / still_shape[1], height / still_shape[0])
    base_scale = max(rng.uniform(0.30, 0.45) * height / (y1 - y0), cover * 1.1)
    seconds = np.arange(num_frames) / FPS
    ease = _ease(num_frames)
    scales = base_scale * (1 + rng.uniform(-0.08, 0.12) * ease)
    angles = _wave(rng, seconds, amplitude=(1, 3), frequency=(0.15, 0.4))
    start, end = rng.uniform(-0.1, 0.1, size=(2, 2))
    shake = _wave(rng, seconds, amplitude=(0.006, 0.006), frequency=(1, 3), size=2)
    positions = (0.5 + start + (end - start) * ease[:, None] + shake) * np.float32([width, height])
    face_centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    matrices = []
    for scale, angle, position in zip(scales, angles, positions):
        matrix = cv2.getRotationMatrix2D(face_centre, float(angle), float(scale))
        matrix[:, 2] += position - np.float32(face_centre)
        matrices.append(_keep_inside(matrix, still_shape, frame_size))
    swell = 1 + _wave(rng, seconds, amplitude=(0.02, 0.06), frequency=(0.1, 0.3))
    tint_drift = 1 + rng.uniform(-0.04, 0.04, size=3) * ease[:, None]
    gradients = _wave(rng, seconds, amplitude=(0, 0.08), frequency=(0.05, 0.2))
    return Shot(np.float32(matrices), np.float32(swell[:, None] * tint_drift), np.float32(gradients),
                float(rng.uniform(1.0, 2.5)), int(rng.integers(2**31)), tuple(frame_size))


def film(still, shot):
    """Renders the frames of an original video.

    Rendering is deterministic: the same still and shot give the same
    frames, so a video can be rendered again rather than held in memory.

    Args:
      still: RGB uint8 photograph.
      shot: a `Shot` planned for it.

    Yields:
      RGB uint8 frames of shape (height, width, 3).
    """
    width, height = shot.frame_size
    noise = np.random.default_rng(shot.noise_seed)
    ramp = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    for matrix, gain, gradient in zip(shot.matrices, shot.gains, shot.gradients):
        frame = cv2.warpAffine(still, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        frame *= gain * (1 + gradient * ramp)
        frame += noise.standard_normal(frame.shape, dtype=np.float32) * shot.noise_sigma
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def frame_landmarks(face, shot):
    """(T, 5, 2) landmarks of the face in every frame of its shot."""
    return np.stack([apply_affine(matrix, face.landmarks) for matrix in shot.matrices])

