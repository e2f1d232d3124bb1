"""The web console (/console) in headless Chromium, driven by Selenium, against a server of its own.

The browser signs every call itself (TC3 with WebCrypto, or the console's own SHA-256 where the page is not a
secure context); the first test checks both against the Python SDK's signer byte for byte. The walk-through
then does what a user does: sign in, create a group, enrol a person from an uploaded photo, search with another
photo of that person, find the search in the search log and in the overview's counts, compare two photos,
switch to Chinese, look at a phone-sized screen, and sign in with a wrong key. A second walk-through makes
every write of the groups and persons pages through its dialog and checks the result with the SDK. Screenshots
of every page (1280x800, and 390x844 for the phone) go to tests/py/output/console/; on a failure the page and
the browser's console log are kept there as failure-*.png/.log.

Needs Debian's chromium and chromium-driver (tests/setup_clients.sh installs them) and selenium (pinned in
tests/requirements.txt); chromedriver is /usr/bin/chromedriver, never downloaded."""

import base64
import contextlib
import hashlib
import io
import json
import os
import pathlib
import re
import time

import pytest
import requests
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from tencentcloud.common.sign import Sign
from tencentcloud.iai.v20180301 import models

from conftest import ROOT, SECRET_ID, SECRET_KEY, SHARED, common_client, make_client, running_server

CONSOLE_DIR = ROOT / "console"
OUTPUT = pathlib.Path(__file__).resolve().parent / "output" / "console"
CHROMIUM = os.environ.get("IAI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("IAI_CHROMEDRIVER", "/usr/bin/chromedriver")

# Two photos of one person and a photo of another (colour photos of ../shared/faces/calibration/wild_extra).
WILD = SHARED / "faces" / "calibration" / "wild_extra"
PERSON_PHOTO = WILD / "fr_kit_harington" / "john1.jpeg"
SAME_PERSON_OTHER_PHOTO = WILD / "fr_kit_harington" / "john2.jpeg"
OTHER_PERSON_PHOTO = WILD / "fr_rose_leslie" / "img1.jpg"

WAIT = 20  # seconds for one step (a CreatePerson or a search on a debug build takes about a second)

# Content types the console's files must be served with (ES modules load only with a JavaScript type).
CONTENT_TYPES = {
    ".html": {"text/html"}, ".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"},
    ".svg": {"image/svg+xml"}, ".png": {"image/png"},
}


def console_url(server) -> str:
    return f"http://{server.endpoint}/console"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("console")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: run tests/setup_clients.sh (installs the Debian package {what})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800",
                "--lang=en-US", "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--disable-default-apps", "--password-store=basic", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    set_viewport(driver, 1280, 800)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def set_viewport(driver, width, height, mobile=False):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def wait(driver, condition, timeout=WAIT, message=""):
    """WebDriverWait that tolerates elements replaced while it polls (the pages re-render)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)) \
        .until(condition, message)


def visible(driver, css, timeout=WAIT):
    def find(d):
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed():
                return el
        return False
    return wait(driver, find, timeout, f"no visible {css}")


def click(driver, css):
    el = visible(driver, css)
    wait(driver, lambda d: el.is_enabled(), message=f"{css} stays disabled")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)  # clear of the sticky top bar
    el.click()
    return el


def fill(el, text):
    el.clear()
    el.send_keys(text)


def dialog_submit(driver):
    """Press the open dialog's submit button and wait until the dialog has closed (its call succeeded)."""
    dlg = visible(driver, "dialog[open]")
    dlg.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def closed(d):
        errors = d.find_elements(By.CSS_SELECTOR, "dialog[open] .dialog-error .alert")
        if errors:
            raise AssertionError(f"dialog error: {errors[0].text}")
        return not d.find_elements(By.CSS_SELECTOR, "dialog[open]")
    wait(driver, closed, message="dialog did not close")


def screenshot(driver, name):
    # From the top of the page, without the passing notifications.
    driver.execute_script("window.scrollTo(0, 0); document.querySelectorAll('.toast').forEach((t) => t.remove())")
    driver.save_screenshot(str(OUTPUT / f"{name}.png"))


def go(driver, route):
    """Navigate with the nav bar (as a user does) and wait for the page to be there."""
    click(driver, f'#nav a[data-route="{route}"]')
    visible(driver, f'.page[data-page="{route}"]')


def sign_in(driver, secret_id, secret_key):
    visible(driver, "#signin-form")
    fill(driver.find_element(By.ID, "signin-id"), secret_id)
    fill(driver.find_element(By.ID, "signin-key"), secret_key)
    driver.find_element(By.ID, "signin-submit").click()


def fresh_page(driver, server):
    """The console's sign-in page, with nothing left from an earlier test (signed out, English)."""
    driver.get(console_url(server))
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.refresh()
    visible(driver, "#signin-form")


def thumbnail_loaded(driver, css):
    """An <img class="face-thumb"> under `css` that shows a decoded PNG from GetFaceThumbnail."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].some(i => i.src.startsWith('data:image/png;base64,')"
        " && i.complete && i.naturalWidth > 0)", f"{css} img.face-thumb")


def browser_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# ---------------------------------------------------------------------------------------------------------


def python_tc3(secret_id, secret_key, host, body: bytes, timestamp):
    """The SDK's TC3 for a JSON POST to "/" (conftest.tc3_headers, with host and key as parameters)."""
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = "\n".join(["POST", "/", "", f"content-type:application/json\nhost:{host}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), f"{date}/iai/tc3_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = Sign.sign_tc3(secret_key, date, "iai", to_sign)
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/iai/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}")


def test_browser_signature_matches_the_python_sdk(browser, console_server):
    fresh_page(browser, console_server)
    cases = [
        ("AKIDexample", "example-secret", "127.0.0.1:8080", "{}", 1764000000),
        ("AKIDexample", "k" * 100, "iai.example.com", json.dumps({"GroupId": "staff", "PersonName": "张三 ✓"},
                                                                  ensure_ascii=False), 1767225599),
        (SECRET_ID, SECRET_KEY, console_server.endpoint, json.dumps({"Image": "A" * 300_000}), 1700000000),
        ("AKID", "", "h:1", "x" * 55, 86399),  # 55/56/64-byte edges of SHA-256 padding, an empty key
        ("AKID", "s", "h:1", "x" * 56, 86400),
        ("AKID", "s", "h:1", "x" * 64, 0),
    ]
    got = browser.execute_async_script("""
        const [cases, done] = arguments;
        import('/console/js/sign.js').then(async (m) => {
          const out = [];
          for (const [secretId, secretKey, host, body, timestamp] of cases) {
            const row = {};
            for (const prefer of ['webcrypto', 'js']) {
              const s = await m.signTc3({secretId, secretKey, host, body, timestamp, prefer});
              row[prefer] = s.authorization;
              row[prefer + 'Used'] = s.primitives;
            }
            out.push(row);
          }
          done(out);
        }).catch((e) => done({error: String(e)}));
    """, cases)
    assert not isinstance(got, dict), got
    for (secret_id, secret_key, host, body, ts), row in zip(cases, got):
        want = python_tc3(secret_id, secret_key, host, body.encode(), ts)
        assert row["webcryptoUsed"] == "webcrypto"  # 127.0.0.1 is a secure context: WebCrypto is there
        assert row["jsUsed"] == "js"
        assert row["webcrypto"] == want, (host, body[:40])
        assert row["js"] == want, (host, body[:40])


def test_browser_clock_skew_is_corrected(browser, console_server):
    """A browser clock two hours fast: the first call gets AuthFailure.SignatureExpire, the console signs again
    on the server's clock (its Date header) and signs in."""
    fresh_page(browser, console_server)
    browser.execute_script("const now = Date.now.bind(Date); Date.now = () => now() + 7200 * 1000;")
    sign_in(browser, SECRET_ID, SECRET_KEY)
    visible(browser, "#shell")
    visible(browser, "#total-calls")
    click(browser, "#sign-out")
    visible(browser, "#signin-form")


def test_console_assets_are_served(console_server):
    base = console_url(console_server)
    for url in (base, base + "/"):
        r = requests.get(url, timeout=10)
        assert r.status_code == 200, url
        assert r.headers["Content-Type"].split(";")[0] == "text/html", url
        assert 'src="/console/js/app.js"' in r.text
    files = [p for p in CONSOLE_DIR.rglob("*") if p.is_file()]
    assert files
    for path in files:
        rel = path.relative_to(CONSOLE_DIR).as_posix()
        r = requests.get(f"{base}/{rel}", timeout=10)
        assert r.status_code == 200, rel
        assert r.content == path.read_bytes(), rel
        want = CONTENT_TYPES.get(path.suffix)
        if want:
            assert r.headers["Content-Type"].split(";")[0].strip() in want, rel
    assert requests.get(f"{base}/no-such-file.js", timeout=10).status_code == 404


def test_console_needs_nothing_outside_the_server():
    """Air-gapped: no CDN, no web fonts, no absolute URLs other than SVG's namespace."""
    for path in CONSOLE_DIR.rglob("*"):
        if path.suffix not in (".html", ".js", ".css", ".svg"):
            continue
        text = path.read_text()
        urls = [u for u in re.findall(r"https?://[^\s\"'<>)]+", text) if u != "http://www.w3.org/2000/svg"]
        urls += re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?//[^\s"')]+""", text)  # protocol-relative
        assert not urls, (path, urls)
        assert "@import" not in text and "@font-face" not in text, path


def test_every_string_is_translated():
    text = (CONSOLE_DIR / "js" / "strings.js").read_text()
    en_part, zh_part = text.split("\n  zh: {", 1)
    key = re.compile(r'^\s+"([^"]+)":', re.M)
    en, zh = set(key.findall(en_part)), set(key.findall(zh_part))
    assert en == zh, (en ^ zh)
    used = set()
    for path in (CONSOLE_DIR / "js").rglob("*.js"):
        used |= set(re.findall(r'\bt\("([^"]+)"', path.read_text()))
    for path in CONSOLE_DIR.glob("*.html"):
        used |= set(re.findall(r'data-i18n(?:-[a-z]+)?="([^"]+)"', path.read_text()))
    assert used - en == set()


@contextlib.contextmanager
def kept_on_failure(driver, name):
    """On failure, keep what the browser showed (output/console/failure-<name>.png) and its console log."""
    try:
        yield
    except BaseException:
        screenshot(driver, f"failure-{name}")
        (OUTPUT / f"failure-{name}.log").write_text(
            "\n".join(f"{e['level']} {e['message']}" for e in driver.get_log("browser")))
        raise


def test_console_walkthrough(browser, console_server):
    with kept_on_failure(browser, "walkthrough"):
        walkthrough(browser, console_server)


def walkthrough(d, console_server):
    group_id = f"console-{int(time.time())}"
    person_id = "kit-harington"

    # Sign in.
    fresh_page(d, console_server)
    screenshot(d, "01-sign-in")
    sign_in(d, SECRET_ID, SECRET_KEY)
    visible(d, "#shell")
    visible(d, '.page[data-page="overview"] #total-calls')

    # Create a group.
    go(d, "groups")
    click(d, "#create-group")
    dlg = visible(d, "dialog[open]")
    fill(dlg.find_element(By.NAME, "GroupId"), group_id)
    fill(dlg.find_element(By.NAME, "GroupName"), "Console staff")
    fill(dlg.find_element(By.NAME, "Tag"), "browser test")
    dialog_submit(d)
    row = visible(d, f'tr.group-row[data-group-id="{group_id}"]')
    assert "Console staff" in row.text
    screenshot(d, "02-groups")

    # Another person in the group, through the SDK, so the search has someone to rank below.
    client = make_client(console_server)
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName = group_id, "rose-leslie", "Rose Leslie"
    req.Image = base64.b64encode(OTHER_PERSON_PHOTO.read_bytes()).decode()
    client.CreatePerson(req)

    # Open it and enrol a person from an uploaded photo.
    row.find_element(By.CSS_SELECTOR, "a.group-link").click()
    visible(d, '.page[data-page="groups"] #person-table')
    click(d, "#create-person")
    dlg = visible(d, "dialog[open]")
    fill(dlg.find_element(By.NAME, "PersonId"), person_id)
    fill(dlg.find_element(By.NAME, "PersonName"), "Kit Harington")
    dlg.find_element(By.NAME, "Image").send_keys(str(PERSON_PHOTO))
    visible(d, "dialog[open] .photo-preview img")
    dialog_submit(d)
    person_row = f'tr.person-row[data-person-id="{person_id}"]'
    visible(d, person_row)
    wait(d, lambda drv: thumbnail_loaded(drv, person_row), message="no face thumbnail")
    wait(d, lambda drv: thumbnail_loaded(drv, 'tr.person-row[data-person-id="rose-leslie"]'))
    screenshot(d, "03-persons")

    # Search with another photo of the same person: that person comes first.
    go(d, "search")
    visible(d, f'input[name="GroupIds"][value="{group_id}"]')
    d.find_element(By.NAME, "SearchImage").send_keys(str(SAME_PERSON_OTHER_PHOTO))
    visible(d, "#search-stage img")
    click(d, "#search-submit")
    first = visible(d, "#search-results li.candidate")
    assert first.get_attribute("data-person-id") == person_id
    assert float(first.get_attribute("data-score")) >= 60
    visible(d, "#search-stage .face-box")
    wait(d, lambda drv: thumbnail_loaded(drv, "#search-results li.candidate"), message="no candidate thumbnail")
    request_id = d.find_element(By.ID, "search-request-id").text
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id
    screenshot(d, "04-search")

    # 1:1 compare of the two photos of that person.
    click(d, "#tab-compare")
    d.find_element(By.NAME, "ImageA").send_keys(str(PERSON_PHOTO))
    d.find_element(By.NAME, "ImageB").send_keys(str(SAME_PERSON_OTHER_PHOTO))
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, ".compare-preview img")) == 2)
    click(d, "#compare-submit")
    score = visible(d, "#compare-score")
    assert float(score.text.replace(",", "")) >= 40  # the 3.0 same-person bar (README "Scores")
    screenshot(d, "05-compare")

    # The search log has that search, with the person as a candidate.
    go(d, "log")
    log_row = visible(d, f'tr.log-row[data-request-id="{request_id}"]')
    assert person_id in log_row.text and group_id in log_row.text
    assert log_row.get_attribute("data-code") in ("OK", "")
    screenshot(d, "06-search-log")

    # The overview counts the calls, the search among them.
    go(d, "overview")
    total = visible(d, "#total-calls")
    wait(d, lambda drv: int(re.sub(r"\D", "", drv.find_element(By.ID, "total-calls").text) or 0) > 0,
         message="total calls stays 0")
    search_row = visible(d, 'tr.action-row[data-action="SearchFaces"], tr.action-row[data-action="ConsoleSearchFaces"]')
    assert int(re.sub(r"\D", "", search_row.find_element(By.CSS_SELECTOR, ".calls").text)) >= 1
    assert total.text
    screenshot(d, "07-overview")

    # Phone width: the nav collapses behind a menu button.
    set_viewport(d, 390, 844, mobile=True)
    wait(d, lambda drv: not drv.find_element(By.ID, "nav").is_displayed(), message="nav not collapsed")
    screenshot(d, "08-overview-phone")
    click(d, "#nav-toggle")
    visible(d, '#nav a[data-route="groups"]')
    screenshot(d, "09-menu-phone")
    d.find_element(By.CSS_SELECTOR, '#nav a[data-route="groups"]').click()
    visible(d, f'tr.group-row[data-group-id="{group_id}"]')
    assert not d.find_element(By.ID, "nav").is_displayed()  # the menu closes on navigation
    screenshot(d, "10-groups-phone")
    set_viewport(d, 1280, 800)

    # Chinese.
    click(d, "#lang-toggle")
    wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, '#nav a[data-route="overview"]').text == "概览")
    assert d.find_element(By.CSS_SELECTOR, '#nav a[data-route="groups"]').text == "人员库管理"
    assert d.execute_script("return document.documentElement.lang") == "zh-CN"
    visible(d, "#create-group")
    assert d.find_element(By.ID, "create-group").text == "新建人员库"
    screenshot(d, "11-groups-zh")
    go(d, "overview")
    visible(d, "#total-calls")
    screenshot(d, "12-overview-zh")
    click(d, "#lang-toggle")
    wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, '#nav a[data-route="overview"]').text == "Overview")

    # Sign out; a wrong key and an unknown key are refused with Tencent's codes.
    click(d, "#sign-out")
    visible(d, "#signin-form")
    assert d.execute_script("return sessionStorage.length") == 0
    sign_in(d, SECRET_ID, "not-the-key")
    code = visible(d, "#signin-error .err-code")
    assert code.text == "AuthFailure.SignatureFailure"
    assert visible(d, "#signin").is_displayed() and not d.find_element(By.ID, "shell").is_displayed()
    screenshot(d, "13-sign-in-wrong-key")
    sign_in(d, "AKIDnobodyHasThisKey", "whatever")
    wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#signin-error .err-code").text
         == "AuthFailure.SecretIdNotFound")

    errors = browser_errors(d)
    assert not errors, errors


def test_console_manages_groups_persons_and_faces(browser, console_server):
    with kept_on_failure(browser, "management"):
        management(browser, console_server)


def management(d, server):
    """Every write of the groups and persons pages through its dialog, checked with the SDK afterwards."""
    client = make_client(server)
    group_a, group_b = f"mgmt-a-{int(time.time())}", f"mgmt-b-{int(time.time())}"
    fresh_page(d, server)
    sign_in(d, SECRET_ID, SECRET_KEY)
    visible(d, "#shell")

    def create_group(group_id, name, fields=()):
        go(d, "groups")
        click(d, "#create-group")
        dlg = visible(d, "dialog[open]")
        fill(dlg.find_element(By.NAME, "GroupId"), group_id)
        fill(dlg.find_element(By.NAME, "GroupName"), name)
        for i, f in enumerate(fields):
            dlg.find_element(By.CSS_SELECTOR, "button.add-field").click()
            fill(dlg.find_element(By.CSS_SELECTOR, f'input[name="GroupExDescription"][data-index="{i}"]'), f)
        dialog_submit(d)
        return visible(d, f'tr.group-row[data-group-id="{group_id}"]')

    create_group(group_a, "Team A", ["dept"])
    create_group(group_b, "Team B")

    # A duplicate GroupId: the dialog stays open and shows Tencent's code.
    click(d, "#create-group")
    dlg = visible(d, "dialog[open]")
    fill(dlg.find_element(By.NAME, "GroupId"), group_a)
    fill(dlg.find_element(By.NAME, "GroupName"), "Another name")
    dlg.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = visible(d, "dialog[open] .dialog-error .err-code")
    assert err.text == "InvalidParameterValue.GroupIdAlreadyExist"
    screenshot(d, "14-dialog-error")
    dlg.find_element(By.CSS_SELECTOR, ".dialog-foot button[type=button]").click()  # Cancel

    # Rename group A, change its tag, rename its field and add a second one (ModifyGroup).
    row = visible(d, f'tr.group-row[data-group-id="{group_a}"]')
    row.find_element(By.XPATH, ".//button[text()='Edit']").click()
    dlg = visible(d, "dialog[open]")
    fill(dlg.find_element(By.NAME, "GroupName"), "Team A renamed")
    fill(dlg.find_element(By.NAME, "Tag"), "floor 3")
    fill(dlg.find_element(By.CSS_SELECTOR, 'input[name="GroupExDescription"][data-index="0"]'), "department")
    dlg.find_element(By.CSS_SELECTOR, "button.add-field").click()
    fill(dlg.find_element(By.CSS_SELECTOR, 'input[name="GroupExDescription"][data-index="1"]'), "badge")
    dialog_submit(d)
    wait(d, lambda drv: "Team A renamed" in drv.find_element(By.CSS_SELECTOR, f'tr.group-row[data-group-id="{group_a}"]').text)
    info = client.GetGroupInfo(_req(models.GetGroupInfoRequest, GroupId=group_a))
    assert (info.GroupName, info.Tag, info.GroupExDescriptions) == ("Team A renamed", "floor 3", ["department", "badge"])

    # A person with a custom field value, from a photo.
    visible(d, f'tr.group-row[data-group-id="{group_a}"] a.group-link').click()
    click(d, "#create-person")
    dlg = visible(d, "dialog[open]")
    fill(dlg.find_element(By.NAME, "PersonId"), "mgmt-kit")
    fill(dlg.find_element(By.NAME, "PersonName"), "Kit")
    dlg.find_element(By.NAME, "Gender").send_keys("Male")
    fill(dlg.find_element(By.CSS_SELECTOR, 'input[name="PersonExDescription"][data-index="0"]'), "Drama")
    dlg.find_element(By.NAME, "Image").send_keys(str(PERSON_PHOTO))
    visible(d, "dialog[open] .photo-preview img")
    dialog_submit(d)
    prow = 'tr.person-row[data-person-id="mgmt-kit"]'
    assert "Drama" in visible(d, prow).text

    def person_action(label):
        visible(d, prow).find_element(By.XPATH, f".//button[text()='{label}']").click()
        return visible(d, "dialog[open]")

    # Rename and gender (ConsoleModifyPersonBaseInfo), custom field (ModifyPersonGroupInfo).
    dlg = person_action("Edit")
    fill(dlg.find_element(By.NAME, "PersonName"), "Kit Harington")
    dlg.find_element(By.NAME, "Gender").send_keys("Female")
    fill(dlg.find_element(By.CSS_SELECTOR, 'input[name="PersonExDescription"][data-index="0"]'), "Film")
    fill(dlg.find_element(By.CSS_SELECTOR, 'input[name="PersonExDescription"][data-index="1"]'), "B-42")
    dialog_submit(d)
    wait(d, lambda drv: "Kit Harington" in drv.find_element(By.CSS_SELECTOR, prow).text)
    base = client.GetPersonBaseInfo(_req(models.GetPersonBaseInfoRequest, PersonId="mgmt-kit"))
    assert (base.PersonName, base.Gender) == ("Kit Harington", 2)
    groups = client.GetPersonGroupInfo(_req(models.GetPersonGroupInfoRequest, PersonId="mgmt-kit"))
    assert groups.PersonGroupInfos[0].PersonExDescriptions == ["Film", "B-42"]

    # Faces: add one, then delete it again (the last face cannot be selected away).
    dlg = person_action("Faces")
    assert len(dlg.find_elements(By.CSS_SELECTOR, ".face-tile")) == 1
    dlg.find_element(By.CSS_SELECTOR, "input.file-input").send_keys(str(SAME_PERSON_OTHER_PHOTO))
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "dialog[open] .face-tile")) == 2, message="face not added")
    visible(d, "dialog[open] .face-status .alert-ok")
    wait(d, lambda drv: thumbnail_loaded(drv, "dialog[open] .face-grid"))
    screenshot(d, "15-faces-dialog")
    tiles = d.find_elements(By.CSS_SELECTOR, "dialog[open] .face-tile input[type=checkbox]")
    tiles[1].click()
    d.find_element(By.CSS_SELECTOR, "dialog[open] .face-actions .btn-danger").click()
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "dialog[open] .face-tile")) == 1, message="face not deleted")
    d.find_element(By.CSS_SELECTOR, "dialog[open] .face-tile input[type=checkbox]").click()
    assert not d.find_element(By.CSS_SELECTOR, "dialog[open] .face-actions .btn-danger").is_enabled()
    dialog_submit(d)  # Done
    assert len(client.GetPersonBaseInfo(_req(models.GetPersonBaseInfoRequest, PersonId="mgmt-kit")).FaceIds) == 1

    # Copy into group B (CopyPerson).
    dlg = person_action("Copy")
    box = visible(d, f'dialog[open] input[type=checkbox][value="{group_b}"]')
    assert d.find_element(By.CSS_SELECTOR, f'dialog[open] input[type=checkbox][value="{group_a}"]').get_attribute("disabled")
    box.click()
    dialog_submit(d)
    groups = client.GetPersonGroupInfo(_req(models.GetPersonGroupInfoRequest, PersonId="mgmt-kit"))
    assert sorted(g.GroupId for g in groups.PersonGroupInfos) == sorted([group_a, group_b])

    # Remove from group A (DeletePersonFromGroup): still in B.
    dlg = person_action("Remove from group")
    assert "only this group" in dlg.text.lower()
    dialog_submit(d)
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, prow))
    groups = client.GetPersonGroupInfo(_req(models.GetPersonGroupInfoRequest, PersonId="mgmt-kit"))
    assert [g.GroupId for g in groups.PersonGroupInfos] == [group_b]

    # Delete entirely (DeletePerson) from group B's page.
    d.get(f"{console_url(server)}#/groups/{group_b}")
    dlg = person_action("Delete")
    assert "every group" in dlg.text
    dialog_submit(d)
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, prow))

    # Delete group B (DeleteGroup), with Tencent's warning in the confirmation.
    go(d, "groups")
    visible(d, f'tr.group-row[data-group-id="{group_b}"]').find_element(By.XPATH, ".//button[text()='Delete']").click()
    dlg = visible(d, "dialog[open]")
    assert "custom field values of this group are deleted" in dlg.text
    screenshot(d, "16-delete-group")
    dialog_submit(d)
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, f'tr.group-row[data-group-id="{group_b}"]'))
    assert group_b not in [g.GroupId for g in client.GetGroupList(_req(models.GetGroupListRequest, Limit=100)).GroupInfos]

    errors = browser_errors(d)
    assert not errors, errors


def _req(cls, **fields):
    req = cls()
    for k, v in fields.items():
        setattr(req, k, v)
    return req


def test_group_page_shows_the_groups_score_calibration(browser, console_server):
    with kept_on_failure(browser, "calibration"):
        calibration(browser, console_server)


def calibration(d, server):
    """The group page's "Score calibration" (ConsoleCalibrateGroup): the same figures as the API answers, and
    "too few pairs" where the group's pairs cannot tell a rate."""
    client = make_client(server)
    group = f"cal-{int(time.time())}"
    client.CreateGroup(_req(models.CreateGroupRequest, GroupId=group, GroupName="Calibration"))
    people = sorted(p for p in WILD.iterdir() if p.is_dir())[:12]
    for i, person in enumerate(people):
        # As a client sends it: some of these photos are WebP, which the API (like Tencent's) refuses, and
        # some are large: JPEG, at most 1024 px.
        out = io.BytesIO()
        photo = Image.open(sorted(person.iterdir())[0]).convert("RGB")
        photo.thumbnail((1024, 1024))
        photo.save(out, format="JPEG", quality=90)
        client.CreatePerson(_req(models.CreatePersonRequest, GroupId=group, PersonId=f"cal-{i}",
                                 PersonName=person.name, Image=base64.b64encode(out.getvalue()).decode()))
    api = common_client(server).call_json("ConsoleCalibrateGroup", {"GroupId": group})["Response"]
    assert (api["PersonNum"], api["FaceNum"], api["ImpostorPairs"]) == (12, 12, 66)
    fresh_page(d, server)
    sign_in(d, SECRET_ID, SECRET_KEY)
    visible(d, "#shell")
    d.get(f"{console_url(server)}#/groups/{group}")
    click(d, "#calibrate-group")
    visible(d, "#calibration .calibration-scores")
    assert "66" in d.find_element(By.ID, "calibration-summary").text
    [scale] = api["Scales"]
    for row in scale["AtScore"]:
        cells = d.find_element(By.CSS_SELECTOR, f'#calibration .calibration-scores tr[data-score="{row["Score"]:g}"]')
        assert cells.find_elements(By.TAG_NAME, "td")[1].text == str(row["Pairs"]), row
    # 66 pairs cannot tell 1e-3 (it needs 10,000).
    rate = d.find_element(By.CSS_SELECTOR, '#calibration .calibration-rates tr[data-rate="0.001"]')
    assert "too few" in rate.text
    screenshot(d, "17-calibration")
    errors = browser_errors(d)
    assert not errors, errors
