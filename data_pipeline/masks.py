"""Which pixels of a fake are fake: a mask from a pixel-aligned (fake, original) pair.

A plain threshold on |fake - original| fails twice: under H.264 compression
the two separately encoded videos differ everywhere (most in textured areas,
where a fixed threshold cuts noise into the mask), and subtle methods such as
NeuralTextures change the face by only a few grey levels (where a high
threshold misses them). `fake_mask` therefore

1. measures the difference two ways and adds them: the absolute difference
   of slightly blurred images (smooth colour and brightness changes, e.g. a
   swapped face's blended edge, which SSIM's constants hide in flat areas)
   and the structural dissimilarity 1 - SSIM (changed structure, largely
   blind to noise on texture), as the DFDC winner derived its masks;
2. estimates the noise level of that map around the face (its median in
   the margin between the face box and the x1.3 crop, or over the whole
   image without a face box) and thresholds relative to it, never below a
   floor of about one grey level: identical pixels give an empty mask and
   c23/c40 noise does not flood it;
3. returns an empty mask when no patch differs coherently (codec noise is
   strong only at single pixels and edges), else keeps the regions above
   the threshold that contain a clearly stronger seed (hysteresis), inside
   the face box when one is given;
4. closes small gaps, drops specks, and fills the convex hull of each
   region left: manipulated regions are compact face regions, as the official
   FaceForensics++ masks are (boxes for Deepfakes / DFD, the face's 3-D
   model for NeuralTextures / Face2Face / FaceSwap).

Sizes below are in pixels of a 256-pixel face crop and scale with the face
(`kernel_scale`): a face crop gives the same mask at its native size or
resized, and a whole frame with its face box is treated like its crop. The
defaults are measured by `python -m data_pipeline.tools.mask_quality` (see
BENCHMARKS.md). Images are RGB (or gray), uint8, same shape.

Known limits: a hard-edged paste is overshot by the SSIM window (about 3
pixels at 256); a very subtle fake under heavy compression (the DFD example
re-encoded at CRF 40) can fall below the coherence test and come out
empty; and without a face box compressed pairs pick up noise on hair and
clothes, so pass the face box.
"""

import cv2
import numpy as np
from skimage import filters

from data_pipeline import faces

# Kernel sizes are given for a face crop (or image) whose side is this long.
REFERENCE_SIDE = 256
# Blur before the absolute difference: removes pixel-level codec noise but
# keeps the sub-feature detail of subtle methods.
PREBLUR_SIGMA = 0.7
# SSIM's Gaussian window (Wang et al. 2004).
SSIM_SIGMA = 1.5
# SSIM's stabilizing constants for 8-bit images, (0.01 * 255)^2 and (0.03 * 255)^2.
_SSIM_C1, _SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
# 1 - SSIM is scaled to "per cent" so both terms of the map are comparable
# with grey levels: one grey level of blurred difference ~ 1 % of dissimilarity.
DISSIMILARITY_SCALE = 100.0
# Threshold = max(MIN_THRESHOLD, NOISE_FACTOR x noise level). The floor
# (about one grey level) makes identical and losslessly equal pixels empty;
# 3x the median noise keeps c23/c40 noise out while a few grey levels of
# NeuralTextures on a clean frame still pass.
MIN_THRESHOLD = 1.0
NOISE_FACTOR = 3.0
NOISE_PERCENTILE = 50
# A region is kept only if somewhere it exceeds SEED_FACTOR x the threshold:
# isolated noise just above the threshold does not start a region.
SEED_FACTOR = 1.5
# A pair is a fake only if the difference map, averaged with a Gaussian of
# this sigma, exceeds COHERENCE_FACTOR x the threshold somewhere: a
# re-encoded but unchanged video (DFDC's audio-only fakes) gives an empty mask.
COHERENCE_SIGMA = 4.0
COHERENCE_FACTOR = 2.0
# Closing radius joining the patches of one manipulated region.
CLOSE_RADIUS = 3.0
# Components smaller than this fraction of the largest one, or of the face
# crop's area, are noise specks.
MIN_COMPONENT_RATIO = 0.1
MIN_COMPONENT_FRACTION = 0.005
# A mask covering less than this fraction of the image counts as empty (a
# fake whose manipulation is elsewhere, e.g. DFDC's audio-only fakes).
EMPTY_FRACTION = 0.002
# Provided (dataset) masks are videos: H.264 ringing around a 0/255 edge
# stays below this grey level at c23 and c40, while the faint feather of
# soft masks (DFD's) is kept; measured on the official FF++ masks.
PROVIDED_THRESHOLD = 16


def _pair(fake, original):
    fake, original = faces.to_rgb(fake), faces.to_rgb(original)
    if fake.shape != original.shape:
        raise ValueError(f"fake {fake.shape} and original {original.shape} differ in size")
    return fake.astype(np.float32), original.astype(np.float32)


def _blur(image, sigma):
    return cv2.GaussianBlur(image, (0, 0), sigma)


def dissimilarity(a, b, sigma=SSIM_SIGMA):
    """Per-pixel 1 - SSIM of two float32 images, the worst channel; in [0, 2]."""
    mean_a, mean_b = _blur(a, sigma), _blur(b, sigma)
    var_a = _blur(a * a, sigma) - mean_a * mean_a
    var_b = _blur(b * b, sigma) - mean_b * mean_b
    cov = _blur(a * b, sigma) - mean_a * mean_b
    ssim = ((2 * mean_a * mean_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mean_a * mean_a + mean_b * mean_b + _SSIM_C1) * (var_a + var_b + _SSIM_C2))
    return (1.0 - ssim).max(axis=-1)


def kernel_scale(shape, face_box=None):
    """Factor from REFERENCE_SIDE pixels to these images' pixels.

    Features scale with the face: with a face box, the side of the crop the
    pipeline would cut around it (longer side x CROP_SCALE), so a whole
    frame is treated like its face crop; otherwise the image's shorter side.
    """
    if face_box is None:
        return min(shape[:2]) / REFERENCE_SIDE
    x0, y0, x1, y1 = face_box
    return max(x1 - x0, y1 - y0) * faces.CROP_SCALE / REFERENCE_SIDE


def difference_map(fake, original, scale=None):
    """How different each pixel is: blurred absolute difference + scaled 1 - SSIM.

    Args:
      fake, original: pixel-aligned images (RGB or gray, uint8, same shape).
      scale: kernel sizes relative to REFERENCE_SIDE (`kernel_scale`); the
        shorter side / REFERENCE_SIDE by default.

    Returns:
      float32 (H, W), 0 where the images are equal; roughly grey levels.
    """
    fake, original = _pair(fake, original)
    scale = scale or kernel_scale(fake.shape)
    blurred = np.abs(_blur(fake, PREBLUR_SIGMA * scale) - _blur(original, PREBLUR_SIGMA * scale)).max(axis=-1)
    return blurred + DISSIMILARITY_SCALE * dissimilarity(fake, original, SSIM_SIGMA * scale)


def box_region(shape, box):
    """Boolean (H, W) mask of the pixels inside an (x0, y0, x1, y1) box, clipped to the image."""
    height, width = shape[:2]
    x0, y0, x1, y1 = (max(int(round(v)), 0) for v in box)
    region = np.zeros((height, width), bool)
    region[y0:y1, x0:x1] = True
    return region


def noise_level(diff, face_box=None):
    """Robust noise level of a difference map: its median around the face.

    Args:
      diff: the map from `difference_map`.
      face_box: the face, or None. With it, the median is taken over the
        ring between the face box and the FF++ crop around it (the whole
        margin of a face crop), where texture and codec noise resemble the
        face's; without it, over the whole image, which stays robust while
        the manipulated area is under half of it.
    """
    if face_box is not None:
        height, width = diff.shape
        ring = box_region(diff.shape, faces.square_box(face_box, faces.CROP_SCALE, height, width))
        ring &= ~box_region(diff.shape, face_box)
        if ring.any():
            return float(np.percentile(diff[ring], NOISE_PERCENTILE))
    return float(np.percentile(diff, NOISE_PERCENTILE))


def _has_coherent_difference(diff, threshold, scale):
    """Whether some patch differs clearly: the blurred map tops COHERENCE_FACTOR x threshold.

    Codec noise is strong only at single pixels and edges; averaged over a
    few pixels it stays near the noise level, while any manipulation leaves
    a patch of consistent difference.
    """
    return float(_blur(diff, COHERENCE_SIGMA * scale).max()) > COHERENCE_FACTOR * threshold


def _disk(radius):
    size = 2 * max(int(round(radius)), 1) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _clean(mask, scale, convex):
    """Closes gaps, drops specks, and fills the convex hull of each region left."""
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, _disk(CLOSE_RADIUS * scale))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not len(areas):
        return mask
    keep = 1 + np.flatnonzero((areas >= MIN_COMPONENT_RATIO * areas.max())
                              & (areas >= MIN_COMPONENT_FRACTION * (REFERENCE_SIDE * scale) ** 2))
    mask = np.isin(labels, keep).astype(np.uint8)
    if convex:
        # Each region's own hull: it fills the holes of a swapped face, but
        # does not bridge separate regions (the eyes and mouth of a reenactment).
        hulls = np.zeros_like(mask)
        for label in keep:
            cv2.fillConvexPoly(hulls, cv2.convexHull(cv2.findNonZero((labels == label).astype(np.uint8))), 1)
        mask = hulls
    return mask


def fake_mask(fake_rgb, original_rgb, face_box=None, *, min_threshold=MIN_THRESHOLD,
              noise_factor=NOISE_FACTOR, seed_factor=SEED_FACTOR, convex=True):
    """The fake pixels of a pixel-aligned pair (face crops or whole frames).

    Args:
      fake_rgb, original_rgb: the fake and its original, aligned pixel for
        pixel: RGB (or gray) uint8, same shape.
      face_box: optional (x0, y0, x1, y1) of the face in these images' pixels
        (for a face crop, `faces.box_in_crop(face, crop_box, size)`). The
        mask is kept inside it and the noise is measured around it, which
        makes compressed pairs much cleaner. Without it the whole image is
        searched.
      min_threshold, noise_factor: threshold on the difference map,
        max(min_threshold, noise_factor x noise level).
      seed_factor: a region must exceed seed_factor x the threshold somewhere.
      convex: fill the convex hull of each kept region.

    Returns:
      uint8 (H, W) array of 0 and 1, 1 = fake.

    Raises:
      ValueError: for images of different shapes, or not uint8 gray/RGB/RGBA.
    """
    scale = kernel_scale(np.shape(fake_rgb), face_box)
    diff = difference_map(fake_rgb, original_rgb, scale)
    threshold = max(min_threshold, noise_factor * noise_level(diff, face_box))
    if face_box is not None:
        diff = np.where(box_region(diff.shape, face_box), diff, 0.0)
    if not _has_coherent_difference(diff, threshold, scale):
        return np.zeros(diff.shape, np.uint8)
    regions = filters.apply_hysteresis_threshold(diff, threshold, seed_factor * threshold)
    return _clean(regions, scale, convex)


def is_empty(mask, min_fraction=EMPTY_FRACTION):
    """True when a mask covers less than `min_fraction` of its pixels (the fake shows no difference)."""
    return float(np.count_nonzero(mask)) < min_fraction * np.size(mask)


def binarize_provided(mask_frame, threshold=PROVIDED_THRESHOLD):
    """A dataset's own mask frame (decoded from its mask video) as 0/1.

    Args:
      mask_frame: (H, W) or (H, W, C) uint8, e.g. an RGB frame of FF++'s
        `masks/videos/*.mp4`; any channel above the threshold counts.
      threshold: grey level above which a pixel is fake. FF++'s own
        definition is > 0 on its lossless masks; the default ignores the
        codec's ringing in compressed mask videos.

    Returns:
      uint8 (H, W) array of 0 and 1.
    """
    frame = np.asarray(mask_frame)
    if frame.ndim == 3:
        frame = frame.max(axis=-1)
    return (frame > threshold).astype(np.uint8)
