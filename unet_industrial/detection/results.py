"""What detection found, per face, per sampled frame and per video, and how a video's result is printed,
tabled (`CSV_COLUMNS`) and recorded in JSON."""

import dataclasses

CSV_COLUMNS = ("path", "verdict", "score", "threshold", "frames", "frames_with_face", "reason", "detail")
NO_FACE = "no_face"


@dataclasses.dataclass(frozen=True)
class FaceResult:
    """One face in one sampled frame.

    Attributes:
      number: its track: 0 for the most prominent face, 1, 2, ... for others.
      box: the tracked face box (x0, y0, x1, y1), full-resolution pixels.
      crop_box: the square integer box (the recipe's crop scale) the model's crop was cut from.
      score: the crop's score (`verdicts.frame_scores`).
    """

    number: int
    box: tuple
    crop_box: tuple
    score: float


@dataclasses.dataclass(frozen=True)
class FrameResult:
    """One sampled frame: its index in the video, its faces, and its score (None without a face)."""

    index: int
    faces: tuple
    score: float | None


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What detection found in one video.

    Attributes:
      path: the video file.
      frames: a FrameResult per decoded sampled frame.
      score: the video score; None without a verdict.
      verdict: "fake", "real", or None (no face, or the file was not read).
      threshold, aggregation: the calibrated rule the verdict follows.
      size: (width, height) of the frames; None if none was decoded.
      seconds: time per stage and "total": "decode" (both passes over the
        file), "detect" (MTCNN and tracking), "model" (cutting the crops and
        the network), "overlay" (drawing, when asked); empty when unread.
      reason, detail: why there is no verdict: NO_FACE, or a
        `video.VideoError` reason for a file that could not be read.
    """

    path: str
    frames: tuple
    score: float | None
    verdict: str | None
    threshold: float
    aggregation: str
    size: tuple | None
    seconds: dict
    reason: str = ""
    detail: str = ""

    @classmethod
    def unread(cls, path, error, calibration):
        """The result for a file that could not be read (a `video.VideoError`)."""
        return cls(path, (), None, None, calibration.video_threshold, calibration.aggregation, None, {},
                   error.reason, error.detail)

    @property
    def frames_with_face(self):
        return sum(frame.score is not None for frame in self.frames)

    def line(self):
        """The one line printed for this video."""
        if self.verdict is not None:
            relation = ">=" if self.verdict == "fake" else "<"
            return (f"{self.path}: {self.verdict} (score {self.score:.3f} {relation} threshold "
                    f"{self.threshold:.3f}, {self.aggregation} over {len(self.frames)} frames, "
                    f"{self.frames_with_face} with a face)")
        if self.reason == NO_FACE:
            return f"{self.path}: no face found in {len(self.frames)} frames; no verdict"
        return f"{self.path}: not read ({self.reason}: {self.detail}); no verdict"

    def csv_row(self):
        """The video's row of the CSV (`CSV_COLUMNS`); verdict and score are empty without a verdict."""
        return {"path": self.path, "verdict": self.verdict or "",
                "score": "" if self.score is None else self.score, "threshold": self.threshold,
                "frames": len(self.frames), "frames_with_face": self.frames_with_face, "reason": self.reason,
                "detail": self.detail}

    def record(self):
        """A JSON-able dict of everything above."""
        return {**dataclasses.asdict(self), "frames_with_face": self.frames_with_face}
