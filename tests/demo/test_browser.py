"""The web demo in a real browser: headless Chromium (Selenium) drives the page of demo/app.py.

Needs Gradio and Selenium (requirements-demo.txt), Debian's `chromium` and `chromium-driver`, and MediaPipe;
the tests skip without them, except where UNI_SIGN_REQUIRE_BROWSER=1 (CI installs them) makes that a failure.
UNI_SIGN_DEMO_SCREENSHOT=FILE also saves the page with its result there, and UNI_SIGN_DEMO_MODEL=DIR serves that
saved model instead of the tiny test model (docs/demo.png was made this way, see docs/demo.md).
"""
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from demo.service import DemoLimits, DemoService
from inference import SignTranslator
from inference import main as inference_main
from tests.demo.demo_cases import bad_uploads, demo_checkpoint, rendered_clip  # noqa: F401 (fixtures)
from tests.utils.pictures import require_mediapipe

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
WAIT_SECONDS = 120  # every wait is bounded: a page that never answers fails the test


def require(condition, reason):
    if condition:
        return
    if os.environ.get("UNI_SIGN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (UNI_SIGN_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def browser_available():
    for module in ("gradio", "selenium"):
        try:
            __import__(module)
        except ImportError:
            require(False, f"{module} is not installed (pip install -r requirements-demo.txt)")
    require(all(Path(path).is_file() for path in CHROMIUM), "Debian's chromium and chromium-driver are not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def model_files(demo_checkpoint, tiny_lm_dir):
    """(--finetune, --lm-path) of the model served: the tiny SLT model, or the directory UNI_SIGN_DEMO_MODEL."""
    chosen = os.environ.get("UNI_SIGN_DEMO_MODEL")
    return (chosen, None) if chosen else (demo_checkpoint, tiny_lm_dir)


@pytest.fixture
def page(model_files, tmp_path):
    """(driver, url) of the demo serving the model on a free loopback port; shut down afterwards."""
    browser_available()
    require_mediapipe()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from demo.app import build_app

    translator = SignTranslator.from_checkpoint(*model_files, device="cpu")
    app = build_app(DemoService(translator, DemoLimits(max_seconds=3.0, max_frames=75), tmp_path / "work"))
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1250"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMIUM[1]), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver, f"http://127.0.0.1:{port}/"
    finally:
        driver.quit()
        app.close()
        translator.close()


def wait_for(predicate, what, seconds=WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def text_of(driver, element_id) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"#{element_id}")
    return found[0].text.strip() if found else ""


def translate_in_page(driver, url, video=None) -> str:
    """Open the page, upload `video` (if any), press Translate; the status line once it is final."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    button = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#translate"), "the Translate button")[0]
    if video is not None:
        upload = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#video_input input[type=file]"),
                          "the video upload field")[0]
        upload.send_keys(str(video))
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#video_input video"), "the uploaded video's preview")
    button.click()
    return wait_for(lambda: next((line for line in [text_of(driver, "status")] if line.startswith(("Done", "Error"))),
                                 None), "the result")


def test_a_rendered_clip_translates_in_the_browser_as_inference_py_does(page, rendered_clip, model_files, tmp_path,
                                                                       capsys):
    from selenium.webdriver.common.by import By

    driver, url = page
    status = translate_in_page(driver, url, rendered_clip)
    assert status.startswith("Done"), status
    shown = driver.find_element(By.CSS_SELECTOR, "#output_text textarea").get_attribute("value")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#skeleton video"), "the skeleton video")
    screenshot = tmp_path / "demo.png"
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    if os.environ.get("UNI_SIGN_DEMO_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["UNI_SIGN_DEMO_SCREENSHOT"])
    capsys.readouterr()
    finetune, lm_path = model_files
    argv = ["--video", str(rendered_clip), "--finetune", str(finetune), "--json"]
    assert inference_main(argv + (["--lm-path", str(lm_path)] if lm_path else [])) == 0
    assert shown == json.loads(capsys.readouterr().out.strip().splitlines()[-1])["text"]


def test_bad_uploads_show_a_message_and_the_server_keeps_serving(page, bad_uploads, rendered_clip):
    driver, url = page
    assert translate_in_page(driver, url) == "Error: nothing to translate: upload or record a video, or upload a " \
                                             "pose file"
    expected = {"not a video": "notes.mp4: not a readable video", "no person": "no_person.mp4: no person found",
                "too long": "long.mp4: the clip lasts 5 s"}
    for what, message in expected.items():
        status = translate_in_page(driver, url, bad_uploads[what])
        assert status.startswith("Error: ") and message in status, (what, status)
    assert translate_in_page(driver, url, rendered_clip).startswith("Done")  # still serving
