"""The page of `aiayn serve` in a real browser (Debian's headless chromium, driven by selenium):
typing translates, the heatmap has a cell per target x source subword and changes with the head,
hovering a row lights up what it attends to, the tabs switch to self-attention. On the ct2
backend it translates and says, in place of the heatmap, that attention is not available."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from benchmarks.serve_load import start_server
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from aiayn.export.ct2 import Ct2Translator
from serve_helpers import export_ct2, random_translator

# Debian's packages `chromium` and `chromium-driver` (.ci/run installs them): no browser can be
# downloaded here, so selenium is given both paths and never looks for a driver of its own.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SENTENCE = "1 2 3 4 5"


def chromium() -> webdriver.Chrome:
    """Headless chromium; fails (never skips) when the browser is not installed."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.exists(), f"{path} is missing: apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1200,1000"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def cell_values(driver: webdriver.Chrome) -> dict[tuple[int, int], float]:
    """The heatmap's cells as {(row, col): weight}, read from their data attributes."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#heatmap .cell')]"
        ".map(c => [+c.dataset.row, +c.dataset.col, +c.dataset.value])"
    )
    return {(row, col): value for row, col, value in found}


def as_cells(matrix: list[list[float]]) -> dict[tuple[int, int], float]:
    return {(i, j): w for i, row in enumerate(matrix) for j, w in enumerate(row)}


@pytest.mark.slow  # a server process and a browser; reverse_run trains a model
def test_the_page_translates_as_you_type_and_draws_every_head(
    reverse_run: Path, tmp_path: Path
) -> None:
    driver = chromium()
    try:
        with start_server(reverse_run, log=tmp_path / "serve.log") as server:
            expected = httpx.post(f"{server.url}/v1/attention", json={"text": SENTENCE}).json()
            driver.get(server.url)
            wait = WebDriverWait(driver, 30)
            driver.find_element(By.ID, "source").send_keys(SENTENCE)
            wait.until(lambda d: d.find_element(By.ID, "translation").text == "5 4 3 2 1")
            wait.until(lambda d: d.find_element(By.ID, "heatmap").get_attribute("data-rows") != "0")

            rows, cols = len(expected["target"]), len(expected["source"])  # 6 x 5
            layer = Select(driver.find_element(By.ID, "layer"))
            head = Select(driver.find_element(By.ID, "head"))
            assert head.first_selected_option.text == "average of heads"
            average = cell_values(driver)
            assert set(average) == {(i, j) for i in range(rows) for j in range(cols)}
            heads = expected["cross"][0]
            mean = [[sum(h[i][j] for h in heads) / len(heads) for j in range(cols)]
                    for i in range(rows)]  # fmt: skip
            assert average == pytest.approx(as_cells(mean), abs=1e-3)
            labels = driver.find_elements(By.CSS_SELECTOR, "#heatmap .col-label")
            assert [label.text for label in labels] == SENTENCE.split()

            layer.select_by_value("1")
            head.select_by_value("2")  # the third head of the second layer
            wait.until(lambda d: cell_values(d) != average)
            assert cell_values(driver) == pytest.approx(as_cells(expected["cross"][1][2]), abs=1e-4)

            labels = driver.find_elements(By.CSS_SELECTOR, "#heatmap .col-label")  # redrawn
            row = driver.find_element(By.CSS_SELECTOR, '#heatmap .row-label[data-row="2"]')
            ActionChains(driver).move_to_element(row).perform()
            assert "label-on" in row.get_attribute("class")
            lit = [label.value_of_css_property("background-color") for label in labels]
            assert len(set(lit)) > 1  # the source labels take the colour of their weights

            Select(driver.find_element(By.ID, "beam")).select_by_value("4")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#alternatives li")) == 4)
            driver.find_element(By.CSS_SELECTOR, '.tabs [data-kind="encoder"]').click()
            grid = driver.find_element(By.ID, "heatmap")
            assert (grid.get_attribute("data-rows"), grid.get_attribute("data-cols")) == ("5", "5")
            driver.find_element(By.CSS_SELECTOR, '.tabs [data-kind="cross"]').click()
            assert driver.save_screenshot(str(tmp_path / "page.png"))
            assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        driver.quit()


@pytest.mark.slow  # a server process and a browser
def test_on_the_ct2_backend_the_page_translates_and_says_attention_is_unavailable(
    tmp_path: Path,
) -> None:
    folder = export_ct2(random_translator(), tmp_path / "ct2")
    expected = Ct2Translator(folder).translate([SENTENCE], beam_size=1)[0]
    assert expected  # so that waiting for it waits for an answer
    driver = chromium()
    try:
        with start_server(folder, log=tmp_path / "serve.log", backend="ct2") as server:
            driver.get(server.url)
            wait = WebDriverWait(driver, 30)
            driver.find_element(By.ID, "source").send_keys(SENTENCE)
            wait.until(lambda d: d.find_element(By.ID, "translation").text == expected)
            assert driver.find_element(By.ID, "status").get_attribute("class") != "error"
            caption = driver.find_element(By.ID, "caption").text
            assert caption.startswith("Not available for this backend: attention maps are not")
            for hidden in ("heatmap-scroll", "layer", "head"):
                assert not driver.find_element(By.ID, hidden).is_displayed(), hidden
            Select(driver.find_element(By.ID, "beam")).select_by_value("4")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#alternatives li")) == 4)
            assert driver.find_element(By.ID, "heatmap").get_attribute("data-rows") == "0"
            assert driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        driver.quit()
