"""H.264 .mp4 files through PyAV, written atomically: the corpus's videos and detection's overlays.

OpenCV's wheel cannot encode H.264; PyAV's wheel ships libx264. The three
FaceForensics++ qualities are libx264 settings:

| name | codec | pixels | setting | decoded frames |
|---|---|---|---|---|
| c0 | libx264rgb | RGB 4:4:4 | qp 0 (lossless) | exactly the frames written (OpenCV and PyAV alike) |
| c23 | libx264 | YUV 4:2:0 | CRF 23, no macroblock tree | lossy, as FF++'s "HQ" |
| c40 | libx264 | YUV 4:2:0 | CRF 40, no macroblock tree | lossy, as FF++'s "LQ" |

FF++'s own c0 is lossless YUV 4:2:0, which already loses colour detail when
converted from RGB; the RGB codec keeps the corpus's c0 truly lossless, so
that a fake equals its original wherever its mask is 0. Some players cannot
show it.

Determinism: x264 runs on one thread (its output would otherwise depend on
the machine's core count), and without its macroblock-tree rate control
(FF++'s ffmpeg defaults use it): with it, this libx264 build encodes the
same frames differently from run to run (seen at 160x120 and 320x240, 25
and 100 frames; constant QP and `mbtree=0` are stable).

Every file is written under a hidden temporary name and renamed when
complete, so a killed run never leaves a half-written file under a final name.
"""

import fractions
import os
import shutil

import av

from data_pipeline import files

# The default frame rate, the synthetic corpus's.
FPS = 25
COMPRESSIONS = {
    # Lossless: the preset changes only speed and size; "ultrafast" is 10x
    # faster than the default for files about 20 % larger.
    "c0": ("libx264rgb", "rgb24", {"qp": "0", "preset": "ultrafast"}),
    "c23": ("libx264", "yuv420p", {"crf": "23", "mbtree": "0"}),
    "c40": ("libx264", "yuv420p", {"crf": "40", "mbtree": "0"}),
}


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


class AtomicWriter:
    """Base of the writers: output goes to a hidden sibling, renamed into place on a clean close."""

    def __init__(self, path):
        self.path = path
        self.temporary = files.temporary_sibling(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        _remove(self.temporary)  # Left over by a killed run.

    def _close(self, complete):
        """Finishes (or abandons, when not `complete`) the temporary output."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        try:
            self._close(complete=kind is None)
        except BaseException:
            _remove(self.temporary)
            raise
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            _remove(self.temporary)
        return False


class VideoWriter(AtomicWriter):
    """Writes frames to an H.264 .mp4; use as a context manager.

    Args:
      path: the .mp4 to write.
      frame_size: (width, height), both even.
      codec: (codec, pixel format, options): a value of COMPRESSIONS, or the corpus's mask codec.
      fps: frame rate.
    """

    def __init__(self, path, frame_size, codec, fps=FPS):
        super().__init__(path)
        self._container = av.open(self.temporary, mode="w")
        name, pixel_format, options = codec
        self._stream = self._container.add_stream(name, rate=fps, options=dict(options))
        self._stream.width, self._stream.height = frame_size
        self._stream.pix_fmt = pixel_format
        self._stream.codec_context.thread_count = 1
        self._time_base = fractions.Fraction(1, fps)
        self._index = 0

    def write(self, frame):
        """Appends one frame: RGB uint8 (H, W, 3), or gray uint8 (H, W)."""
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24" if frame.ndim == 3 else "gray")
        picture.pts, picture.time_base = self._index, self._time_base
        self._index += 1
        self._container.mux(self._stream.encode(picture))

    def _close(self, complete):
        try:
            if complete:
                self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
