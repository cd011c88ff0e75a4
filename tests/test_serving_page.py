"""The server's page (GET /), its OpenAPI document (GET /openapi.json) and docs (GET /docs):
plain HTTP checks, a check that the document names exactly the app's routes, and a real
headless Chromium (Debian's, driven by Selenium through /usr/bin/chromedriver) that types
texts and pairs, submits, and reads the labels and every label's probability off the page,
compared with in-process predict_proba.

The browser reaches only 127.0.0.1: every other host goes to a proxy that does not exist, and
the pages' Content-Security-Policy allows their own origin only. Screenshots are kept in
$UNIFIED_NLP_TEST_ARTEFACTS (default: a pytest tmp folder, printed with -s). Without Chromium
the browser tests skip, or fail where $UNIFIED_NLP_REQUIRE_BACKENDS lists "browser"
(`bash tools/ensure_chromium.sh` installs it).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REQUIRED, default_classifier, require, require_module
from tests.serving_helpers import Running, call

require_module("uvicorn")
require_module("starlette")
require_module("prometheus_client")

from starlette.routing import Mount, Route  # noqa: E402

from unified_nlp.serving import create_app, page  # noqa: E402 - after the checks that skip without the extra

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WAIT = 20  # seconds: the bound of every wait on the browser
TOL = 1e-5
KEY = "page-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
STORE = "unified-nlp-api-key"  # the page's sessionStorage entry
TEXTS = ["This is a great movie!", "A dull, lifeless film that drags on.", "é ü — 映画 <b>not bold</b>"]
PAIRS = ["What a film.", "I loved it.", "Nothing to say."]


@pytest.fixture(scope="module")
def hf():
    return default_classifier("huggingface")


@pytest.fixture(scope="module")
def server(hf):
    """One server for the module, with an API key: the page and the docs must open without it, the
    page asks for it (one server, not one with a key and one without: each start warms the model).
    The model has a shadow candidate (the same model on onnxruntime) on every request."""
    require("onnxruntime")
    app = create_app(
        hf, name="default", max_client_batch_size=8, api_key=KEY, shadows=["default@onnxruntime"], shadow_fraction=1.0
    )
    with Running(app) as running:
        deadline = time.monotonic() + 120
        while not json.loads(call(running.url, "/v2/models/default/shadow", headers=AUTH)[2]).get("candidate_ready"):
            assert time.monotonic() < deadline, "the shadow candidate did not load"
            time.sleep(0.2)
        yield running


# --- the document and the routes, over plain HTTP -----------------------------------------------


def api_routes(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path template) of every API route: what the OpenAPI document must name."""
    found = set()
    for route in routes:
        if isinstance(route, Route):
            if route.include_in_schema:
                found |= {(m.lower(), prefix + route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, Mount):
            if prefix + route.path == page.STATIC:
                continue  # the pages' assets
            assert route.routes, f"a mount at {route.path} that the test cannot list: describe it in openapi.json"
            found |= api_routes(route.routes, prefix + route.path)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def test_openapi_names_every_route_and_no_other(hf):
    app = create_app(hf, name="default", api_key=KEY, model_control=True)
    doc = page.openapi()
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    routes = api_routes(app.router.routes)
    assert routes - documented == set(), "routes missing from unified_nlp/serving/page/openapi.json"
    assert documented - routes == set(), "openapi.json documents routes the app does not have"
    assert doc["openapi"].startswith("3.0.")  # Swagger UI 4 (swagger-ui-bundle) reads 3.0
    text = json.dumps(doc)
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in doc["components"]["schemas"], f"unresolved $ref {name}"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path}: path parameters"
            assert op["responses"], f"{method} {path}: no responses"


def test_pages_and_assets_are_served_offline(server):
    assert call(server.url, "/v2/repository/index", {})[0] == 401  # the API wants the key; the pages do not
    status, headers, body = call(server.url, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    assert json.loads(call(server.url, "/openapi.json")[2]) == page.openapi()
    for name in ("index.html", "docs.html"):
        html = (page.FILES / name).read_text(encoding="utf-8")
        refs = [r for r in re.findall(r'(?:src|href)="([^"#]+)"', html) if not r.startswith("data:")]
        assert refs and not [r for r in refs if "//" in r], f"{name} must reference only its own server"
        for ref in refs:
            assert call(server.url, "/" + ref.removeprefix("./"))[0] == 200, f"{name}: {ref}"
    for name in ("page.js", "page.css", "docs.js"):
        text = (page.FILES / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{name} names another host"
    assert call(server.url, "/static/../app.py")[0] == 404


# --- a real browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium through Selenium; never Selenium Manager (it would download)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing or not _importable("selenium"):
        reason = f"no browser here ({', '.join(missing) or 'selenium not installed'}): bash tools/ensure_chromium.sh"
        if "browser" in REQUIRED:
            pytest.fail(f"the browser is required here: {reason}", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
        "--disable-extensions", "--window-size=1100,1300", f"--user-data-dir={profile}",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>;127.0.0.1",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    def no_download(*args, **kwargs):
        raise AssertionError("Selenium Manager was called: it would download a driver or a browser")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", no_download)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    given = os.environ.get("UNIFIED_NLP_TEST_ARTEFACTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def wait(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message)


def by_id(driver, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, name)


def open_page(driver, url: str, key: str | None = KEY) -> None:
    """Open the page, with `key` already in the tab's sessionStorage (as after the key form)."""
    driver.get(url + "/static/page.css")  # same origin, without the page's script
    driver.execute_script(
        "sessionStorage.clear(); if (arguments[0]) sessionStorage.setItem(arguments[1], arguments[0])", key, STORE
    )
    driver.get_log("browser")  # each page starts with an empty console
    driver.get(url + "/")
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete", "page not loaded")


def ready_model(driver) -> str:
    """Wait until the model list is filled and the selected model's labels are known."""
    wait(driver, lambda d: by_id(d, "model-info").text, "the model list did not load")
    return by_id(driver, "model").get_attribute("value")


def classify(driver, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
    """Type, submit, and read each result: its label and every label's full probability, in page order."""
    from selenium.webdriver.common.by import By

    for box, lines in (("texts", texts), ("pairs", pairs or [])):
        field = by_id(driver, box)
        field.clear()
        field.send_keys("\n".join(lines))
    form = by_id(driver, "classify-form")
    before = form.get_attribute("data-submits")
    by_id(driver, "submit").click()
    wait(driver, lambda d: form.get_attribute("data-submits") != before, "the page did not answer")
    results = []
    for card in driver.find_elements(By.CSS_SELECTOR, "#results .result"):
        rows = card.find_elements(By.CSS_SELECTOR, ".score")
        results.append(
            {
                "text": card.find_element(By.CSS_SELECTOR, ".text").text,
                "label": card.find_element(By.CSS_SELECTOR, ".best").get_attribute("data-label"),
                "scores": [(r.get_attribute("data-label"), float(r.get_attribute("data-probability"))) for r in rows],
                "shown": [float(r.find_element(By.CSS_SELECTOR, ".value").text.rstrip("%")) for r in rows],
            }
        )
    return results


def check(results: list[dict], probs: np.ndarray, labels, texts: list[str]) -> None:
    assert [r["text"] for r in results] == texts  # as text: markup in a text is not rendered
    for result, row in zip(results, probs, strict=True):
        assert result["label"] == labels[int(np.argmax(row))]
        names = [name for name, _ in result["scores"]]
        values = [p for _, p in result["scores"]]
        assert sorted(names) == sorted(labels) and values == sorted(values, reverse=True)  # best first
        for name, p in result["scores"]:
            assert abs(p - row[labels.index(name)]) < TOL, (name, p, row)
        assert np.allclose(result["shown"], np.round(100 * np.asarray(values), 1), atol=0.051)


def console_errors(driver) -> list[str]:
    """The console's errors, but a 404 of the shadow report (a model without a shadow candidate)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not re.search(r"/shadow - Failed to load resource: .* 404", entry["message"])
    ]


def test_the_page_classifies_texts_and_pairs(browser, server, hf, artefacts):
    open_page(browser, server.url)
    assert ready_model(browser) == "default"
    labels = list(hf.labels)
    results = classify(browser, TEXTS)
    check(results, hf.predict_proba(TEXTS), labels, TEXTS)
    assert re.fullmatch(r"3 texts in \d+ ms", by_id(browser, "status").text)
    browser.save_screenshot(str(artefacts / "page-texts.png"))

    results = classify(browser, TEXTS, PAIRS)
    check(results, hf.predict_proba(TEXTS, text_pair=PAIRS), labels, TEXTS)
    # the live shadow report, as the page shows it after a classification: at least the first
    # request compared (the second's may still be under way), and the candidate agrees
    fields = by_id(browser, "shadow").find_elements("css selector", "dd")
    shown = {dd.get_attribute("data-field"): json.loads(dd.get_attribute("data-value")) for dd in fields}
    assert shown["backends"] == ["huggingface:fp32", "onnxruntime:fp32"], shown
    assert shown["n_texts"] >= len(TEXTS) and shown["argmax_agreement"] == 1.0, shown
    assert shown["logits_max_abs_diff"] < 1e-4 and shown["passed"] is True, shown
    browser.save_screenshot(str(artefacts / "page-pairs.png"))
    assert console_errors(browser) == []


def test_the_page_shows_the_servers_errors(browser, server):
    open_page(browser, server.url)
    ready_model(browser)
    classify(browser, ["one"] * 9)  # over the server's 8 texts per request: its 400, shown as it says
    error = by_id(browser, "error")
    assert error.is_displayed() and error.text.startswith("400: ") and "8" in error.text
    classify(browser, ["one", "two"], ["only one"])  # refused before any request
    assert "2 texts but 1 pair texts" in error.text


def test_the_page_asks_for_the_api_key(browser, server, hf, artefacts):
    open_page(browser, server.url, key=None)
    wait(browser, lambda d: by_id(d, "key-form").is_displayed(), "no API key form after a 401")
    assert not by_id(browser, "classify-form").is_displayed()
    browser.save_screenshot(str(artefacts / "page-key.png"))
    for key in ("wrong", KEY):
        by_id(browser, "api-key").send_keys(key)
        by_id(browser, "key-form").find_element("css selector", "button").click()
        if key == "wrong":
            wait(browser, lambda d: "refused" in by_id(d, "error").text, "a wrong key not said")
    assert ready_model(browser) == "default"
    results = classify(browser, TEXTS[:1])
    check(results, hf.predict_proba(TEXTS[:1]), list(hf.labels), TEXTS[:1])
    stored = browser.execute_script("return [sessionStorage.getItem(arguments[0]), localStorage.length]", STORE)
    assert stored == [KEY, 0]  # in the tab's session only


def test_the_docs_render_offline(browser, server, artefacts):
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # what the pages before left
    browser.get(server.url + "/docs")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10, "Swagger UI did not render")
    paths = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/v2/models/{name}/infer", "/v2/repository/index", "/predict"} <= paths
    browser.save_screenshot(str(artefacts / "docs.png"))
    assert console_errors(browser) == []
