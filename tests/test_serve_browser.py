"""The serve page in a real browser: headless Chromium picks a real FF++ fake and the page shows the verdict.

Needs Chromium and its driver from the Debian packages `chromium` and
`chromium-driver` (.ci/run installs them), selenium (requirements-dev.txt)
and the shared real videos; skipped, saying which is missing, without them.
"""

import os
import re
import shutil
import threading

import pytest

from conftest import REALDATA_DIR, realdata_absent
from test_export import make_calibration, write_run

FFPP_FAKE = os.path.join(REALDATA_DIR, "ffpp", "manipulated_sequences", "Deepfakes", "c23", "videos",
                         "519_515.mp4")
FRAMES = 8
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Headless, in a container without a sandbox or GPU, and quiet: no network of its own.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000")
# TensorFlow's first calls, MTCNN and the model on 8 frames, on a busy machine; usually much less.
DEADLINE_S = 240
VERDICT = re.compile(r"^(?P<verdict>Fake|Real): score (?P<score>\d\.\d{3}) (?P<relation>≥|<) "
                     r"threshold (?P<threshold>\d\.\d{3})$")


def _missing():
    """Why the test cannot run here, or None."""
    if not os.path.isfile(FFPP_FAKE):
        return realdata_absent(FFPP_FAKE)
    absent = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if absent:
        return (f"{' and '.join(absent)} absent: install the Debian packages chromium and chromium-driver "
                "(.ci/run does)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def page_address(tmp_path_factory):
    """The page of a tiny run (an untrained tinyUNet, 8 frames a video) served on a free port."""
    from werkzeug import serving

    from unet_industrial.serving import app as app_lib, jobs

    run = write_run(tmp_path_factory.mktemp("browser") / "run", make_calibration("mean", frames=FRAMES))
    app = app_lib.ServeApp(jobs.Detector.load(run), 64 * app_lib.MB)
    http = serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.port}/"
    http.shutdown()
    http.server_close()
    app.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    # The driver is named: selenium would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def test_a_picked_ffpp_fake_gets_a_verdict_a_plot_an_overlay_and_stills(page_address, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_address)
    # The page has read the server's settings.
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "about").text.startswith("Detector:"))
    browser.find_element(By.ID, "file").send_keys(FFPP_FAKE)
    card = WebDriverWait(browser, DEADLINE_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".job.finished, .job.failed"))[0]
    assert "failed" not in card.get_attribute("class"), card.find_element(By.CLASS_NAME, "error").text
    assert card.find_element(By.CLASS_NAME, "name").text == "519_515.mp4"

    # The report, as the download link gives it.
    link = card.find_element(By.CLASS_NAME, "download").get_attribute("href")
    report = browser.execute_async_script(
        "fetch(arguments[0]).then((r) => r.json()).then(arguments[arguments.length - 1])", link)
    (record,) = report["videos"]
    assert record["path"] == "519_515.mp4" and len(record["frames"]) == FRAMES
    assert record["frames_with_face"] > 0

    verdict = VERDICT.match(card.find_element(By.CLASS_NAME, "verdict").text)
    assert verdict, card.find_element(By.CLASS_NAME, "verdict").text
    assert verdict["verdict"].lower() == record["verdict"]
    assert verdict["relation"] == ("≥" if record["verdict"] == "fake" else "<")
    assert float(verdict["score"]) == pytest.approx(record["score"], abs=5e-4)
    assert float(verdict["threshold"]) == pytest.approx(record["threshold"], abs=5e-4)

    # The plot: a point per frame with a face, and the line the verdict is drawn against.
    plot = card.find_element(By.CSS_SELECTOR, ".plot svg")
    assert len(plot.find_elements(By.CSS_SELECTOR, "circle.point")) == record["frames_with_face"]
    assert len(plot.find_elements(By.CSS_SELECTOR, "line.threshold:not(.legend)")) == 1
    assert plot.size["width"] > 300

    # The overlay video: served, decoded and playing in the browser.
    overlay = card.find_element(By.CSS_SELECTOR, "video.overlay")
    assert overlay.get_attribute("src").endswith("/overlay.mp4")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return arguments[0].readyState >= 2 && arguments[0].videoWidth > 0", overlay))

    stills = card.find_elements(By.CSS_SELECTOR, ".stills img")
    assert len(stills) == min(4, record["frames_with_face"])
    WebDriverWait(browser, 30).until(lambda d: all(d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", still) for still in stills))

    # The whole page in one picture.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, height + 100)
    screenshot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
