"""Files of the synthetic corpus: its frame rate, lossless mask videos, PNG mask frames, reading them back.

The videos themselves (FaceForensics++'s three qualities) are written by
`video_writer.VideoWriter`, its COMPRESSIONS; every file is written under a
hidden temporary name and renamed when complete (`video_writer.AtomicWriter`).
"""

import os

import av
import cv2
import numpy as np

from data_pipeline import video_writer

# The corpus's frame rate: the writer's default, at which every corpus video is written.
FPS = video_writer.FPS
# Mask videos hold gray 0/255 frames, which lossless 4:2:0 keeps exactly
# (their chroma is constant); OpenCV and PyAV read them as RGB.
MASK_CODEC = ("libx264", "yuv420p", {"qp": "0"})
MASK_FRAME_NAME = "{:05d}.png"


class MaskFramesWriter(video_writer.AtomicWriter):
    """Writes a fake's per-frame 8-bit alpha masks as numbered PNGs in a folder; a context manager."""

    def __init__(self, directory):
        super().__init__(directory)
        os.makedirs(self.temporary)
        self._index = 0

    def write(self, alpha):
        """Appends one uint8 (H, W) mask."""
        path = os.path.join(self.temporary, MASK_FRAME_NAME.format(self._index))
        if not cv2.imwrite(path, alpha):
            raise OSError(f"cannot write {path}")
        self._index += 1


def read_video(path):
    """Decodes every frame of a video with PyAV.

    Returns:
      (frames, fps): uint8 RGB array (T, H, W, 3) and the frame rate as a float.
    """
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        fps = float(stream.average_rate)
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return np.stack(frames), fps


def read_mask_frames(directory):
    """The 8-bit alpha masks of a fake, uint8 (T, H, W), from its folder of PNGs."""
    names = sorted(name for name in os.listdir(directory) if name.endswith(".png"))
    if not names:
        raise FileNotFoundError(f"no mask frames in {directory}")
    return np.stack([cv2.imread(os.path.join(directory, name), cv2.IMREAD_UNCHANGED) for name in names])
