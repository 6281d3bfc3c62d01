"""The web page at / in a real browser (headless Chromium driven by Selenium) against a real server over the tiny
bundle: upload a labelled photo, see the people drawn over it, the result cards and the 3D view; choose another
person; drag a skeleton's joint and see the results change; play a clip; read an error; use it at phone width;
and /docs and /redoc render with every host name but loopback unresolvable. Screenshots of each view go to
reports/ui/test-run/ (the committed ones in reports/ui/ come from these tests and from the benchmark
``benchmarks/ui_first_results.py --screenshots reports/ui`` on the default bundle). Every test ends by checking
that no request left the server's origin.

Skips without Debian's chromium + chromium-driver (``.ci/run`` installs them) or without ../shared/data/pose-images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.service import browser as chromium

pytestmark = pytest.mark.skipif(chromium.available() is not None, reason=str(chromium.available()))

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = REPO_ROOT.parent / "shared" / "data" / "pose-images"
PHOTO = IMAGES / "mpii" / "052475643.jpg"  # two people; the labelled one (largest) on the left, 854 x 480
NO_PERSON_PHOTO = IMAGES / "crowdpose" / "103319.jpg"  # a real photo in which BlazePose finds nobody
SCREENSHOTS = REPO_ROOT / "reports" / "ui" / "test-run"  # ignored by git; reports/ui/ holds the committed ones
DEFAULT_K = 12  # the page's default number of results
CHOSEN_BOX = (250, 204, 21)  # #facc15: the chosen person's box on the photo
PAGE_ASSET_BUDGET = 1_500_000  # bytes the page itself loads (its own files and three.js)
SCORE = re.compile(r"^score (-?\d\.\d{3})$")


@pytest.fixture(scope="module")
def photo():
    if not PHOTO.is_file():
        pytest.skip(f"{PHOTO} not found (the shared pose-images folder is absent)")
    label = next(a for a in json.loads((PHOTO.parent / "test_mpii.json").read_text()) if a["image"] == PHOTO.name)
    joints = np.array(label["joints"], float)
    labelled = joints[(joints > 0).all(axis=1)]
    return {"path": PHOTO, "box": np.concatenate([labelled.min(0), labelled.max(0)]), "width": 854}


@pytest.fixture(scope="module")
def driver():
    d = chromium.chrome()
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def page(driver, server):
    """The page, loaded and started (it has read /info)."""
    driver.get(f"{server.url}/")
    chromium.wait_for(driver, "document.body.dataset.ready === 'true'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return driver


def stayed_on_origin(driver, origin: str) -> None:
    urls = chromium.requested_urls(driver)
    outside = [u for u in urls if not u.startswith((f"{origin}/", "blob:", "data:"))]
    assert not outside, outside
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "Failed to load resource: the server responded with a status of 422" not in e["message"]]
    assert not errors, errors  # a Content-Security-Policy violation or a script error shows here


def searches(driver) -> int:
    return int(driver.execute_script("return document.getElementById('results').dataset.searches || '0'"))


def wait_for_search(driver, after: int) -> None:
    chromium.wait_for(driver, f"Number(document.getElementById('results').dataset.searches || 0) > {after}"
                              " || document.getElementById('results').dataset.state === 'error'")
    assert driver.find_element("id", "error").is_displayed() is False, driver.find_element("id", "error").text


def cards(driver) -> list[dict]:
    out = []
    for card in driver.find_elements("css selector", "#cards .card"):
        score = SCORE.match(card.find_element("css selector", ".score").text)
        tags = [t.text for t in card.find_elements("css selector", ".tag")]
        out.append({"clip": card.find_element("css selector", ".card-clip").text,
                    "time": card.find_element("css selector", ".card-time").text,
                    "score": float(score.group(1)) if score else None, "tags": tags})
    return out


def drawn_fraction(image, background=None) -> tuple[float, int]:
    """(fraction of pixels unlike the background (the corner pixel), distinct colours among them)."""
    pixels = np.asarray(image)[..., :3].astype(int)
    background = pixels[0, 0] if background is None else np.array(background)
    drawn = np.abs(pixels - background).sum(-1) > 30
    colours = {tuple(c // 32) for c in pixels[drawn][:: max(1, drawn.sum() // 2000)]}
    return float(drawn.mean()), len(colours)


def iou(a, b) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def chosen_box(driver, width: int) -> np.ndarray:
    """The chosen person's box as drawn on the photo canvas, in the photo's pixels."""
    canvas = driver.find_element("id", "photo-canvas")
    pixels = np.asarray(chromium.canvas_image(driver, canvas))[..., :3].astype(int)
    ys, xs = np.nonzero(np.abs(pixels - CHOSEN_BOX).sum(-1) < 40)
    assert len(xs) > 100, "no chosen-person box on the photo"
    scale = width / pixels.shape[1]
    return np.array([xs.min(), ys.min() + 20, xs.max(), ys.max()]) * scale  # + 20: the number tag above the box


def test_photo_search_shows_people_results_and_3d(page, server, photo):
    before = searches(page)
    page.find_element("id", "photo-input").send_keys(str(photo["path"]))
    wait_for_search(page, before)

    # the people overlay: a numbered button per person, the chosen (largest) one boxed where the label says
    people = page.find_elements("css selector", "#people button")
    assert len(people) >= 1 and people[0].get_attribute("aria-pressed") == "true"
    assert iou(chosen_box(page, photo["width"]), photo["box"]) > 0.5

    # N result cards with scores, clip, time, labels and a drawn skeleton each
    shown = cards(page)
    assert len(shown) == DEFAULT_K
    assert all(c["score"] is not None and -1 <= c["score"] <= 1 for c in shown), shown
    assert all(c["clip"] and c["time"].startswith("at ") and c["tags"] for c in shown), shown
    first_card = page.find_element("css selector", "#cards .card canvas")
    fraction, colours = drawn_fraction(chromium.canvas_image(page, first_card), background=(0, 0, 0))
    assert fraction > 0.01 and colours >= 2

    # the lifted 3D skeleton in a WebGL view: not blank, the bones' colours present
    chromium.wait_for(page, "document.getElementById('query-caption').textContent.startsWith('Person 1 in 3D')")
    view = page.find_element("css selector", "#query-view canvas")
    fraction, colours = drawn_fraction(chromium.canvas_image(page, view))
    assert 0.005 < fraction < 0.9 and colours >= 3, (fraction, colours)
    elapsed = page.execute_script("return document.getElementById('results').dataset.lastSearchMs")
    print(f"\nphoto search: first cards {elapsed} ms after the upload")
    page.save_screenshot(str(SCREENSHOTS / "photo-search.png"))

    # what the page itself loaded: its own files and three.js, within the budget
    loaded = page.execute_script(
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".map(e => [e.name, e.encodedBodySize])")
    assert all(name.startswith((f"{server.url}/", "blob:")) for name, _ in loaded), loaded
    assets = sum(size for name, size in loaded if name.startswith(f"{server.url}/static/")
                 or name == f"{server.url}/")
    assert 0 < assets < PAGE_ASSET_BUDGET, assets
    stayed_on_origin(page, server.url)


def test_choosing_another_person_changes_the_results(page, server, photo):
    people = page.find_elements("css selector", "#people button")
    if len(people) < 2:
        pytest.skip("one person found in the photo")
    first = cards(page)
    box_first = chosen_box(page, photo["width"])
    # click inside the second person's box on the photo (their box: the dashed one; its centre from the API)
    canvas = page.find_element("id", "photo-canvas")
    people[1].click()  # the keyboard path: the person's button
    assert people[1].get_attribute("aria-pressed") == "true" and people[0].get_attribute("aria-pressed") == "false"
    second = cards(page)
    assert second != first and len(second) == DEFAULT_K
    assert iou(chosen_box(page, photo["width"]), box_first) < 0.5  # the highlight moved to the other person
    # and back by clicking on the photo, inside the first person's box
    from selenium.webdriver import ActionChains

    rect = page.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas)
    scale = rect[0] / photo["width"]
    centre = (box_first[:2] + box_first[2:]) / 2 * scale - np.array(rect) / 2
    ActionChains(page).move_to_element_with_offset(canvas, int(centre[0]), int(centre[1])).click().perform()
    assert people[0].get_attribute("aria-pressed") == "true"
    assert cards(page) == first
    stayed_on_origin(page, server.url)


def test_dragging_a_joint_changes_the_results(page, server):
    from selenium.webdriver import ActionChains, Keys
    from selenium.webdriver.support.select import Select

    before = searches(page)
    page.find_element("id", "tab-skeleton").click()
    wait_for_search(page, before)
    standing = cards(page)
    assert len(standing) == DEFAULT_K

    # drag the right wrist (h36m17 joint 16; the Stand preset puts it at (109, 183) of the 320 x 420 canvas)
    # above the head
    canvas = page.find_element("id", "editor-canvas")
    width, height = page.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]",
                                        canvas)
    sx, sy = width / 320, height / 420
    before = searches(page)
    (ActionChains(page).move_to_element_with_offset(canvas, int((109 - 160) * sx), int((183 - 210) * sy))
     .click_and_hold().move_by_offset(0, int(-80 * sy)).move_by_offset(-10, int(-100 * sy)).release().perform())
    wait_for_search(page, before)
    chromium.wait_for(page, "document.getElementById('results').dataset.state === 'done'")
    raised = cards(page)
    assert raised != standing and len(raised) == DEFAULT_K
    assert Select(page.find_element("id", "joint-select")).first_selected_option.text == "r wrist"

    # the keyboard does the same: choose the left wrist, raise it with Shift+ArrowUp
    Select(page.find_element("id", "joint-select")).select_by_visible_text("l wrist")
    before = searches(page)
    ActionChains(page).click(canvas).perform()  # focus; a click away from every joint moves nothing
    canvas.send_keys(*([Keys.SHIFT + Keys.ARROW_UP] * 12))
    wait_for_search(page, before)
    chromium.wait_for(page, "document.getElementById('results').dataset.state === 'done'")
    assert cards(page) != raised

    view = page.find_element("css selector", "#query-view canvas")
    chromium.wait_for(page, "document.getElementById('query-caption').textContent.startsWith('Your skeleton')")
    assert drawn_fraction(chromium.canvas_image(page, view))[0] > 0.005
    page.save_screenshot(str(SCREENSHOTS / "skeleton-search.png"))
    stayed_on_origin(page, server.url)


def test_label_filters_come_from_the_bundle(page, server, client):
    from selenium.webdriver.support.select import Select

    labels = client.get("/info").json()["labels"]
    select = Select(page.find_element("css selector", "#label-filters select[name=content]"))
    assert [o.get_attribute("value") for o in select.options] == labels["content"]
    wanted = labels["content"][0]
    before = searches(page)
    select.select_by_value(wanted)
    wait_for_search(page, before)
    shown = cards(page)
    assert shown and all(c["tags"][0] == wanted for c in shown), (wanted, shown)
    before = searches(page)
    select.deselect_all()
    wait_for_search(page, before)
    chromium.wait_for(page, "document.getElementById('results').dataset.state === 'done'")
    assert len({c["tags"][0] for c in cards(page)}) >= 1
    stayed_on_origin(page, server.url)


def test_a_result_plays_its_clip_around_the_hit(page, server):
    card = page.find_element("css selector", "#cards .card")
    clip = card.find_element("css selector", ".card-clip").text
    card.find_element("css selector", "button.play").click()
    chromium.wait_for(page, "document.getElementById('player').open")
    assert clip in page.find_element("id", "player-title").text
    chromium.wait_for(page, "/\\d s/.test(document.getElementById('player-time').textContent)")
    frames = int(page.find_element("id", "player-seek").get_attribute("max")) + 1
    assert frames > 2
    first = page.find_element("id", "player-seek").get_attribute("value")
    chromium.wait_for(page, f"document.getElementById('player-seek').value !== '{first}'", timeout=5)  # it plays
    view = page.find_element("css selector", "#player-view canvas")
    assert drawn_fraction(chromium.canvas_image(page, view))[0] > 0.003
    page.save_screenshot(str(SCREENSHOTS / "clip-player.png"))
    page.find_element("id", "player-close").click()
    assert not page.execute_script("return document.getElementById('player').open")
    stayed_on_origin(page, server.url)


def test_errors_are_shown_in_the_services_words(page, server, client):
    if not NO_PERSON_PHOTO.is_file():
        pytest.skip(f"{NO_PERSON_PHOTO} not found")
    expected = client.post("/retrieve", files={"image": ("p.jpg", NO_PERSON_PHOTO.read_bytes(), "image/jpeg")})
    assert expected.status_code == 422
    message = expected.json()["error"]["message"]
    page.find_element("id", "tab-photo").click()
    page.find_element("id", "photo-input").send_keys(str(NO_PERSON_PHOTO))
    chromium.wait_for(page, "document.getElementById('results').dataset.state === 'error'")
    shown = page.find_element("id", "error")
    assert shown.is_displayed() and shown.get_attribute("role") == "alert"
    assert shown.text == f"{message} ({expected.json()['error']['field']})"
    assert page.find_element("id", "status").text == "No results."
    assert not page.find_elements("css selector", "#cards .card")  # the previous photo's results are gone
    page.save_screenshot(str(SCREENSHOTS / "error.png"))
    stayed_on_origin(page, server.url)


def test_phone_width_and_keyboard(page, server, photo):
    from selenium.webdriver import ActionChains, Keys

    page.set_window_size(390, 844)
    try:
        before = searches(page)
        page.find_element("id", "photo-input").send_keys(str(photo["path"]))
        wait_for_search(page, before)
        overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow} px wider than the phone"
        page.save_screenshot(str(SCREENSHOTS / "phone.png"))
    finally:
        page.set_window_size(1280, 1000)
    # Tab walks through the controls a search needs
    page.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached = []
    for _ in range(40):
        ActionChains(page).send_keys(Keys.TAB).perform()
        active = page.switch_to.active_element
        reached.append(active.get_attribute("id") or active.get_attribute("class") or active.tag_name)
    for wanted in ("tab-photo", "photo-input", "k", "group-by-clip", "card-pose", "play"):
        assert wanted in reached, (wanted, reached)
    stayed_on_origin(page, server.url)


def still_video(photo: Path, frames: int = 20, fps: int = 10) -> bytes:
    """A WebM (VP8) of the photo panned a few pixels a frame: a person holding a pose for frames / fps seconds."""
    import io

    import av
    from PIL import Image

    image = np.asarray(Image.open(photo).convert("RGB"))
    height, width = 360, 640
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for i in range(frames):
            crop = np.ascontiguousarray(image[60:60 + height, 40 + 4 * i:40 + 4 * i + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_motion_search_with_a_video(page, server, photo, tmp_path):
    video = tmp_path / "still.webm"
    video.write_bytes(still_video(photo["path"]))
    page.find_element("id", "tab-motion").click()
    before = searches(page)
    page.find_element("id", "video-input").send_keys(str(video))
    wait_for_search(page, before)
    assert "library motions" in page.find_element("id", "status").text
    shown = cards(page)
    assert shown and all(re.match(r"^\d+\.\d s–\d+\.\d s$", c["time"]) for c in shown), shown
    assert all(c["score"] is not None and c["tags"] for c in shown)
    first_card = page.find_element("css selector", "#cards .card canvas")
    chromium.wait_for(page, "(() => { const c = document.querySelector('#cards .card canvas');"
                            " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v); })()")
    assert drawn_fraction(chromium.canvas_image(page, first_card), background=(0, 0, 0))[0] > 0.01
    page.find_element("css selector", "#cards .card button.play").click()
    chromium.wait_for(page, "/\\d s/.test(document.getElementById('player-time').textContent)")
    assert shown[0]["clip"] in page.find_element("id", "player-title").text
    page.save_screenshot(str(SCREENSHOTS / "motion-search.png"))
    page.find_element("id", "player-close").click()
    page.find_element("id", "tab-photo").click()
    stayed_on_origin(page, server.url)


@pytest.mark.parametrize("path, rendered", [
    ("/docs", "document.querySelectorAll('.opblock').length >= 5"),
    ("/redoc", "document.querySelectorAll('[data-section-id^=\"operation/\"]').length >= 5"),
])
def test_docs_render_with_no_network(driver, server, path, rendered):
    chromium.requested_urls(driver)  # drop what earlier tests asked for
    driver.get(f"{server.url}{path}")
    chromium.wait_for(driver, rendered)
    assert "UniHPR pose embedding service" in driver.find_element("tag name", "body").text
    driver.save_screenshot(str(SCREENSHOTS / f"{path.strip('/')}.png"))
    stayed_on_origin(driver, server.url)
