"""Five face manipulations, each modelled on a real family, with their ground-truth masks.

Every manipulation works frame by frame on the original video: it returns
manipulated pixels and a soft alpha, and the fake frame is
`original + alpha * (manipulated - original)`. The alpha is quantized to 8
bits *before* blending, so its stored PNG is the exact blend weight and every
pixel where it is 0 is the original pixel, bit for bit.

Geometry lives in a canonical face frame: the 112x112 five-point template
used by ArcFace-style aligners. Per frame, a similarity transform (rotation,
uniform scale, shift) is fitted from the template to the frame's landmarks,
which are jittered by about 1 % of the eye distance, as a per-frame landmark
detector jitters; that jitter is what makes real masks move and flicker.

- FaceSwap (graphics face swap, FF++ FaceSwap): the source's face, aligned on
  five landmarks and colour-matched; mask: feathered landmark hull or ellipse.
- Deepfakes (autoencoder swap, FF++ Deepfakes): the target face re-rendered at
  64-128 px, upsampled and colour-shifted; mask: a box with a hard edge.
- Face2Face (expression reenactment): mouth and eyes warped by the source's
  "expressions"; mask: eye and mouth ovals.
- NeuralTextures (neural rendering of the mouth): the lower face's high
  frequencies replaced; mask: the lower face.
- SelfBlend (Self-Blended Images, CVPR 2022): the face, colour- and
  scale-jittered, blended onto itself; mask: elastic hull, random blur and ratio.
"""

import cv2
import numpy as np

from data_pipeline.synthetic.media import FPS
from data_pipeline.synthetic.photos import apply_affine

# Left eye, right eye, nose, mouth left, mouth right, in the 112x112 aligned frame.
CANONICAL_LANDMARKS = np.float32([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                  [41.5493, 92.3655], [70.7299, 92.2041]])
# Jaw line and eyebrows: the hull a 68-landmark face swap blends.
FACE_HULL = np.float32([[18, 50], [20, 66], [24, 81], [30, 94], [38, 104], [47, 111], [56, 114], [65, 111],
                        [74, 104], [82, 94], [88, 81], [92, 66], [94, 50], [88, 39], [77, 34], [65, 36],
                        [56, 38], [47, 36], [35, 34], [24, 39]])
# The ellipse some face swaps blend instead of the hull (centre x, centre y, semi-axes).
FACE_ELLIPSE = np.float32([[56, 76, 34, 42]])
# The square an FF++ Deepfakes mask covers: eyebrows to below the mouth.
DEEPFAKES_BOX = np.float32([[24, 34], [88, 34], [88, 106], [24, 106]])
# Cheeks below the nose, down to the chin.
LOWER_FACE = np.float32([[22, 70], [90, 70], [89, 84], [83, 96], [74, 106], [65, 111], [56, 114], [47, 111],
                         [38, 106], [29, 96], [23, 84]])
# Ovals (centre x, centre y, semi-axis x, semi-axis y) that Face2Face's warp stays inside.
EYE_OVALS = np.float32([[38.3, 49, 15, 11], [73.5, 49, 15, 11]])
MOUTH_OVAL = np.float32([[56, 94, 26, 19]])
# Margin around the template that a frame's face crop covers, in template units.
_CROP_RANGE = (-24.0, 136.0)
_EYE_DISTANCE = float(np.linalg.norm(CANONICAL_LANDMARKS[1] - CANONICAL_LANDMARKS[0]))
_LANDMARK_JITTER = 0.012 * _EYE_DISTANCE


def similarity(source, target):
    """Least-squares similarity transform (2x3) taking `source` points onto `target` points.

    Points are treated as complex numbers: the best rotation-and-scale is
    one complex factor, the Umeyama solution without reflection.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    zs = (source - source_mean) @ [1, 1j]
    zt = (target - target_mean) @ [1, 1j]
    factor = np.vdot(zs, zt) / np.vdot(zs, zs)
    linear = np.array([[factor.real, -factor.imag], [factor.imag, factor.real]])
    return np.float32(np.hstack([linear, (target_mean - linear @ source_mean)[:, None]]))


def _compose(outer, inner):
    """The 2x3 affine map `outer(inner(x))`."""
    return np.float32(outer @ np.vstack([inner, [0, 0, 1]]))


class FaceCrop:
    """The region of one frame around the face, and where the template sits in it.

    Attributes:
      pixels: float32 RGB pixels of the region.
      origin: (x, y) of the region's top-left corner in the frame.
      to_crop: 2x3 map from template coordinates to region pixels.
      scale: region pixels per template unit.
      landmarks: (5, 2) jittered landmarks in region pixels.
    """

    def __init__(self, frame, landmarks):
        to_frame = similarity(CANONICAL_LANDMARKS, landmarks)
        low, high = _CROP_RANGE
        corners = apply_affine(to_frame, [[low, low], [high, low], [high, high], [low, high]])
        height, width = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), [width, height])
        self.pixels = frame[y0:y1, x0:x1].astype(np.float32)
        self.origin = (int(x0), int(y0))
        self.to_crop = to_frame.copy()
        self.to_crop[:, 2] -= self.origin
        self.scale = float(np.sqrt(abs(np.linalg.det(to_frame[:, :2]))))
        self.landmarks = np.float32(landmarks) - self.origin

    @property
    def size(self):
        """(width, height) of the region."""
        return self.pixels.shape[1], self.pixels.shape[0]

    def polygon(self, template_points):
        """A template polygon filled in region pixels, float32 0/1."""
        canvas = np.zeros(self.pixels.shape[:2], np.float32)
        points = np.round(apply_affine(self.to_crop, template_points) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1.0, lineType=cv2.LINE_AA, shift=4)
        return canvas

    def ovals(self, template_ovals):
        """Template ovals (cx, cy, ax, ay) filled in region pixels, float32 0/1."""
        canvas = np.zeros(self.pixels.shape[:2], np.float32)
        angle = float(np.degrees(np.arctan2(self.to_crop[1, 0], self.to_crop[0, 0])))
        for cx, cy, ax, ay in template_ovals:
            centre = apply_affine(self.to_crop, [[cx, cy]])[0]
            axes = (max(1, round(ax * self.scale)), max(1, round(ay * self.scale)))
            cv2.ellipse(canvas, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1.0, -1)
        return canvas

    def feather(self, mask, sigma):
        """Softens a 0/1 mask's edge by a Gaussian of `sigma` template units, with compact support.

        The blur's outer and inner tenths are cut (rescaled to exactly 0 and
        1): the alpha ends about 1.3 sigma outside the edge instead of in a
        long invisible tail, so the binary mask (alpha > 0) stays close to
        the region that visibly changed.
        """
        blurred = cv2.GaussianBlur(mask, (0, 0), max(sigma * self.scale, 0.3))
        return np.clip((blurred - 0.1) / 0.8, 0, 1)

    def grid(self):
        """(x, y): float32 arrays of the region's pixel coordinates, for remapping."""
        width, height = self.size
        return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def template_vectors(self, vectors):
        """Displacements (N, 2) in template units, as region pixels (rotated and scaled)."""
        return np.asarray(vectors, np.float32) @ self.to_crop[:, :2].T


def _face_colour_stats(pixels, mask):
    inside = pixels[mask > 0.5]
    return inside.mean(axis=0), inside.std(axis=0) + 1.0


def _match_colour(pixels, reference, mask):
    """Shifts and scales each channel of `pixels` to the reference's statistics inside `mask`."""
    if not (mask > 0.5).any():  # A face outside the frame: nothing to match, nothing blended.
        return pixels
    mean, std = _face_colour_stats(pixels, mask)
    ref_mean, ref_std = _face_colour_stats(reference, mask)
    return (pixels - mean) * np.clip(ref_std / std, 0.5, 2.0) + ref_mean


def _face_mean_colour(face):
    """Mean RGB inside a `Face`'s landmark hull in its still photograph."""
    crop = FaceCrop(face.photo.image, face.landmarks)
    return _face_colour_stats(crop.pixels, crop.polygon(FACE_HULL))[0]


class FaceSwap:
    """Graphics face swap: the source's face, aligned by five landmarks and colour-matched.

    The donor is the source's photograph, warped into each target frame by
    the similarity that best maps its five landmarks onto the target's, its
    colours matched to the target face, and blended through a feathered
    landmark hull (or, for some videos, an ellipse).
    """

    def __init__(self, rng, target, source, num_frames):
        del target, num_frames  # The target is the frame itself; the swap is the same every frame.
        self.donor = source
        self.use_hull = rng.random() < 0.7
        self.feather_sigma = rng.uniform(2.0, 4.0)

    def __call__(self, crop, index, rng):
        mask = crop.polygon(FACE_HULL) if self.use_hull else crop.ovals(FACE_ELLIPSE)
        to_crop = similarity(self.donor.landmarks, crop.landmarks)
        donor = cv2.warpAffine(self.donor.photo.image, to_crop, crop.size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        swapped = _match_colour(donor, crop.pixels, mask)
        return swapped, crop.feather(mask, self.feather_sigma * rng.uniform(0.85, 1.15))


class Deepfakes:
    """Autoencoder-style swap: the face re-rendered at low resolution and pasted back in a box.

    Each frame's aligned face is rendered at 64-128 px (the resolution of the
    original Deepfakes autoencoders), smoothed as a decoder's output is,
    shifted towards the source face's colour, upsampled back and blended
    through a box with a hard edge, as FF++'s Deepfakes masks are.
    """

    _ALIGNED_RANGE = (-8.0, 120.0)

    def __init__(self, rng, target, source, num_frames):
        del num_frames
        self.size = int(rng.choice([64, 80, 96, 112, 128]))
        towards_source = _face_mean_colour(source) - _face_mean_colour(target)
        self.colour_shift = np.clip(0.3 * towards_source, -12, 12) + rng.uniform(-6, 6, size=3)
        self.smoothing = rng.uniform(0.4, 0.9)

    def __call__(self, crop, index, rng):
        low, high = self._ALIGNED_RANGE
        zoom = self.size / (high - low)
        template_to_aligned = np.float32([[zoom, 0, -low * zoom], [0, zoom, -low * zoom]])
        crop_to_aligned = _compose(template_to_aligned, cv2.invertAffineTransform(crop.to_crop))
        # Blur before shrinking so that the low-resolution face is not aliased.
        shrink = crop.scale / zoom
        source = cv2.GaussianBlur(crop.pixels, (0, 0), max(0.5 * shrink, 0.3)) if shrink > 1 else crop.pixels
        aligned = cv2.warpAffine(source, crop_to_aligned, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
        aligned = cv2.GaussianBlur(aligned, (0, 0), self.smoothing)
        aligned += self.colour_shift + rng.normal(0, 1.0, size=3)
        rendered = cv2.warpAffine(aligned, cv2.invertAffineTransform(crop_to_aligned), crop.size,
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return rendered, crop.feather(crop.polygon(DEEPFAKES_BOX), 0.6)


def _pulses(rng, seconds, rate, width):
    """Sum of Gaussian bumps (height 1, `width` seconds) at random times: blinks."""
    times = rng.uniform(seconds[0] - 0.5, seconds[-1] + 0.5, size=rng.poisson(rate * (seconds[-1] + 1) + 1))
    return np.clip(np.exp(-((seconds[:, None] - times) / width) ** 2).sum(axis=1), 0, 1)


def _smooth_signal(rng, seconds, low, high):
    """A slow random wave between `low` and `high`: an expression parameter over time."""
    wave = sum(np.sin(2 * np.pi * rng.uniform(0.2, 1.2) * seconds + rng.uniform(0, 2 * np.pi))
               for _ in range(2))
    return low + (high - low) * (wave + 2) / 4


class Face2Face:
    """Expression reenactment: the target's mouth and eyes warped by the source's expressions.

    The source's "performance" is a set of slow signals (mouth opening,
    smile, blinks) drawn from the source; each frame, a smooth displacement
    field around the lips, mouth corners and eyelids moves the target's own
    pixels, and the region is re-rendered as a model-based reenactment
    renders it: smoothed, and shaded by the renderer's own estimate of the
    lighting (a gain of a few percent with a gradient across the face,
    drifting slowly). Without that shading the warp alone would leave most
    of the ovals within two grey levels of the original, unlike FF++'s
    Face2Face, whose whole face region is rendered. The mask is the eye and
    mouth ovals.
    """

    # (template point, displacement per unit of the signal, radius), by signal.
    _HANDLES = {
        "open": [([56, 99], [0, 7], 8), ([56, 89], [0, -2], 6)],
        "smile": [([41.5, 92.4], [-3, -3], 6), ([70.7, 92.2], [3, -3], 6)],
        "blink": [([38.3, 48], [0, 4], 5), ([73.5, 48], [0, 4], 5)],
    }

    def __init__(self, rng, target, source, num_frames):
        # The source's "performance" is drawn from `rng`, whose seed includes the source's id.
        del target, source
        seconds = np.arange(num_frames) / FPS
        self.signals = {
            "open": _smooth_signal(rng, seconds, 0.3, 1.0),
            "smile": _smooth_signal(rng, seconds, -0.3, 1.0),
            "blink": _pulses(rng, seconds, rate=0.4, width=0.08),
        }
        self.smoothing = rng.uniform(0.5, 0.9)
        # Gain, and its gradients along x and y per face width, as the renderer's lighting estimate.
        self.shading = (rng.uniform(0.04, 0.08) * rng.choice([-1, 1]), *rng.uniform(-0.03, 0.03, size=2))
        self.shading_drift = _smooth_signal(rng, seconds, -0.02, 0.02)

    def _displacement(self, crop, index):
        """Backward maps for cv2.remap: Gaussian handles push the lips, mouth corners and eyelids."""
        grid_x, grid_y = crop.grid()
        field = np.zeros((*grid_x.shape, 2), np.float32)
        for name, handles in self._HANDLES.items():
            amount = self.signals[name][index]
            for point, move, radius in handles:
                centre = apply_affine(crop.to_crop, [point])[0]
                shift = crop.template_vectors([move])[0] * amount
                spread = 2 * (radius * crop.scale) ** 2
                weight = np.exp(-((grid_x - centre[0]) ** 2 + (grid_y - centre[1]) ** 2) / spread)
                field += weight[..., None] * shift
        return grid_x - field[..., 0], grid_y - field[..., 1]

    def __call__(self, crop, index, rng):
        map_x, map_y = self._displacement(crop, index)
        warped = cv2.remap(crop.pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        warped = cv2.GaussianBlur(warped, (0, 0), self.smoothing * crop.scale)
        grid_x, grid_y = crop.grid()
        centre = apply_affine(crop.to_crop, [[56, 56]])[0]
        face_width = 112 * crop.scale
        gain, gain_x, gain_y = self.shading
        shading = (1 + gain + self.shading_drift[index] + gain_x * (grid_x - centre[0]) / face_width
                   + gain_y * (grid_y - centre[1]) / face_width)
        warped = warped * shading[..., None]
        mask = np.maximum(crop.ovals(EYE_OVALS), crop.ovals(MOUTH_OVAL))
        return warped, crop.feather(mask, 2.0 * rng.uniform(0.85, 1.15))


class NeuralTextures:
    """Neural rendering of the lower face: its fine detail replaced by a generator's.

    The region keeps its low frequencies; its high frequencies become
    generator-like texture: fresh noise every frame (temporal flicker), a
    blocky 2x nearest-neighbour upsampling and a faint checkerboard, the
    fingerprint of strided transposed convolutions.
    """

    def __init__(self, rng, target, source, num_frames):
        del target, source, num_frames
        self.texture_gain = rng.uniform(0.7, 1.2)
        self.checker_level = rng.uniform(1.5, 4.0)
        self.detail_sigma = rng.uniform(0.8, 1.4)

    def __call__(self, crop, index, rng):
        mask = crop.polygon(LOWER_FACE)
        base = cv2.GaussianBlur(crop.pixels, (0, 0), self.detail_sigma * crop.scale)
        width, height = crop.size
        half = cv2.resize(base, ((width + 1) // 2, (height + 1) // 2), interpolation=cv2.INTER_AREA)
        base = cv2.resize(half, (width, height), interpolation=cv2.INTER_NEAREST)
        detail = (crop.pixels - base)[mask > 0.5]
        level = detail.std() * self.texture_gain if detail.size else 0.0
        texture = cv2.GaussianBlur(rng.standard_normal(crop.pixels.shape, dtype=np.float32), (0, 0), 0.7)
        rows, cols = np.indices((height, width))
        checker = np.where((rows + cols) % 2 == 0, self.checker_level, -self.checker_level)[..., None]
        return base + level * texture / (texture.std() + 1e-6) + checker, crop.feather(mask, 2.5)


class SelfBlend:
    """Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): the face blended onto itself.

    The "source" is the target frame itself with jittered colour (per-channel
    gain and offset, contrast) and a slight scale and shift about the nose;
    the mask is the landmark hull, deformed by a smooth elastic field that
    drifts over time, blurred by a random amount and scaled by a random blend
    ratio. The source video plays no part.
    """

    def __init__(self, rng, target, source, num_frames):
        del target, source
        sign = rng.choice([-1, 1], size=3)
        self.gain = 1 + sign * rng.uniform(0.04, 0.1, size=3)
        self.offset = rng.choice([-1, 1], size=3) * rng.uniform(4, 10, size=3)
        self.contrast = rng.uniform(0.9, 1.1)
        self.zoom = 1 + rng.choice([-1, 1]) * rng.uniform(0.015, 0.04)
        self.shift = rng.uniform(-1.5, 1.5, size=2)
        self.ratio = float(rng.choice([0.5, 0.75, 1.0, 1.0]))
        self.blur_sigma = rng.uniform(2.0, 5.0)
        self.elastic = rng.standard_normal((2, 2, 6, 6))
        self.elastic_speed = rng.uniform(0.3, 1.0)

    def _deform(self, mask, crop, index):
        """Warps a mask by a smooth random field (about 8 % of the eye distance) that drifts over time."""
        phase = 2 * np.pi * self.elastic_speed * index / FPS
        coarse = np.float32(np.cos(phase) * self.elastic[0] + np.sin(phase) * self.elastic[1])
        amplitude = 0.08 * _EYE_DISTANCE * crop.scale
        field = [cv2.resize(c, crop.size, interpolation=cv2.INTER_CUBIC) * amplitude for c in coarse]
        grid_x, grid_y = crop.grid()
        return cv2.remap(mask, grid_x + field[0], grid_y + field[1], cv2.INTER_LINEAR)

    def __call__(self, crop, index, rng):
        hull = cv2.convexHull(FACE_HULL).reshape(-1, 2)
        mask = self._deform(crop.polygon(hull), crop, index)
        nose = crop.landmarks[2]
        transform = cv2.getRotationMatrix2D((float(nose[0]), float(nose[1])), 0.0, self.zoom)
        transform[:, 2] += self.shift * crop.scale
        moved = cv2.warpAffine(crop.pixels, transform, crop.size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        mean = moved.mean(axis=(0, 1))
        jittered = (moved - mean) * self.contrast + mean
        jittered = jittered * self.gain + self.offset + rng.normal(0, 0.5, size=3)
        blurred = crop.feather(mask, self.blur_sigma * rng.uniform(0.85, 1.15))
        return jittered, self.ratio * blurred


MANIPULATIONS = {
    "Deepfakes": Deepfakes,
    "Face2Face": Face2Face,
    "FaceSwap": FaceSwap,
    "NeuralTextures": NeuralTextures,
    "SelfBlend": SelfBlend,
}
METHODS = tuple(MANIPULATIONS)


def blend(frame, crop, manipulated, alpha):
    """Pastes manipulated pixels into a frame through an alpha; returns (fake frame, 8-bit alpha).

    The alpha is quantized first and the blend uses the quantized value, so
    the returned alpha is the exact weight and a 0 leaves the pixel untouched.
    """
    quantized = np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)
    weight = quantized.astype(np.float32)[..., None] / 255
    x, y = crop.origin
    width, height = crop.size
    fake = frame.copy()
    region = fake[y:y + height, x:x + width].astype(np.float32)
    mixed = region + weight * (np.clip(manipulated, 0, 255) - region)
    fake[y:y + height, x:x + width] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    full_alpha = np.zeros(frame.shape[:2], np.uint8)
    full_alpha[y:y + height, x:x + width] = quantized
    return fake, full_alpha


def manipulate(method, frames, landmarks, target, source, seed):
    """Makes a fake video from an original, frame by frame.

    Args:
      method: a key of MANIPULATIONS.
      frames: iterable of the original's RGB uint8 frames.
      landmarks: (T, 5, 2) true landmarks of the target face in each frame.
      target: the target's `photos.Face` (whose frames are manipulated).
      source: the source's `Face` (the donor, or the driver of expressions).
      seed: seeds everything random in this video.

    Yields:
      (fake frame, alpha): RGB uint8 (H, W, 3) and uint8 (H, W) blend weight
      times 255; alpha 0 means the pixel is the original's.
    """
    rng = np.random.default_rng(seed)
    manipulation = MANIPULATIONS[method](rng, target, source, len(landmarks))
    for index, frame in enumerate(frames):
        jitter = rng.normal(0, _LANDMARK_JITTER, size=(5, 2)) * _pixels_per_unit(landmarks[index])
        crop = FaceCrop(frame, landmarks[index] + jitter)
        manipulated, alpha = manipulation(crop, index, rng)
        yield blend(frame, crop, manipulated, alpha)


def _pixels_per_unit(landmarks):
    """Frame pixels per template unit, from the eyes, so that the jitter scales with the face."""
    return float(np.linalg.norm(landmarks[1] - landmarks[0])) / _EYE_DISTANCE
