"""The documentation site: every lesson becomes a page, the site builds strictly, and a browser shows it.

The browser test serves the built site on localhost and opens a lesson in headless Chromium
(Debian's ``chromium`` and ``chromium-driver``, driven by selenium): the page's formulas must
be typeset by MathJax, its pictures must load, and a screenshot is kept in
``runs/tests/docs-lesson.png``.
"""

import functools
import http.server
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from grader.registry import COURSE
from keras_tx_tools.site import hooks
from keras_tx_tools.site.lessons import lesson_docstring, lesson_markdown

pytestmark = pytest.mark.course

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1100,1600")


@pytest.mark.parametrize("exercise", COURSE.names)
def test_every_lesson_becomes_a_page_with_its_title_and_typeset_formulas(exercise):
    docstring = lesson_docstring(ROOT / "exercises" / f"{exercise}.py")
    page = lesson_markdown(docstring)
    assert page.startswith(f"# {docstring.splitlines()[0].rstrip('.')}\n")
    prose = re.sub(r"```text\n.*?```", "", page, flags=re.DOTALL)
    assert "``" not in prose, "a literal span was left in reStructuredText form"
    assert "\n## " in page and "$" in page


def test_the_site_lists_the_lessons_in_course_order():
    assert [hooks.lesson_page(name) for name in COURSE.names] == sorted(hooks.lesson_page(name) for name in COURSE.names)
    assert set(hooks.PICTURES) <= set(COURSE.names)
    assert all((ROOT / "docs" / "images" / name).is_file() for pictures in hooks.PICTURES.values() for name, _ in pictures)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site as `mkdocs build --strict` builds it: any warning fails the build."""
    folder = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    return folder


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_lesson_and_mathjax_inside(site):
    for name in COURSE.names:
        assert (site / hooks.lesson_page(name).replace(".md", ".html")).is_file()
    assert (site / hooks.MATHJAX_URL / "MathJax.js").is_file()
    assert "fonts.googleapis" not in (site / "index.html").read_text(encoding="utf-8")


@pytest.fixture
def browser():
    """Headless Chromium, driven by selenium through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "needs Chromium and its driver: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(site):
    """The site's address on localhost, served by a thread of this process."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_a_lesson_page_shows_typeset_math_and_its_pictures_in_chromium(browser, served):
    browser.get(f"{served}/{hooks.lesson_page('model').replace('.md', '.html')}")
    formulas = browser.execute_script("return document.querySelectorAll('.arithmatex').length")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # MathJax typesets after the page has loaded
        typeset = browser.execute_script("return document.querySelectorAll('.arithmatex .MathJax, .arithmatex .MathJax_Display').length")
        if typeset >= formulas:
            break
        time.sleep(0.5)
    screenshot = ROOT / "runs" / "tests" / "docs-lesson.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))
    assert formulas > 0 and typeset == formulas, f"{typeset} of {formulas} formulas typeset"
    assert "Math Processing Error" not in browser.execute_script("return document.body.innerText")
    images = browser.execute_script("return Array.from(document.images).map(image => [image.src, image.naturalWidth])")
    assert len(images) == len(hooks.PICTURES["model"])
    assert all(width > 0 for _, width in images), images
    assert screenshot.stat().st_size > 10_000


def test_a_simple_table_of_a_lesson_becomes_a_markdown_table():
    docstring = """Exercise 9: a demo.

=========  ==========
name       shape
=========  ==========
``c_proj``  ``(C, C)``
``q_i``    a query
=========  ==========
"""
    assert lesson_markdown(docstring).splitlines()[2:6] == [
        "| name | shape |", "|---|---|", "| `c_proj` | $(C , C)$ |", "| $q_{i}$ | a query |"]
