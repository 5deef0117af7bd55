"""Uploaded videos waiting for the detector, and the one worker thread that detects them in turn.

A job is known by a random token and belongs to the session that uploaded
it (`Job.owner`, another random token): the queue hands a job only to a
caller who names both, so one browser never sees another's results, and a
job that is gone reads like one that never was.

A job's files (the upload, then the overlay video) live in a folder of its
own inside the server's temporary folder. The upload is removed as soon as
the detector is done with it; the folder when the job is forgotten: by its
owner, when more than `MAX_FINISHED` jobs are done (the oldest first), or
with the whole temporary folder when the server stops.
"""

import collections
import dataclasses
import hmac
import json
import os
import secrets
import shutil
import threading

import cv2
import numpy as np
from absl import logging

from data_pipeline import video
from unet_industrial import detection, verdicts

# Each waiting job holds an upload on disk; a longer queue is refused.
MAX_WAITING = 8
# Finished jobs kept for their owners to look at.
MAX_FINISHED = 16
# The sampled frames with the highest scores, shown as stills.
STILLS = 4
JPEG_QUALITY = 85
OVERLAY = "overlay.mp4"
# Stages a job passes through: the queue's, then `detection.detect_video`'s, then the overlay's encoding.
STAGES = ("queued", "faces", "crops", "model", "overlay", "encoding")
# What a user is told of a file the detector cannot read, by `video.VideoError` reason.
UNREADABLE = {"unreadable_video": "is not a video that can be decoded",
              "empty_video": "has no frame that can be decoded"}


class QueueFull(Exception):
    """No room for another job; the message is one line for the user."""


class JobRunning(Exception):
    """A running job cannot be forgotten until it is done."""


@dataclasses.dataclass(frozen=True)
class Still:
    """A sampled frame of the overlay as a JPEG, with its index in the video and its score."""

    index: int
    score: float
    jpeg: bytes


@dataclasses.dataclass(eq=False)
class Job:
    """One uploaded video and what became of it.

    Attributes:
      id: its random token.
      owner: the random token of the session that uploaded it.
      name: the uploaded file's name, for display only (never a path).
      folder: its own folder inside the server's temporary folder.
      video_path: the upload inside `folder`, removed once detected.
      overlay: whether to draw the overlay video and the stills.
      state: "queued", "running", "done" or "failed".
      stage: one of STAGES while queued or running.
      error: why it failed, one line for the user.
      report: once done, the JSON-able report (`Detector.report`).
      overlay_path: once done, the overlay .mp4; "" without one.
      stills: once done, a Still per top-scored frame, highest first.
      finished: set once it is done or failed.
    """

    id: str
    owner: str
    name: str
    folder: str
    video_path: str
    overlay: bool
    state: str = "queued"
    stage: str = "queued"
    error: str = ""
    report: dict | None = None
    overlay_path: str = ""
    stills: tuple = ()
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)


def _plain(value):
    """numpy scalars as Python numbers, for `json.dumps`."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def top_stills(frames, drawn, count=STILLS):
    """Stills of the `count` highest-scoring frames (ties: the earlier frame first).

    Args:
      frames: a `detection.FrameResult` per overlay frame.
      drawn: the overlay frames, RGB uint8.
      count: how many.
    """
    scored = sorted((i for i, frame in enumerate(frames) if frame.score is not None),
                    key=lambda i: -frames[i].score)[:count]
    stills = []
    for i in scored:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(drawn[i], cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            stills.append(Still(frames[i].index, frames[i].score, jpeg.tobytes()))
    return tuple(stills)


@dataclasses.dataclass(frozen=True)
class Detector:
    """A run's model, and its calibration with the crop recipe detection follows."""

    model: object
    calibration: verdicts.Calibration
    run_dir: str

    @classmethod
    def load(cls, run_dir, checkpoint="best"):
        """Reads the run's calibration and crop recipe, then loads its model.

        Raises:
          verdicts.CalibrationError: for a run without a usable calibration.
          ConfigError: for a run without a crop recipe or a model.
        """
        calibration = detection.with_recipe(run_dir, verdicts.Calibration.load(run_dir))
        from unet_industrial import inference  # Keras: seconds to import, paid once the run looks usable.

        return cls(inference.load(run_dir, checkpoint), calibration, run_dir)

    @property
    def frames_per_video(self):
        """The frames sampled per video: the recipe's, the count the video threshold holds for."""
        return self.calibration.recipe.frames_per_video

    def report(self, result):
        """The JSON `detection.detect` writes, for one video; the server's paths reduced to names.

        The video's `path` is the uploaded file's name, the run its folder's
        name and the checkpoint its path inside the run.
        """
        record = detection.json_report(self.run_dir, self.model, self.calibration, [result])
        record.update(run_dir=os.path.basename(os.path.normpath(self.run_dir)),
                      checkpoint=os.path.relpath(self.model.checkpoint, self.run_dir))
        return json.loads(json.dumps(record, default=_plain))

    def run(self, job, progress):
        """Detects on a job's video, then removes the upload.

        Args:
          job: the Job.
          progress: called with each stage's name as it starts.

        Returns:
          (report, overlay path or "", stills).

        Raises:
          video.VideoError: for a file that cannot be read.
        """
        try:
            result, drawn = detection.detect_video(job.video_path, self.model, self.calibration,
                                                   overlay=job.overlay, progress=progress)
        finally:
            os.remove(job.video_path)
        result = dataclasses.replace(result, path=job.name)
        if not drawn:
            return self.report(result), "", ()
        progress("encoding")
        overlay_path = os.path.join(job.folder, OVERLAY)
        detection.write_overlay(overlay_path, drawn)
        return self.report(result), overlay_path, top_stills(result.frames, drawn)


class JobQueue:
    """Jobs by id, and a worker thread that detects the waiting ones in the order they came."""

    def __init__(self, detector):
        self._detector = detector
        self._lock = threading.Condition()
        self._jobs = {}  # By id, oldest first.
        self._waiting = collections.deque()
        self._running = None
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="detector", daemon=True)
        self._worker.start()

    def submit(self, owner, name, folder, video_path, overlay=True):
        """Queues an upload; from here on the queue owns its folder.

        Args:
          owner: the uploading session's token.
          name: the file's name, for display.
          folder: the job's own folder, holding the upload.
          video_path: the upload.
          overlay: whether to draw the overlay and the stills.

        Returns:
          The Job.

        Raises:
          QueueFull: when MAX_WAITING jobs wait already or the queue is closed;
            the folder is then still the caller's.
        """
        with self._lock:
            if self._closed:
                raise QueueFull("the server is stopping")
            if len(self._waiting) >= MAX_WAITING:
                raise QueueFull(f"{MAX_WAITING} videos are waiting already; send this one when one is done")
            job = Job(secrets.token_urlsafe(16), owner, name, folder, video_path, overlay)
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._lock.notify_all()
        return job

    def get(self, job_id, owner):
        """The job of this id if `owner` uploaded it, else None."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not hmac.compare_digest(job.owner.encode(), owner.encode()):
            return None
        return job

    def view(self, job):
        """A consistent snapshot of a job's progress: a dict of state, stage, ahead, error and report.

        `ahead` counts the jobs the detector will finish before it starts this one.
        """
        with self._lock:
            ahead = 0
            if job.state == "queued":
                ahead = self._waiting.index(job) + (self._running is not None)
            return {"state": job.state, "stage": job.stage, "ahead": ahead, "error": job.error,
                    "report": job.report}

    def forget(self, job):
        """Removes a job that is not running, and its folder.

        Raises:
          JobRunning: while the detector works on it.
        """
        with self._lock:
            if job.state == "running":
                raise JobRunning(f"{job.name} is being detected; remove it when it is done")
            if job in self._waiting:
                self._waiting.remove(job)
            self._drop(job)

    def close(self):
        """Fails the waiting jobs and lets the worker stop after its current one."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            for job in waiting:
                job.state, job.error = "failed", "the server is stopping"
            self._lock.notify_all()
        for job in waiting:
            job.finished.set()

    def _drop(self, job):
        """Forgets a job and removes its folder; the lock is held."""
        self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def _set_stage(self, job, stage):
        with self._lock:
            job.stage = stage

    def _work(self):
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._running = self._waiting.popleft()
                job.state = "running"
            state, error, outcome = self._detect(job)
            with self._lock:
                job.state, job.stage, job.error, self._running = state, "", error, None
                job.report, job.overlay_path, job.stills = outcome
                finished = [other for other in self._jobs.values() if other.state in ("done", "failed")]
                for old in finished[:max(0, len(finished) - MAX_FINISHED)]:
                    self._drop(old)
            job.finished.set()

    def _detect(self, job):
        """(state, error, (report, overlay path, stills)) of a job: the detector's, or why it failed."""
        try:
            return "done", "", self._detector.run(job, lambda stage: self._set_stage(job, stage))
        except video.VideoError as error:
            message = f"{job.name} {UNREADABLE.get(error.reason, f'cannot be read ({error.reason})')}"
        except Exception:  # noqa: BLE001  (the page gets one line; the log the traceback)
            logging.exception("detection failed on job %s", job.id)
            message = f"detection failed on {job.name}; the server's log says why"
        return "failed", message, (None, "", ())
