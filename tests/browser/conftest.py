"""Browser tests of the console: a real headless Chromium (Debian's `chromium`, driven by Selenium through
Debian's `chromedriver`) against the real gateway and every service, real PostgreSQL and RabbitMQ.

Real: the browser, its DOM, the built console (console/dist, `make console`), the HTTP API, the database and
the broker. Nothing is faked. axe-core (the console's own devDependency) is injected into each page checked.
One browser serves the whole session; each test starts with no cookies and no local storage.
"""
import json
import os
import pathlib
import shutil
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.conftest import *  # noqa: F401,F403  (the live tree: api, config, make_account, sql...)

ROOT = pathlib.Path(__file__).resolve().parents[2]
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Flags the machines need: no sandbox as root, and no background calls to Google's services, which this
# closed network refuses (Chromium retries them, many at a time).
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--lang=zh-CN", "--window-size=1366,900"]


@pytest.fixture(scope="session")
def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Console:
    """The console at the test's gateway, seen through one browser."""

    def __init__(self, driver, base):
        self.d = driver
        self.base = base

    # -- moving about -------------------------------------------------------------------------------------
    def open(self, path=""):
        self.d.get(f"{self.base}/console/{path.lstrip('/')}")

    def wait(self, condition, timeout=15, message=""):
        try:
            return WebDriverWait(self.d, timeout).until(condition)
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {message or condition}; the page said: "
                                 f"{self.d.find_element(By.TAG_NAME, 'body').text[:1500]}")

    def find(self, css, timeout=15):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text_appears(self, text, timeout=15):
        self.wait(lambda d: text in d.find_element(By.TAG_NAME, "body").text, timeout, repr(text))

    def text_absent(self, text):
        return text not in self.d.find_element(By.TAG_NAME, "body").text

    def click_text(self, text, css="button", timeout=15):
        """Click the first visible, enabled element of `css` whose text is `text`."""
        def found(d):
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if el.is_displayed() and el.is_enabled() and el.text.strip() == text:
                    return el
            return False
        el = self.wait(found, timeout, f"{css} {text!r}")
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()
        return el

    def type(self, css, value, clear=True):
        el = self.find(css)
        if clear:
            el.clear()
        el.send_keys(value)
        return el

    def field_error(self, input_css):
        """The error Element Plus shows under the form item holding `input_css`."""
        item = self.find(input_css).find_element(By.XPATH, "ancestor::div[contains(@class, 'el-form-item')][1]")
        self.wait(lambda d: item.find_elements(By.CSS_SELECTOR, ".el-form-item__error"), 10, f"error under {input_css}")
        return item.find_element(By.CSS_SELECTOR, ".el-form-item__error").text

    # -- who ------------------------------------------------------------------------------------------------
    def sign_in(self, username, password, landing_css=".shell"):
        self.open("signin")
        self.type("#signin-username", username)
        self.type("#signin-password", password)
        self.click_text(self.d.execute_script("return document.querySelector('form button[type=submit]').innerText")
                        .strip(), "form button[type=submit]")
        if landing_css:
            self.find(landing_css)

    def sign_out(self):
        self.d.delete_all_cookies()
        self.d.execute_script("window.localStorage.clear()")

    def fetch(self, method, path, body=None, headers=None):
        """A request made by the page's own JavaScript (its cookie goes with it; nothing else is added)."""
        return self.d.execute_async_script(
            """const [method, path, body, headers, done] = arguments;
               fetch(path, {method, credentials: 'same-origin', body: body === null ? undefined : JSON.stringify(body),
                            headers: Object.assign({'Content-Type': 'application/json'}, headers || {})})
                 .then(async r => done({status: r.status, body: await r.text()}))
                 .catch(e => done({status: 0, body: String(e)}));""", method, path, body, headers or {})

    # -- checks ---------------------------------------------------------------------------------------------
    def axe(self):
        """axe-core's serious and critical violations on the page as it is now (none is the goal)."""
        if not self.d.execute_script("return typeof window.axe !== 'undefined'"):
            self.d.execute_script(AXE.read_text())
        violations = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
        return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": [n.get("target") for n in v.get("nodes", [])][:5]}
                for v in violations if v["impact"] in ("serious", "critical")]

    def assert_accessible(self, page=""):
        # Once the page is still: a dialog fading in is measured at part opacity (a false low contrast).
        self.wait(lambda d: d.execute_script(
            "return document.getAnimations().every(a => a.playState !== 'running')"), 10, "animations to finish")
        serious = self.axe()
        assert not serious, f"axe-core on {page or self.d.current_url}: " + json.dumps(serious, ensure_ascii=False)

    def settle(self, seconds=0.3):
        """Let Vue finish a render that follows an answer (for screenshots only, never for correctness)."""
        time.sleep(seconds)

    def screenshot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))


@pytest.fixture
def console_build(config):
    """The gateway serves console/dist, or LINLI_TEST_CONSOLE_DIR (a private build, while pages are written)."""
    built = os.environ.get("LINLI_TEST_CONSOLE_DIR")
    if built:
        config["CONSOLE_DIR"] = built
    return pathlib.Path(config.get("CONSOLE_DIR") or ROOT / "console" / "dist")


@pytest.fixture
def console(console_build, chromium, api, web_config_port):
    """The console at this test's live gateway, in a browser with no cookies or storage left from before."""
    assert (console_build / "index.html").is_file(), "the console is not built: run `make console`"
    c = Console(chromium, f"http://127.0.0.1:{web_config_port}")
    c.open("signin")
    c.sign_out()
    # The page's own viewport, not the window's outer size (which the browser's frame would eat into).
    chromium.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                             {"width": 1366, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    yield c
    c.sign_out()
