"""The WSGI application of `python -m unet_industrial.serve`: the page, its assets and a JSON API.

Routes (no route takes a path; a job is named by its random id, and only
the session that uploaded it can name it):

  GET    /                               the page; sets the session cookie
  GET    /assets/<name>                  app.js, style.css
  GET    /api/config                     the upload limit, frames per video, the calibration
  POST   /api/jobs                       queues one uploaded video (multipart field "video"):
                                         202 and the job's status
  GET    /api/jobs/<id>                  its status, with the report once done
  GET    /api/jobs/<id>/overlay.mp4      the overlay video
  GET    /api/jobs/<id>/stills/<n>.jpg   the n-th highest-scoring sampled frame (0 first)
  GET    /api/jobs/<id>/report.json      the report, as a download
  DELETE /api/jobs/<id>                  forgets the job and removes its files
  POST   /api/detect                     detects on one uploaded video; answers with the report

An error is JSON {"error": "<one line>"} with its HTTP status, never a traceback.

Uploads are written straight into a folder of their own inside the app's
temporary folder (`work_dir`), refused past `max_upload_bytes`, and kept
only if they are one non-empty file that `data_pipeline.video.probe` can
open; the file's name is shown, never used as a path. Bound to a loopback
address, the app answers only requests addressed to a loopback name (a
web page elsewhere cannot reach it by DNS rebinding), and it refuses
cross-site POSTs.
"""

import dataclasses
import ipaddress
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import urllib.parse
from importlib import resources

from absl import logging
from werkzeug import exceptions, serving, utils
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from data_pipeline import video
from unet_industrial import run_files
from unet_industrial.config import ConfigError
from unet_industrial.serving import jobs

MB = 1024 * 1024
# Uploads being received at once, each up to the upload limit on disk; more are refused.
MAX_UPLOADS_AT_ONCE = 4
UPLOAD_FIELD = "video"
SESSION_COOKIE = "session"
SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
# Host names of a server bound to a loopback address.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
PAGE = "index.html"
ASSETS = {PAGE: "text/html", "app.js": "text/javascript", "style.css": "text/css"}
# The page loads nothing from elsewhere, runs no inline script, and may not be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; media-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ROUTES = Map([
    Rule("/", endpoint="page", methods=["GET"]),
    Rule("/assets/<name>", endpoint="asset", methods=["GET"]),
    Rule("/api/config", endpoint="config", methods=["GET"]),
    Rule("/api/jobs", endpoint="submit", methods=["POST"]),
    Rule("/api/jobs/<job_id>", endpoint="status", methods=["GET"]),
    Rule("/api/jobs/<job_id>", endpoint="forget", methods=["DELETE"]),
    Rule("/api/jobs/<job_id>/overlay.mp4", endpoint="overlay", methods=["GET"]),
    Rule("/api/jobs/<job_id>/stills/<int:rank>.jpg", endpoint="still", methods=["GET"]),
    Rule("/api/jobs/<job_id>/report.json", endpoint="download", methods=["GET"]),
    Rule("/api/detect", endpoint="detect", methods=["POST"]),
])


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What the server depends on; the fields are the flags of `python -m unet_industrial.serve`.

    Attributes:
      run_dir: a trained run folder with calibration.json; the shipped detector by default.
      checkpoint: "best" (falling back to "last") or "last".
      host: the address to listen on; a loopback one keeps the page on this machine.
      port: the port; 0 for any free one.
      max_upload_mb: the largest upload accepted, in MiB.
    """

    run_dir: str = run_files.SHIPPED_RUN_DIR
    checkpoint: str = "best"
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: int = 256


def validate(config):
    """Checks a ServeConfig before the model loads.

    Raises:
      ConfigError: naming the first problem.
    """
    run_files.check_run_folder(config.run_dir, config.checkpoint)
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port={config.port} must be between 0 and 65535")
    if config.max_upload_mb < 1:
        raise ConfigError(f"--max_upload_mb={config.max_upload_mb} must be at least 1")


def is_loopback(host):
    """Whether an address to listen on is reachable from this machine only."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Refused(Exception):
    """A request the app answers with an error: its HTTP status and one line for the user."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _UploadRequest(Request):
    """A request whose uploaded files go into `upload_folder`, a folder of the app's own."""

    # One file is expected; werkzeug's max_form_memory_size (500 kB) bounds the
    # parser's buffer and each other field, and must exceed its 64 KiB reads.
    max_form_parts = 16
    upload_folder = None

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.upload_folder is None:
            raise exceptions.BadRequest("this address takes no upload")
        handle, path = tempfile.mkstemp(dir=self.upload_folder, prefix="part-")
        os.close(handle)
        return open(path, "w+b")  # noqa: SIM115  (werkzeug closes it with the request)


def host_name(host):
    """The name of a Host header without its port, lower case; an IPv6 address keeps its brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def display_name(filename):
    """The last component of an uploaded file's name, printable and short: shown, never used as a path."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable()).strip()
    return name[:120] or "upload"


def _json(payload, status=200):
    return Response(json.dumps(payload), status, mimetype="application/json")


def _error(status, message):
    return _json({"error": message}, status)


class ServeApp:
    """The WSGI application. Its temporary folder, `work_dir`, is removed by `close`.

    Args:
      detector: a `jobs.Detector`.
      max_upload_bytes: the largest request body accepted.
      loopback_only: answer only requests addressed to a loopback name.
    """

    def __init__(self, detector, max_upload_bytes, loopback_only=True):
        self.detector = detector
        self.max_upload_bytes = max_upload_bytes
        self.work_dir = tempfile.mkdtemp(prefix="unet-industrial-serve-")
        self.jobs = jobs.JobQueue(detector)
        self._uploads = threading.BoundedSemaphore(MAX_UPLOADS_AT_ONCE)
        self._loopback_only = loopback_only
        self._request_class = type("Request", (_UploadRequest,), {"max_content_length": max_upload_bytes})
        folder = resources.files(__package__) / "assets"
        self._assets = {name: ((folder / name).read_bytes(), mimetype) for name, mimetype in ASSETS.items()}

    def close(self):
        """Stops taking jobs and removes every upload and overlay."""
        self.jobs.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __call__(self, environ, start_response):
        request = self._request_class(environ)
        try:
            response = self._dispatch(request)
        except Refused as refusal:
            response = _error(refusal.status, str(refusal))
        except exceptions.HTTPException as error:
            response = _error(error.code, self._explain(request, error))
        except Exception:  # noqa: BLE001  (the page gets one line; the log the traceback)
            logging.exception("serving %s %s failed", request.method, request.path)
            response = _error(500, "the server failed on this request; its log says why")
        finally:
            request.close()
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def _explain(self, request, error):
        """One line for the user about an HTTP error werkzeug raised."""
        if isinstance(error, exceptions.RequestEntityTooLarge):
            if (request.content_length or 0) > self.max_upload_bytes or request.content_length is None:
                return f"the upload is larger than this server's limit of {self.max_upload_bytes // MB} MB"
            return "the form has too many or too large fields; send one file in the field 'video'"
        if isinstance(error, exceptions.ClientDisconnected):
            return "the upload was cut off before it was complete"
        if isinstance(error, exceptions.NotFound):
            return f"no such address: {request.path}"
        if isinstance(error, exceptions.MethodNotAllowed):
            return f"{request.method} is not allowed on {request.path}"
        return error.name

    def _dispatch(self, request):
        if self._loopback_only and host_name(request.headers.get("Host", "")) not in LOOPBACK_NAMES:
            raise Refused(400, "this server answers requests to localhost only")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin and urllib.parse.urlsplit(origin).netloc != request.host:
                raise Refused(403, "a page of another site cannot send videos here")
        endpoint, arguments = ROUTES.bind_to_environ(request.environ).match()
        return getattr(self, f"_{endpoint}")(request, **arguments)

    def _session(self, request):
        """The request's session token, or None."""
        token = request.cookies.get(SESSION_COOKIE, "")
        return token if SESSION_TOKEN.fullmatch(token) else None

    def _set_session(self, response, token):
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")

    def _page(self, request):
        body, mimetype = self._assets[PAGE]
        response = Response(body, mimetype=mimetype)
        if self._session(request) is None:
            self._set_session(response, secrets.token_urlsafe(32))
        return response

    def _asset(self, request, name):
        if name == PAGE or name not in self._assets:
            raise exceptions.NotFound()
        body, mimetype = self._assets[name]
        return Response(body, mimetype=mimetype)

    def _config(self, request):
        return _json({"max_upload_bytes": self.max_upload_bytes,
                      "frames_per_video": self.detector.frames_per_video,
                      "run": os.path.basename(os.path.normpath(self.detector.run_dir)),
                      "calibration": dataclasses.asdict(self.detector.calibration)})

    def _receive(self, request):
        """The request's one uploaded video, checked: (display name, its folder, its path).

        The folder is the upload's own, inside work_dir; on any refusal it is
        removed before the error goes back.

        Raises:
          Refused: too many uploads at once, no file, several files, an empty
            file, a file that is no video.
          werkzeug.exceptions.HTTPException: a body past the limit, a client gone mid-upload.
        """
        if not self._uploads.acquire(blocking=False):
            raise Refused(503, f"{MAX_UPLOADS_AT_ONCE} uploads are under way already; try again shortly")
        folder = tempfile.mkdtemp(dir=self.work_dir, prefix="upload-")
        try:
            request.upload_folder = folder
            uploads = list(request.files.items(multi=True))
            if not uploads:
                raise Refused(400, f"no video in the request: send one file in the field '{UPLOAD_FIELD}'")
            if len(uploads) > 1:
                raise Refused(400, f"one video per request, not {len(uploads)} files; send each on its own")
            (_, upload), = uploads
            name = display_name(upload.filename)
            path = upload.stream.name
            upload.close()
            if os.path.getsize(path) == 0:
                raise Refused(400, f"{name} is empty")
            try:
                video.probe(path)
            except video.VideoError as error:
                reason = jobs.UNREADABLE.get(error.reason, f"cannot be read ({error.reason})")
                raise Refused(415, f"{name} {reason}") from error
            return name, folder, path
        except BaseException:
            request.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            self._uploads.release()

    def _queue(self, request, owner, overlay):
        """Receives the upload and queues it; returns its Job."""
        name, folder, path = self._receive(request)
        try:
            return self.jobs.submit(owner, name, folder, path, overlay)
        except jobs.QueueFull as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise Refused(503, str(error)) from error

    def _submit(self, request):
        owner = self._session(request) or secrets.token_urlsafe(32)
        job = self._queue(request, owner, overlay=True)
        response = _json(self._status_of(job), 202)
        if owner != self._session(request):
            self._set_session(response, owner)
        return response

    def _detect(self, request):
        job = self._queue(request, secrets.token_urlsafe(32), overlay=False)
        job.finished.wait()
        view = self.jobs.view(job)
        self.jobs.forget(job)
        if view["state"] != "done":
            raise Refused(422, view["error"])
        return _json(view["report"])

    def _job(self, request, job_id):
        job = self.jobs.get(job_id, self._session(request) or "")
        if job is None:
            raise Refused(404, "no such job: it was never queued here, was removed, or belongs to another "
                               "browser")
        return job

    def _status_of(self, job):
        status = {"id": job.id, "name": job.name, **self.jobs.view(job)}
        if status["state"] == "done":
            base = f"/api/jobs/{job.id}"
            status["download"] = f"{base}/report.json"
            status["overlay"] = f"{base}/overlay.mp4" if job.overlay_path else None
            status["stills"] = [{"url": f"{base}/stills/{rank}.jpg", "index": still.index,
                                 "score": still.score} for rank, still in enumerate(job.stills)]
        return status

    def _status(self, request, job_id):
        return _json(self._status_of(self._job(request, job_id)))

    def _forget(self, request, job_id):
        job = self._job(request, job_id)
        try:
            self.jobs.forget(job)
        except jobs.JobRunning as error:
            raise Refused(409, str(error)) from error
        return _json({"forgotten": job.id})

    def _done(self, request, job_id):
        job = self._job(request, job_id)
        if self.jobs.view(job)["state"] != "done":
            raise Refused(409, f"{job.name} has no result yet")
        return job

    def _overlay(self, request, job_id):
        job = self._done(request, job_id)
        if not job.overlay_path:
            raise Refused(404, f"{job.name} has no overlay")
        return utils.send_file(job.overlay_path, request.environ, mimetype="video/mp4", conditional=True)

    def _still(self, request, job_id, rank):
        job = self._done(request, job_id)
        if rank >= len(job.stills):
            raise Refused(404, f"{job.name} has {len(job.stills)} stills")
        return Response(job.stills[rank].jpeg, mimetype="image/jpeg")

    def _download(self, request, job_id):
        job = self._done(request, job_id)
        response = _json(job.report)
        stem = os.path.splitext(job.name)[0] or "video"
        response.headers.set("Content-Disposition", "attachment", filename=f"{stem}-detect.json")
        return response


def serve(config, announce=print):
    """Loads the run's detector and serves the page until interrupted; then removes every upload.

    Args:
      config: a ServeConfig.
      announce: called with the line that gives the page's address, and with one when it stops.

    Raises:
      ConfigError: for a bad value, a run without a model, an address that cannot be listened on.
      verdicts.CalibrationError: for a run without a usable calibration.
    """
    validate(config)
    detector = jobs.Detector.load(config.run_dir, config.checkpoint)
    app = ServeApp(detector, config.max_upload_mb * MB, loopback_only=is_loopback(config.host))
    try:
        try:
            server = serving.make_server(config.host, config.port, app, threaded=True)
        except OSError as error:
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {error.strerror}") from error
        host = f"[{config.host}]" if ":" in config.host else config.host
        announce(f"serving http://{host}:{server.port}/ with {config.run_dir} "
                 f"(uploads up to {config.max_upload_mb} MB); Ctrl-C stops")
        try:
            server.serve_forever()  # Returns on Ctrl-C: werkzeug's server catches it.
        finally:
            server.server_close()
    finally:
        app.close()
    announce("stopped; every upload is removed")
