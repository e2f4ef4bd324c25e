"""End to end, as a student sees it: JupyterLab on the loopback address, each lesson opened in a real (headless)
Chromium, Run All in the `smoke` profile, then the latent explorer's sliders and buttons moved with the mouse. The
scrubbers' readouts must show the quantity (t, w, step) that their captions name, and lesson 4 also runs in
instructor mode (COURSE_PRETRAINED=1), where each training cell must show the recorded training figure. Lesson 1 also
runs in the `cpu` profile, where one press of stop during Run All must end the queue at the training cell.

Needs Debian's Chromium (`apt-get install chromium`) and the `e2e` extra (`pip install -e ".[course,e2e]"`, which
brings playwright; no browser is downloaded). Run it with

    COURSE_E2E=1 .venv/bin/python -m pytest tests/e2e

Screenshots of every step land in `COURSE_E2E_SHOTS` (default: a temporary folder, printed). On a slow or shared
machine, `COURSE_E2E_SLOWDOWN=3` gives every Run All three times as long to finish.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(os.environ.get("COURSE_E2E") != "1", reason="browser test: set COURSE_E2E=1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path_factory, **extra_env):
    """JupyterLab serving a *copy* of notebooks/ (so autosave never writes outputs into the repository)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    port, token = _free_port(), "e2e"
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_OFFLINE": "1"}
    env.pop("COURSE_HEADLESS", None)  # a browser is watching: let the live plots draw
    env.pop("COURSE_PRETRAINED", None)  # instructor mode only where a test asks for it
    env.update(extra_env)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}",
         f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True"],  # window.jupyterapp: the cells' state, read by code_cells()
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory):
    """The same, with instructor mode switched on as an instructor would: COURSE_PRETRAINED=1 in the environment."""
    yield from _serve(tmp_path_factory, COURSE_PRETRAINED="1")


@pytest.fixture(scope="module")
def cpu_lab(tmp_path_factory):
    """The `cpu` profile: training cells run for tens of seconds, long enough to press stop in the middle of one."""
    yield from _serve(tmp_path_factory, COURSE_PROFILE="cpu")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots():
    folder = Path(os.environ.get("COURSE_E2E_SHOTS") or tempfile.mkdtemp(prefix="course-e2e-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def run_all(browser, lab, notebook: str, timeout_s: float = 300):
    url, token = lab
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{url}/lab/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    time.sleep(5)  # let the kernel start; Run All would queue behind it anyway
    page.click("text=Run", timeout=10_000)  # the Run menu
    page.click("text=Run All Cells", timeout=10_000)
    start, timeout_s = time.time(), timeout_s * float(os.environ.get("COURSE_E2E_SLOWDOWN", "1"))
    time.sleep(5)
    while page.locator(".jp-InputPrompt:has-text('[*]')").count() and time.time() - start < timeout_s:
        time.sleep(2)
    assert page.locator(".jp-InputPrompt:has-text('[*]')").count() == 0, f"{notebook} still running after {timeout_s} s"
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [errors.nth(i).inner_text() for i in range(errors.count()) if "Error" in errors.nth(i).inner_text()]
    assert not tracebacks, f"{notebook}: a cell failed:\n{tracebacks[0][:2000]}"
    return page


def code_cells(page) -> list[dict]:
    """Every code cell of the open notebook as JupyterLab holds it (rendered on screen or not): its execution count,
    its execution state ('running' while it runs or waits in the queue), its source, its output text."""
    return page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .filter(cell => cell.model.type === 'code')
        .map(cell => ({count: cell.model.executionCount, state: cell.model.executionState,
                       source: cell.model.sharedModel.getSource(),
                       text: cell.model.outputs.toJSON().map(o => [].concat(o.text || [], o.evalue || [],
                             (o.data && o.data['text/plain']) || []).join('')).join('\\n')}))""")


def drag(page, handle, dx: float):
    handle.scroll_into_view_if_needed()  # a tall widget (lesson 7's mixing grid) can leave its slider off screen
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=10)
    page.mouse.up()


def image_src(explorer):
    return explorer.locator("img").first.get_attribute("src")


def wait_for_new_image(explorer, before: str, timeout_s: float = 10) -> str:
    start = time.time()
    while image_src(explorer) == before and time.time() - start < timeout_s:
        time.sleep(0.1)
    return image_src(explorer)


def readout(widget) -> str:
    """What the first slider in `widget` shows beside its name (the value, as a student reads it)."""
    return widget.locator(".widget-readout").first.inner_text().strip()


def caption_number(widget, pattern: str) -> float:
    """The number the scrubber's caption gives for its quantity, e.g. pattern r"t = (\\d+)"."""
    for text in widget.locator(".widget-label").all_inner_texts():
        found = re.search(pattern, text)
        if found:
            return float(found[1])
    raise AssertionError(f"no caption matching {pattern!r} in {widget.locator('.widget-label').all_inner_texts()}")


def assert_readout_matches_caption(widget, pattern: str, what: str, timeout_s: float = 10) -> float:
    """The slider's readout equals the caption's number, once the kernel has redrawn the frame the slider rests on
    (during a drag the image and caption follow a step behind the readout)."""
    start = time.time()
    while float(readout(widget)) != caption_number(widget, pattern) and time.time() - start < timeout_s:
        time.sleep(0.1)
    shown = readout(widget)
    assert float(shown) == caption_number(widget, pattern), (
        f"the slider reads {what} {shown} but the caption says {caption_number(widget, pattern):g}: it should show "
        f"the {what} itself, not the frame's number")
    return float(shown)


def explorer_of(page, shots, lesson: str):
    """The latent explorer's box (the one with an 'all to 0' button), scrolled into view and photographed."""
    explorer = page.locator(".widget-hbox:has(button:has-text('all to 0'))").first
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=shots / f"{lesson}_explorer_0.png")
    return explorer, explorer.locator(".ui-slider-handle, .noUi-handle")


def test_lesson_1_runs_and_its_explorer_responds(browser, lab, shots):
    page = run_all(browser, lab, "01_autoencoders.ipynb")
    explorer, handles = explorer_of(page, shots, "lesson1")
    assert handles.count() == 2  # a 2-D code
    track = explorer.locator(".noUi-target, .ui-slider").first.bounding_box()
    assert track["width"] >= 300, f"the latent sliders' track is {track['width']:.0f} px: too short to drag finely"
    low, high = (float(handles.first.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax"))
    values = explorer.locator(".widget-readout")
    before_value = float(values.nth(0).inner_text())
    for i, dx in enumerate([80, -120]):
        before = image_src(explorer)
        drag(page, handles.nth(i), dx)
        assert wait_for_new_image(explorer, before) != before, f"moving slider z{i + 1} did not change the image"
        explorer.screenshot(path=shots / f"lesson1_explorer_{i + 1}.png")
        if i == 0:  # an 80 px drag is a part of the range, not a jump from one end to the other
            moved = abs(float(values.nth(0).inner_text()) - before_value)
            assert 0 < moved < 0.5 * (high - low), f"an 80 px drag moved z1 by {moved:.2f} of {high - low:.2f}"
    before = image_src(explorer)
    explorer.locator("button:has-text('all to 0')").click()
    assert wait_for_new_image(explorer, before) != before
    explorer.screenshot(path=shots / "lesson1_explorer_reset.png")
    page.screenshot(path=shots / "lesson1_page.png")
    page.close()


def test_lesson_2_runs_and_its_explorer_starts_from_a_chosen_image(browser, lab, shots):
    page = run_all(browser, lab, "02_variational_autoencoders.ipynb")
    explorer, handles = explorer_of(page, shots, "lesson2")
    assert handles.count() == 17  # 16 latent dimensions and the image picker
    values = explorer.locator(".widget-readout")
    drag(page, handles.nth(16), 60)  # pick another test image
    time.sleep(0.5)
    readouts_before = [values.nth(i).inner_text() for i in range(16)]
    before = image_src(explorer)
    explorer.locator("button:has-text('start from this image')").click()
    assert wait_for_new_image(explorer, before) != before, "starting from another image did not change the image"
    assert [values.nth(i).inner_text() for i in range(16)] != readouts_before, "the sliders did not move"
    explorer.screenshot(path=shots / "lesson2_explorer_1.png")
    before = image_src(explorer)
    drag(page, handles.nth(2), 90)
    assert wait_for_new_image(explorer, before) != before, "moving slider z3 did not change the image"
    explorer.screenshot(path=shots / "lesson2_explorer_2.png")
    page.close()


def test_lesson_3_dashboard_scrubber_and_explorer_respond(browser, lab, shots):
    page = run_all(browser, lab, "03_gans.ipynb")
    dash = page.locator(".widget-vbox:has(button:has-text('step')):has(button:has-text('reset'))").first
    dash.scroll_into_view_if_needed()
    dash.screenshot(path=shots / "lesson3_dashboard_0.png")
    status = dash.locator(".widget-label:has-text('frames/s')").first  # "step N   F frames/s"
    before, status_before = image_src(dash), status.inner_text()
    dash.locator("button:has-text('step')").click()
    assert wait_for_new_image(dash, before) != before, "the step button did not redraw the dashboard"
    assert status.inner_text() != status_before
    run = dash.locator("button:has-text('run')")
    run.click()  # trains in the background: frames keep coming while the kernel is idle
    seen = {image_src(dash)}
    start = time.time()
    while time.time() - start < 4:
        seen.add(image_src(dash))
        time.sleep(0.1)
    dash.screenshot(path=shots / "lesson3_dashboard_running.png")
    dash.locator("button:has-text('pause')").click()
    assert len(seen) >= 5, f"only {len(seen)} different frames in 4 s of running"
    time.sleep(1)
    paused = image_src(dash)
    time.sleep(1.5)
    assert image_src(dash) == paused, "the dashboard kept training after pause"

    scrubber = page.locator(".widget-vbox:has(.widget-play)").first  # Play button + frame slider + image
    scrubber.scroll_into_view_if_needed()
    scrubber.screenshot(path=shots / "lesson3_scrubber_0.png")
    first = assert_readout_matches_caption(scrubber, r"after (\d+) training steps", "step")
    before = image_src(scrubber)
    drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, 200)  # opens on the first snapshot
    assert wait_for_new_image(scrubber, before) != before, "moving the scrubber did not change the frame"
    assert assert_readout_matches_caption(scrubber, r"after (\d+) training steps", "step") > first
    scrubber.screenshot(path=shots / "lesson3_scrubber.png")

    explorer, handles = explorer_of(page, shots, "lesson3")
    assert handles.count() == 8  # 8 of z's 100 numbers have sliders
    before = image_src(explorer)
    drag(page, handles.nth(0), 100)
    assert wait_for_new_image(explorer, before) != before, "moving slider z1 did not change the image"
    explorer.screenshot(path=shots / "lesson3_explorer_1.png")
    page.close()


def test_lesson_4_forward_and_reverse_scrubbers_respond(browser, lab, shots):
    page = run_all(browser, lab, "04_diffusion.ipynb")
    scrubbers = page.locator(".widget-vbox:has(.widget-play)")
    assert scrubbers.count() == 2  # the forward process, and the sampling run of the trained model
    for i, name in enumerate(["forward", "reverse"]):
        scrubber = scrubbers.nth(i)
        scrubber.scroll_into_view_if_needed()
        scrubber.screenshot(path=shots / f"lesson4_{name}_0.png")
        t_open = assert_readout_matches_caption(scrubber, r"t = (\d+)", "t")
        if name == "forward":
            assert t_open == 0, "the forward scrubber should open on the clean digits, t = 0, as the text says"
        else:
            assert t_open >= 900, f"the reverse scrubber should open on pure noise (large t), not t = {t_open:g}"
        before = image_src(scrubber)
        drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, 200)
        assert wait_for_new_image(scrubber, before) != before, f"moving the {name} scrubber did not change the frame"
        t_moved = assert_readout_matches_caption(scrubber, r"t = (\d+)", "t")
        assert (t_moved > t_open) if name == "forward" else (t_moved < t_open), f"{name}: t went the wrong way"
        scrubber.screenshot(path=shots / f"lesson4_{name}_1.png")
    page.close()


def test_lesson_4_in_instructor_mode_shows_the_recorded_training_figure(browser, instructor_lab, shots):
    page = run_all(browser, instructor_lab, "04_diffusion.ipynb", timeout_s=420)
    setup = page.locator(".jp-OutputArea-output:has-text('Instructor mode is on')").first
    setup.scroll_into_view_if_needed()  # JupyterLab does not lay out cells far off screen
    assert "COURSE_PRETRAINED=1 in the environment" in setup.text_content(), "the setup cell should name the switch"
    assert "%env COURSE_PRETRAINED=0" in setup.text_content(), "and say how to turn it off"
    training = page.locator(".jp-Cell:has(.jp-OutputArea-output:has-text('Loaded the bundled weights'))").first
    training.scroll_into_view_if_needed()
    message = training.locator(".jp-OutputArea-output:has-text('Loaded the bundled weights')").first.text_content()
    assert "COURSE_PRETRAINED=1" in message and "USE_PRETRAINED = False" not in message
    figure = training.locator(".jp-OutputArea-output img").first
    assert figure.count() == 1, "the training cell shows no figure in instructor mode"
    width = figure.evaluate("img => img.naturalWidth")
    assert width > 400, f"the training figure is {width} px wide: not the loss-curve figure"
    training.screenshot(path=shots / "lesson4_instructor_training_cell.png")
    page.close()


def test_lesson_5_class_buttons_and_guidance_slider_respond(browser, lab, shots):
    page = run_all(browser, lab, "05_conditional_models.ipynb")
    explorer, handles = explorer_of(page, shots, "lesson5")
    assert handles.count() == 2  # the CVAE's 2-number code
    for digit in ["7", "3"]:  # the same style, written as another digit
        before = image_src(explorer)
        explorer.locator(f".widget-toggle-buttons button:text-is('{digit}')").click()
        assert wait_for_new_image(explorer, before) != before, f"pressing {digit} did not change the image"
        explorer.screenshot(path=shots / f"lesson5_explorer_digit_{digit}.png")
    before = image_src(explorer)
    drag(page, handles.nth(0), 100)
    assert wait_for_new_image(explorer, before) != before, "moving slider z1 did not change the image"

    scrubber = page.locator(".widget-vbox:has(.widget-play)").first  # the guidance scale
    scrubber.scroll_into_view_if_needed()
    scrubber.screenshot(path=shots / "lesson5_guidance_0.png")
    assert assert_readout_matches_caption(scrubber, r"guidance w = ([\d.]+)", "w") == 0, "the text says: start at w = 0"
    caption = scrubber.locator(".widget-label:has-text('guidance w')").first
    before, caption_before = image_src(scrubber), caption.inner_text()
    drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, 150)  # towards larger w
    assert wait_for_new_image(scrubber, before) != before, "moving the guidance slider did not change the samples"
    assert caption.inner_text() != caption_before, "the caption still names the old guidance scale"
    assert assert_readout_matches_caption(scrubber, r"guidance w = ([\d.]+)", "w") > 0
    scrubber.screenshot(path=shots / "lesson5_guidance.png")
    page.close()


def test_lesson_6_latent_scrubber_responds(browser, lab, shots):
    page = run_all(browser, lab, "06_latent_diffusion.ipynb")
    scrubber = page.locator(".widget-vbox:has(.widget-play)").first  # the decoded latent sampling run
    scrubber.scroll_into_view_if_needed()
    scrubber.screenshot(path=shots / "lesson6_scrubber_0.png")
    t_open = assert_readout_matches_caption(scrubber, r"t = (\d+)", "t")
    before = image_src(scrubber)
    drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, -200)
    after = wait_for_new_image(scrubber, before, timeout_s=30)
    assert assert_readout_matches_caption(scrubber, r"t = (\d+)", "t") > t_open  # back towards the noise
    scrubber.screenshot(path=shots / "lesson6_scrubber_1.png")
    page.screenshot(path=shots / "lesson6_page.png")
    assert after != before, "moving the scrubber did not change the frame"
    page.close()


def test_lesson_7_growth_mixing_and_truncation_scrubbers_respond(browser, lab, shots):
    page = run_all(browser, lab, "07_gan_architectures.ipynb", timeout_s=420)
    scrubbers = page.locator(".widget-vbox:has(.widget-play)")
    assert scrubbers.count() == 3  # the growth of the faded-in run, the style mixer, the truncation slider
    # (name, caption pattern, quantity, where it opens, drag): each slider shows the quantity itself
    cases = [("growth", r"step (\d+):", "step", None, -200), ("mixing", r"crossover (\d+)", "crossover", 6, -200),
             ("truncation", r"psi = ([\d.]+)", "psi", 1.0, -200)]
    for i, (name, pattern, what, opens_at, dx) in enumerate(cases):
        scrubber = scrubbers.nth(i)
        scrubber.scroll_into_view_if_needed()
        scrubber.screenshot(path=shots / f"lesson7_{name}_0.png")
        first = assert_readout_matches_caption(scrubber, pattern, what)
        if opens_at is not None:
            assert first == opens_at, f"the {name} slider opens at {what} {first:g}, not {opens_at:g}"
        before = image_src(scrubber)
        drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, dx)
        assert wait_for_new_image(scrubber, before) != before, f"moving the {name} slider did not change the frame"
        assert assert_readout_matches_caption(scrubber, pattern, what) < first, f"{name}: the slider went the wrong way"
        scrubber.screenshot(path=shots / f"lesson7_{name}_1.png")
    page.close()


def test_lesson_1_stop_during_run_all_stops_the_lesson(browser, cpu_lab, shots):
    """One press of stop while a training cell trains ends Run All there: the cells queued after it never run, and the
    cell says that the model keeps what it learned and how to go on."""
    url, token = cpu_lab
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{url}/lab/tree/01_autoencoders.ipynb?reset&token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    time.sleep(5)
    page.click("text=Run", timeout=10_000)
    page.click("text=Run All Cells", timeout=10_000)
    training = None
    start = time.time()
    while training is None and time.time() - start < 240:  # the first training cell, once its epochs have begun
        time.sleep(0.5)
        cells = code_cells(page)
        training = next((i for i, c in enumerate(cells) if "fit(" in c["source"] and c["state"] == "running"
                         and c["count"] is None and all(d["count"] for d in cells[1:i])  # it, not a queued one
                         and "epoch" in c["text"]), None)
    if training is None:
        page.screenshot(path=str(shots / "lesson1_no_training_cell.png"))
    assert training is not None, "no training cell started within 240 s: " + "; ".join(
        f"{i} {c['count']} {c['state']} {c['source'][:30]!r} {c['text'][-60:]!r}" for i, c in enumerate(cells[:8]))
    time.sleep(2)
    page.screenshot(path=str(shots / "lesson1_training_before_stop.png"))
    page.click("text=Kernel", timeout=10_000)
    page.click("text=Interrupt Kernel", timeout=10_000)
    start = time.time()
    while any(c["state"] == "running" for c in code_cells(page)) and time.time() - start < 60:
        time.sleep(1)
    page.screenshot(path=str(shots / "lesson1_after_stop.png"))
    cells = code_cells(page)
    assert not any(c["state"] == "running" for c in cells), "cells still running or queued 60 s after stop"
    assert "Training stopped in epoch" in cells[training]["text"], cells[training]["text"][-1000:]
    assert "Run All stops here" in cells[training]["text"] and "history=last_history()" in cells[training]["text"]
    ran_after = [i for i, c in enumerate(cells) if i > training and c["count"] is not None]
    assert not ran_after, f"cells {ran_after} ran after the stop: Run All went on"


def test_lesson_9_langevin_sde_flow_and_guidance_scrubbers_respond(browser, lab, shots):
    page = run_all(browser, lab, "09_score_and_flow.ipynb", timeout_s=300)
    scrubbers = page.locator(".widget-vbox:has(.widget-play)")
    assert scrubbers.count() == 5  # Langevin, annealed Langevin, SDE vs ODE, the toy flow, the guidance slider
    # (name, caption pattern, quantity, where it opens, which way a drag to the right moves it)
    cases = [("langevin", r"step (\d+)", "step", 0, +1), ("annealed", r"level (\d+) done", "level", None, +1),
             ("sde_ode", r"t = (\d+)", "t", 1000, -1), ("flow", r"^t ([\d.]+)", "t", 1.0, -1),
             ("guidance", r"w = ([\d.]+)", "w", 0.0, +1)]
    for i, (name, pattern, what, opens_at, direction) in enumerate(cases):
        scrubber = scrubbers.nth(i)
        scrubber.scroll_into_view_if_needed()
        scrubber.screenshot(path=shots / f"lesson9_{name}_0.png")
        first = float(readout(scrubber))
        if opens_at is not None:
            assert first == opens_at, f"the {name} slider opens at {what} {first:g}, not {opens_at:g}"
        before = image_src(scrubber)
        drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, 200)
        assert wait_for_new_image(scrubber, before) != before, f"moving the {name} slider did not change the frame"
        moved = assert_readout_matches_caption(scrubber, pattern, what)
        assert (moved - first) * direction > 0, f"{name}: the slider went the wrong way ({first:g} -> {moved:g})"
        scrubber.screenshot(path=shots / f"lesson9_{name}_1.png")
    page.close()


def test_lesson_8_method_strength_and_mask_scrubbers_respond(browser, lab, shots):
    page = run_all(browser, lab, "08_restoration_and_editing.ipynb", timeout_s=300)
    scrubbers = page.locator(".widget-vbox:has(.widget-play)")
    assert scrubbers.count() == 3  # the methods side by side, SDEdit's strength, RePaint's mask
    # (name, what the slider opens at, a pattern the caption must match there and after a drag to the right)
    cases = [("method", "input (7 x 7)", r"^input \(7 x 7\): PSNR [\d.]+ dB"),
             ("strength", "0.3", r"^strength 0.3: FD \d+"),
             ("mask", "lower half", r"\(lower half\)$")]
    for i, (name, opens_at, pattern) in enumerate(cases):
        scrubber = scrubbers.nth(i)
        scrubber.scroll_into_view_if_needed()
        scrubber.screenshot(path=shots / f"lesson8_{name}_0.png")
        assert readout(scrubber) == opens_at, f"the {name} slider opens at {readout(scrubber)!r}, not {opens_at!r}"
        assert any(re.search(pattern, t) for t in scrubber.locator(".widget-label").all_inner_texts()), name
        before = image_src(scrubber)
        drag(page, scrubber.locator(".ui-slider-handle, .noUi-handle").first, 200)
        assert wait_for_new_image(scrubber, before) != before, f"moving the {name} slider did not change the frame"
        moved = readout(scrubber)
        assert moved != opens_at, f"the {name} slider did not move"
        start = time.time()  # the caption follows the readout once the kernel has drawn the frame
        while not any(moved.split()[0] in t for t in scrubber.locator(".widget-label").all_inner_texts()) \
                and time.time() - start < 10:
            time.sleep(0.1)
        assert any(moved.split()[0] in t for t in scrubber.locator(".widget-label").all_inner_texts()), (
            f"the {name} slider reads {moved!r} but the caption says "
            f"{scrubber.locator('.widget-label').all_inner_texts()}")
        scrubber.screenshot(path=shots / f"lesson8_{name}_1.png")
    painter = page.locator(".widget-hbox:has(.widget-toggle-button)").last  # click cells, then fill them
    painter.scroll_into_view_if_needed()
    before = image_src(painter)
    cells = painter.locator(".widget-toggle-button")
    assert cells.count() == 49
    for i in (16, 17, 23, 24):  # four cells in the middle
        cells.nth(i).click()
    painter.locator("button", has_text="fill the hidden cells").click()
    assert wait_for_new_image(painter, before, timeout_s=60) != before, "pressing fill did not draw the fill"
    assert "filled 64 of 784 pixels" in painter.inner_text()
    painter.screenshot(path=shots / "lesson8_mask_painter.png")
    page.close()


def test_lesson_10_prompt_box_draws_what_is_typed(browser, lab, shots):
    page = run_all(browser, lab, "10_text_to_image.ipynb", timeout_s=300)
    box = page.locator(".widget-vbox:has(button:has-text('draw'))").last
    box.scroll_into_view_if_needed()

    def status():  # the status line, with the labels beside the controls ("caption", "guidance w", "seed")
        return " | ".join(box.locator(".widget-label").all_inner_texts())

    start = time.time()  # the labels render a moment after the box
    while "8 images" not in status() and time.time() - start < 30:
        time.sleep(0.2)
    assert "'a small green four at the bottom', w = 3, seed 0: 8 images" in status(), status()
    box.screenshot(path=shots / "lesson10_prompt_box_0.png")
    caption = box.locator("input[type='text']").first
    before = image_src(box)
    caption.fill("a purple 2 on maroon")
    caption.press("Enter")
    assert wait_for_new_image(box, before, timeout_s=60) != before, "a new caption did not draw new images"
    start = time.time()
    while "'a purple 2 on maroon'" not in status() and time.time() - start < 30:
        time.sleep(0.2)
    assert "'a purple 2 on maroon'" in status(), status()
    box.screenshot(path=shots / "lesson10_prompt_box_1.png")
    before = image_src(box)
    caption.fill("a purpel 2")  # a misspelt word: answered with the vocabulary, the images stay
    caption.press("Enter")
    start = time.time()
    while "Unknown word" not in status() and time.time() - start < 30:
        time.sleep(0.2)
    assert "did you mean 'purple'" in status(), status()
    assert image_src(box) == before
    caption.fill("a purple 2")
    caption.press("Enter")
    assert wait_for_new_image(box, before, timeout_s=60) != before
    before = image_src(box)
    drag(page, box.locator(".ui-slider-handle, .noUi-handle").first, 120)  # more guidance
    assert wait_for_new_image(box, before, timeout_s=60) != before, "moving the guidance slider did not draw again"
    w = float(readout(box))
    assert w > 3.0, f"the guidance slider reads {w} after a drag to the right"
    start = time.time()  # the status line follows once the kernel has drawn
    while f"w = {w:g}," not in status() and time.time() - start < 30:
        time.sleep(0.2)
    assert f"w = {w:g}," in status(), (w, status())
    box.screenshot(path=shots / "lesson10_prompt_box_2.png")
    page.close()
