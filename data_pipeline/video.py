"""Reading frames: which frames to sample, and a fake read in lockstep with its original.

PyAV decodes, skipping what no wanted frame needs: a frame no other frame
refers to (a non-reference B-frame) is not decoded unless it is wanted. The
frames it returns are pixel-identical to OpenCV's sequential decode
(tests/test_video.py checks it on real FF++ and DFDC files); a file PyAV
cannot index by timestamps is read sequentially with OpenCV, as before.
Frames are returned RGB, uint8. A frame index is the position in
presentation order (OpenCV's count of decoded frames), the same in a fake and
in its original, which is what makes their crops pixel-aligned.
"""

import dataclasses
import queue
import threading

import av
import cv2
import numpy as np

# Long files (a 4K film) must not exhaust memory: decoding stops after this
# many frames whatever the sampling asks for.
MAX_FRAMES_READ = 100_000


class VideoError(Exception):
    """A video that cannot be used; `reason` is a short machine-readable code."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int


def _open(path):
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoError("unreadable_video", f"cannot open {path}")
    return capture


def probe(path):
    """Frame count (as the container states it), fps and size of a video.

    Raises:
      VideoError: "unreadable_video" for a file OpenCV cannot open,
        "empty_video" for one without a decodable frame.
    """
    capture = _open(path)
    try:
        info = VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS)),
                         int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if info.frame_count <= 0 or info.width <= 0 or info.height <= 0:
        raise VideoError("empty_video", f"{path} has no frames")
    return info


def sample_indices(frame_count, frames_per_video=32, frame_stride=0):
    """Indices of the frames to use.

    Args:
      frame_count: frames in the video.
      frames_per_video: this many evenly spaced frames (first to last) when
        `frame_stride` is 0; all frames if the video has fewer.
      frame_stride: if positive, every `frame_stride`-th frame instead.

    Returns:
      A sorted list of distinct indices.
    """
    if frame_count <= 0:
        return []
    if frame_stride > 0:
        return list(range(0, min(frame_count, MAX_FRAMES_READ), frame_stride))
    count = min(frames_per_video, frame_count)
    return sorted({int(round(i)) for i in np.linspace(0, frame_count - 1, count)})


def read_frames(path, indices):
    """Yields (index, RGB frame) for the wanted indices, in order.

    Only the wanted frames are converted to RGB, and frames no other frame
    refers to are skipped unless wanted. A file that ends early, or whose
    later packets cannot be decoded, yields what it has.
    """
    wanted = sorted(set(indices))
    if not wanted:
        return
    ranks = _presentation_ranks(path)
    if ranks is None:
        yield from _read_frames_sequentially(path, wanted)
    else:
        yield from _read_frames_skipping(path, wanted, ranks)


def _presentation_ranks(path):
    """{packet timestamp: frame index} of a file's video packets, or None where PyAV cannot index it.

    Demuxing reads the file without decoding it. Timestamps that are missing
    or repeated leave the indices unknown: such a file is read sequentially.
    """
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            timestamps = [packet.pts for packet in container.demux(stream) if packet.size]
    except (av.FFmpegError, IndexError, UnicodeDecodeError):
        return None
    if not timestamps or None in timestamps or len(set(timestamps)) != len(timestamps):
        return None
    return {timestamp: index for index, timestamp in enumerate(sorted(timestamps))}


def _read_frames_skipping(path, wanted, ranks):
    """PyAV's decode of the wanted frames: a packet not wanted is decoded only if other frames refer to it."""
    wanted_set, last = set(wanted), wanted[-1]
    with av.open(path) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        # demux ends with an empty packet, which drains the frames the decoder still holds.
        for packet in container.demux(stream):
            index = ranks.get(packet.pts)
            # Read at each packet's decoding; a skipped frame changes no other frame's pixels.
            codec.skip_frame = "NONREF" if index is not None and index not in wanted_set else "DEFAULT"
            try:
                frames = codec.decode(packet)
            except av.FFmpegError:
                continue  # a damaged packet: its frame is lost, the others keep their indices
            for frame in frames:
                index = ranks.get(frame.pts)
                if index in wanted_set:
                    yield index, frame.to_ndarray(format="rgb24")
                    wanted_set.discard(index)
                    if index == last or not wanted_set:
                        return


def _read_frames_sequentially(path, wanted):
    """OpenCV's sequential decode: frames between wanted ones are only grabbed, not converted."""
    capture = _open(path)
    try:
        position = 0
        for index in wanted:
            while position < index:
                if not capture.grab():
                    return
                position += 1
            ok, frame = capture.read()
            if not ok:
                return
            position += 1
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_ahead(items, depth):
    """Yields what `items` yields, produced by a thread that runs up to `depth` items ahead.

    Decoding (PyAV, OpenCV) releases the GIL, so a video decodes on one core
    while its caller works on the frames already decoded. An exception
    raised by `items` is raised here, where its item would have come.
    Leaving early (a break, an exception, the generator closed) stops the
    thread before its next item and closes `items` in it.
    """
    produced = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry):
        """Waits for room unless the reader has left; False when it has."""
        while not stop.is_set():
            try:
                produced.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # raised again in the reader's thread
            put((end, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read_ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = produced.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


# FaceForensics++'s Face2Face writes frames whose width is cut down to a
# multiple of 32 (832 of 854, 640 of 654, 704 of 720, 576 of 600): the
# centre of the original's frame, unscaled. Measured on the Face2Face fakes of
# ../shared/realdata/ffpp_train: against the centred cut the mean |difference|
# is 1.8-2.7 grey levels, one pixel off it 2.8-8.7, and against a rescaled
# original 5.5-22. A fake smaller than its original by less than this on
# each side is read as such a centre cut; any other size difference is refused.
MAX_CENTRE_CUT = 32


@dataclasses.dataclass(frozen=True)
class PairPlan:
    """How a fake is read in lockstep with its original.

    Attributes:
      indices: the frame indices to read from both.
      note: "" or a description of a frame-count mismatch (the common prefix is used).
      offset: (x, y) of the fake's frame inside the original's: (0, 0) when
        they are the same size, the centre cut's corner for a smaller fake.
      size: (width, height) of the fake's frames.
    """

    indices: list
    note: str = ""
    offset: tuple = (0, 0)
    size: tuple = (0, 0)


def centre_cut_offset(fake_size, original_size):
    """(x, y) of a fake's frame as the centre cut of its original's, or None if it is not one.

    Args:
      fake_size, original_size: (width, height).
    """
    margins = [original - fake for fake, original in zip(fake_size, original_size)]
    if not all(0 <= margin < MAX_CENTRE_CUT for margin in margins):
        return None
    return tuple(margin // 2 for margin in margins)


def plan_pair(fake_path, original_path, frames_per_video=32, frame_stride=0):
    """Checks that a fake and its original can be read in lockstep and picks the frames.

    A frame-count mismatch uses the common prefix (the caller logs the note);
    frames are sampled within that prefix. A fake a few pixels smaller than
    its original is aligned as the centre cut of it (`MAX_CENTRE_CUT`).

    Returns:
      A PairPlan.

    Raises:
      VideoError: "unreadable_video" / "empty_video" for either file, or
        "size_mismatch" when the fake is not the original's size or a centre cut of it.
    """
    fake_info, original_info = probe(fake_path), probe(original_path)
    fake_size, original_size = ((fake_info.width, fake_info.height),
                                (original_info.width, original_info.height))
    offset = centre_cut_offset(fake_size, original_size)
    if offset is None:
        raise VideoError("size_mismatch", f"{fake_info.width}x{fake_info.height} fake vs "
                                          f"{original_info.width}x{original_info.height} original")
    common = min(fake_info.frame_count, original_info.frame_count)
    note = "" if fake_info.frame_count == original_info.frame_count else (
        f"frame counts differ ({fake_info.frame_count} fake, {original_info.frame_count} original): "
        f"using the first {common}")
    if offset != (0, 0):
        note = "; ".join(filter(None, [note, f"the fake is the {fake_size[0]}x{fake_size[1]} centre of the "
                                             f"{original_size[0]}x{original_size[1]} original"]))
    return PairPlan(sample_indices(common, frames_per_video, frame_stride), note, offset, fake_size)


def read_pair(fake_path, original_path, plan, original_frames=None):
    """Yields (index, fake RGB, original RGB): frame i of one with frame i of the other.

    The original's frame is cut to the fake's (`PairPlan.offset`), so the
    two are pixel-aligned. Frames are matched by index: a frame that one
    file lost (a damaged packet) is left out, and the others stay paired.
    Stops at the end of the shorter file.

    Args:
      fake_path, original_path: the two videos.
      plan: their PairPlan.
      original_frames: the original's (index, RGB frame) at plan.indices
        where the caller already has them (decoded once for tracking);
        None to decode them here, one pair of frames in memory at a time.
    """
    (x, y), (width, height) = plan.offset, plan.size
    if original_frames is None:
        original_frames = read_frames(original_path, plan.indices)
    originals = iter(original_frames)
    original_index, original = next(originals, (None, None))
    for index, fake in read_frames(fake_path, plan.indices):
        while original_index is not None and original_index < index:
            original_index, original = next(originals, (None, None))
        if original_index is None:
            return
        if original_index == index:
            yield index, fake, original if plan.offset == (0, 0) else original[y:y + height, x:x + width]
