"""The overlay: each sampled frame at detection size with its crop boxes, the fake pixels tinted and the
scores written, saved as an H.264 .mp4."""

import cv2
import numpy as np

from data_pipeline import video_writer

# Slow enough to look at each sampled frame.
OVERLAY_FPS = 2
# RGB colours and the tint's opacity.
BOX_COLOUR = (0, 255, 0)
FAKE_COLOUR = np.array([255, 0, 0], np.float32)
TINT_OPACITY = 0.5
# The scores' text: white, outlined in black two pixels wide.
TEXT_FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.6
TEXT_COLOUR = (255, 255, 255)
TEXT_OUTLINE = (0, 0, 0)
OUTLINE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def _put_text(image, text, origin):
    """Text readable on any background: white over a black outline, drawn in place.

    The outline is the text's own coverage, dilated. A second, thicker
    putText is no outline under OpenCV 5: its Hershey fonts are a TrueType
    font whose thickness picks the weight (bold, with wider letters), so the
    thick black pass would neither surround the white one nor line up with it.
    """
    (width, height), baseline = cv2.getTextSize(text, TEXT_FONT, TEXT_SCALE, 1)
    # The text's box, widened by the outline and a pixel of anti-aliasing, cut to the image.
    margin = OUTLINE_KERNEL.shape[0] // 2 + 1
    x0, y0 = max(origin[0] - margin, 0), max(origin[1] - height - margin, 0)
    x1 = min(origin[0] + width + margin, image.shape[1])
    y1 = min(origin[1] + baseline + margin, image.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    coverage = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.putText(coverage, text, (origin[0] - x0, origin[1] - y0), TEXT_FONT, TEXT_SCALE, 255, 1, cv2.LINE_AA)
    region = image[y0:y1, x0:x1]
    for colour, alpha in ((TEXT_OUTLINE, cv2.dilate(coverage, OUTLINE_KERNEL)), (TEXT_COLOUR, coverage)):
        weight = alpha[..., None].astype(np.float32) / 255
        region[:] = (region * (1 - weight) + np.float32(colour) * weight).round().astype(np.uint8)


def draw(image, scale, frame, fake_areas):
    """Draws one frame's overlay in place on its detection-size copy and returns it.

    Args:
      image: the RGB frame at detection size (`scale` x full resolution).
      scale: its scale.
      frame: the frame's FrameResult.
      fake_areas: per face, the bool mask of fake pixels of its crop, or None (a classifier's).
    """
    height, width = image.shape[:2]
    for face, fake in zip(frame.faces, fake_areas):
        x0, y0, x1, y1 = (int(round(v * scale)) for v in face.crop_box)
        x1, y1 = min(x1, width), min(y1, height)
        if fake is not None:
            region = image[y0:y1, x0:x1]
            inside = cv2.resize(fake.astype(np.uint8), (x1 - x0, y1 - y0),
                                interpolation=cv2.INTER_NEAREST) > 0
            tinted = region[inside] * (1 - TINT_OPACITY) + FAKE_COLOUR * TINT_OPACITY
            region[inside] = tinted.astype(np.uint8)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BOX_COLOUR, 2)
        _put_text(image, f"{face.score:.3f}", (x0 + 4, y1 - 8))
    caption = "no face" if frame.score is None else f"score {frame.score:.3f}"
    _put_text(image, f"frame {frame.index}: {caption}", (8, 24))
    return image


def write_overlay(path, frames):
    """Writes overlay frames as an H.264 .mp4, through a temporary file renamed when complete.

    libx264's 4:2:0 pixels need an even width and height: an odd last row
    or column is left out.
    """
    height, width = (side - side % 2 for side in frames[0].shape[:2])
    with video_writer.VideoWriter(path, (width, height), video_writer.COMPRESSIONS["c23"],
                                  fps=OVERLAY_FPS) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:height, :width]))
