"""A headless Chromium for the web page's tests and benchmark: Debian's chromium + chromium-driver driven by
Selenium (``.ci/run`` installs both), with nothing downloaded and nothing reachable but loopback.

- The driver path is given (``Service(CHROMEDRIVER)``), so Selenium Manager never looks for one on the network.
- ``--host-resolver-rules`` fails every host name except the loopback server's: a request for a CDN or a font
  fails in the browser as it would on an air-gapped machine, and shows up in the performance log.
- WebGL runs on SwiftShader (CPU), and the page keeps its drawing buffers, so canvases can be read back.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
OFFLINE_RULES = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def chromium_binary() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def available() -> str | None:
    """None when a browser test can run here, else why not."""
    if chromium_binary() is None or not shutil.which(CHROMEDRIVER):
        return "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


def chrome(width: int = 1280, height: int = 1000):
    """A headless Chromium (Selenium WebDriver) with browser and performance logs on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", f"--window-size={width},{height}",
                f"--host-resolver-rules={OFFLINE_RULES}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (drains the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for(driver, script: str, timeout: float = 30.0, poll: float = 0.02):
    """Poll ``return <script>`` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for: {script}")
        time.sleep(poll)


def canvas_image(driver, element):
    """The pixels of a canvas element as a PIL image (RGBA), read with toDataURL."""
    from PIL import Image

    url = driver.execute_script("return arguments[0].toDataURL('image/png')", element)
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA")
