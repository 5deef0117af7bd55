"""The serve page's server without a browser: its API, and hostile requests that must leave no file behind."""

import io
import os
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from werkzeug import serving
from werkzeug.test import Client

from conftest import run_module, write_video
from test_export import make_calibration, write_run
from unet_industrial import detection
from unet_industrial.serving import app as app_lib, jobs

FRAMES = 2
LIMIT = 1024 * 1024
# Long enough for TensorFlow's first calls on a busy machine; a wait that ends early is the usual case.
DEADLINE_S = 180


def _hopper_frames(count=4, width=320):
    """Frames of matplotlib's Grace Hopper photograph, shifted a little each: a video with a face."""
    import matplotlib.cbook

    photo = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    photo = cv2.resize(photo, (width, width * photo.shape[0] // photo.shape[1]))
    photo = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    return [np.roll(photo, 2 * i, axis=1) for i in range(count)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Bytes of a video with a face and of one of noise, and the face video's path."""
    root = tmp_path_factory.mktemp("videos")
    face = write_video(root / "hopper.mp4", _hopper_frames())
    rng = np.random.default_rng(0)
    noise = write_video(root / "noise.mp4",
                        [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(4)])
    with open(face, "rb") as f, open(noise, "rb") as g:
        return {"face": f.read(), "noise": g.read(), "face_path": face}


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("serve") / "run", make_calibration("mean", frames=FRAMES))
    return jobs.Detector.load(run)


@pytest.fixture(scope="module")
def app(detector):
    served = app_lib.ServeApp(detector, LIMIT)
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(app):
    """The app behind a real HTTP server on a free port of 127.0.0.1: its port."""
    http = serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield http.port
    http.shutdown()
    http.server_close()


def _upload(client, content, name="clip.mp4", path="/api/jobs"):
    return client.post(path, data={"video": (io.BytesIO(content), name)})


def _wait(condition, what):
    """Polls `condition` until it holds; fails after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def _finished(client, job_id):
    """The job's status once it is done or failed."""
    deadline = time.monotonic() + DEADLINE_S
    while (status := client.get(f"/api/jobs/{job_id}").json)["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, f"job {job_id} is still {status['state']}"
        time.sleep(0.05)
    return status


def _files(folder):
    """Every file and folder under `folder`, relative to it."""
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, folders, names in os.walk(folder) for name in folders + names)


def _assert_nothing_left(app):
    """Nothing remains in the app's temporary folder (a request thread may still be cleaning up)."""
    _wait(lambda: not _files(app.work_dir), "the temporary folder to empty")
    assert _files(app.work_dir) == []


def test_the_page_and_its_assets_come_from_the_package(app):
    client = Client(app)
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<script src="/assets/app.js" defer></script>' in page.text
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script, style = client.get("/assets/app.js"), client.get("/assets/style.css")
    assert (script.status_code, script.mimetype, style.mimetype) == (200, "text/javascript", "text/css")
    # Nothing is loaded from elsewhere: the only address in the page's files is SVG's namespace.
    for text in (page.text, script.text, style.text):
        assert "https://" not in text
        assert text.replace("http://www.w3.org/2000/svg", "").count("http://") == 0
    assert client.get("/assets/../serve.py").status_code == 404
    assert client.get("/assets/index.html").status_code == 404
    assert client.get("/api/config").json["frames_per_video"] == FRAMES


def test_a_video_goes_through_the_queue_to_a_verdict_an_overlay_and_stills(app, detector, videos):
    client = Client(app)
    client.get("/")
    accepted = _upload(client, videos["face"], "hopper.mp4")
    assert accepted.status_code == 202 and accepted.json["name"] == "hopper.mp4"
    status = _finished(client, accepted.json["id"])
    assert status["state"] == "done", status
    (record,) = status["report"]["videos"]
    assert record["path"] == "hopper.mp4" and record["frames_with_face"] == FRAMES
    assert record["verdict"] == ("fake" if record["score"] >= record["threshold"] else "real")
    assert status["report"]["frames_per_video"] == FRAMES
    overlay = client.get(status["overlay"])
    assert overlay.status_code == 200 and overlay.mimetype == "video/mp4" and overlay.data[4:8] == b"ftyp"
    scores = sorted((frame["score"] for frame in record["frames"]), reverse=True)
    assert [still["score"] for still in status["stills"]] == scores
    still = client.get(status["stills"][0]["url"])
    assert still.mimetype == "image/jpeg" and cv2.imdecode(np.frombuffer(still.data, np.uint8), 1) is not None
    download = client.get(status["download"])
    assert download.headers["Content-Disposition"] == "attachment; filename=hopper-detect.json"
    assert download.json == status["report"]
    assert client.delete(f"/api/jobs/{status['id']}").json == {"forgotten": status["id"]}
    assert client.get(f"/api/jobs/{status['id']}").status_code == 404
    _assert_nothing_left(app)


def test_api_detect_answers_with_the_json_detect_writes(app, detector, videos):
    answer = _upload(Client(app), videos["face"], "hopper.mp4", path="/api/detect")
    assert answer.status_code == 200
    report = answer.json
    assert sorted(report) == ["calibration", "checkpoint", "checkpoint_step", "frames_per_video", "run_dir",
                              "videos"]
    expected, _ = detection.detect_video(videos["face_path"], detector.model, detector.calibration)
    (record,) = report["videos"]
    assert record["path"] == "hopper.mp4" and record["frames_with_face"] == FRAMES
    # Everything but the path the server gave the upload and the seconds each stage took.
    expected = {**detector.report(expected)["videos"][0], "path": "hopper.mp4", "seconds": record["seconds"]}
    assert record == expected
    assert report["checkpoint"] == os.path.join("checkpoints", "last.keras")
    _assert_nothing_left(app)


# The six hostile requests of the issue; each gets one line and leaves nothing behind.


def test_hostile_1_an_oversize_upload_is_refused_before_it_is_stored(app):
    refused = _upload(Client(app), b"\0" * (LIMIT + 1))
    assert refused.status_code == 413
    assert refused.json == {"error": "the upload is larger than this server's limit of 1 MB"}
    _assert_nothing_left(app)


def test_hostile_2_a_file_that_is_no_video_is_refused(app):
    refused = _upload(Client(app), np.random.default_rng(1).bytes(5000), "notes.mp4")
    assert refused.status_code == 415
    assert refused.json == {"error": "notes.mp4 is not a video that can be decoded"}
    _assert_nothing_left(app)


def test_hostile_3_an_empty_file_is_refused(app):
    refused = _upload(Client(app), b"", "empty.mp4")
    assert (refused.status_code, refused.json) == (400, {"error": "empty.mp4 is empty"})
    _assert_nothing_left(app)


def test_hostile_4_a_path_like_file_name_is_a_name_only(app, videos):
    client = Client(app)
    accepted = _upload(client, videos["noise"], "../../etc/passwd.mp4")
    assert accepted.status_code == 202 and accepted.json["name"] == "passwd.mp4"
    # Where the name would lead from an upload's folder inside the temporary folder.
    assert not os.path.exists(os.path.join(os.path.dirname(app.work_dir), "etc", "passwd.mp4"))
    status = _finished(client, accepted.json["id"])
    assert status["state"] == "done"
    assert status["report"]["videos"][0]["path"] == "passwd.mp4"
    assert status["report"]["videos"][0]["reason"] == detection.NO_FACE
    # The job's folder holds the overlay alone, under the server's own names.
    folder, overlay = _files(app.work_dir)
    assert overlay == os.path.join(folder, jobs.OVERLAY) and "passwd" not in folder
    client.delete(f"/api/jobs/{status['id']}")
    _assert_nothing_left(app)


def test_hostile_5_two_uploads_at_once(app, videos):
    # Two files in one request: refused as a whole.
    client = Client(app)
    refused = client.post("/api/jobs", data={"video": [(io.BytesIO(videos["noise"]), "a.mp4"),
                                                       (io.BytesIO(videos["noise"]), "b.mp4")]})
    assert (refused.status_code, refused.json) == (400, {"error": "one video per request, not 2 files; send "
                                                                  "each on its own"})
    _assert_nothing_left(app)
    # Two browsers uploading at the same moment: both are queued, and neither sees the other's job.
    browsers = [Client(app), Client(app)]
    accepted = [None, None]

    def send(i):
        browsers[i].get("/")
        accepted[i] = _upload(browsers[i], videos["noise"], f"browser{i}.mp4")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in accepted] == [202, 202]
    ids = [answer.json["id"] for answer in accepted]
    assert ids[0] != ids[1]
    for i, other in ((0, 1), (1, 0)):
        assert browsers[i].get(f"/api/jobs/{ids[other]}").status_code == 404
        assert browsers[i].delete(f"/api/jobs/{ids[other]}").status_code == 404
        status = _finished(browsers[i], ids[i])
        assert status["state"] == "done" and status["report"]["videos"][0]["path"] == f"browser{i}.mp4"
        browsers[i].delete(f"/api/jobs/{ids[i]}")
    _assert_nothing_left(app)


def _partial_upload(port, sent=200_000, declared=400_000):
    """A socket that has sent the headers and `sent` bytes of a multipart upload of `declared` bytes.

    More than werkzeug's 64 KiB reads: the server has begun to write the file.
    """
    head = (b'--cut\r\nContent-Disposition: form-data; name="video"; filename="cut.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n")
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                       f"Content-Type: multipart/form-data; boundary=cut\r\n"
                       f"Content-Length: {declared}\r\n\r\n".encode() + head + b"\0" * sent)
    return connection


def test_hostile_6_a_client_that_closes_mid_upload(app, server):
    # It stops sending but still listens: it is told why.
    connection = _partial_upload(server)
    _wait(lambda: len(_files(app.work_dir)) == 2, "the upload's part to reach the disk")
    connection.shutdown(socket.SHUT_WR)
    answer = connection.makefile("rb").read().decode()
    connection.close()
    assert answer.startswith("HTTP/1.1 400") and answer.endswith(
        '{"error": "the upload was cut off before it was complete"}')
    _assert_nothing_left(app)
    # It hangs up: nobody is left to tell; the part is removed all the same, and the server goes on.
    connection = _partial_upload(server)
    _wait(lambda: len(_files(app.work_dir)) == 2, "the upload's part to reach the disk")
    connection.close()
    _assert_nothing_left(app)
    assert Client(app).get("/api/config").status_code == 200


def test_requests_from_elsewhere_are_refused(app):
    client = Client(app)
    rebound = client.get("/", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400
    assert rebound.json == {"error": "this server answers requests to localhost only"}
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    cross_site = client.post("/api/detect", headers={"Origin": "http://attacker.example"})
    assert (cross_site.status_code, cross_site.json["error"]) == (403, "a page of another site cannot send "
                                                                       "videos here")


def test_stopping_removes_every_upload(detector, videos):
    app = app_lib.ServeApp(detector, LIMIT)
    client = Client(app)
    accepted = _upload(client, videos["noise"])
    assert accepted.status_code == 202
    _finished(client, accepted.json["id"])
    assert os.listdir(app.work_dir)
    app.close()
    assert not os.path.exists(app.work_dir)


def test_a_run_that_is_not_there_gets_one_line(tmp_path):
    result = run_module("unet_industrial.serve", f"--run_dir={tmp_path / 'missing'}", timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"error: --run_dir='{tmp_path / 'missing'}' is not a folder\n"
