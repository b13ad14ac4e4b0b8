"""The packaged Pulse extension in VS Code (code-server + headless Chromium): it starts
`pulsec lsp`, and the editor shows its diagnostics as squiggles and in the Problems panel, its
hovers, its completion list, and goes to its definitions. Screenshots go to ARTIFACTS.

The tests run in file order on one VS Code window."""

import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import ARTIFACTS, logs_of

# Finds `word` at `offset` characters into the rendered line whose text contains `line_text`, in
# the active editor, and returns the centre of its box. Monaco renders a line as spans of tokens
# with non-breaking spaces.
LOCATE_TEXT = """
const [lineText, word, offset] = arguments;
const editor = document.querySelector('.editor-group-container.active .monaco-editor');
if (!editor) return null;
for (const line of editor.querySelectorAll('.view-lines .view-line')) {
  const text = line.textContent.replace(/\\u00a0/g, ' ');
  const at = text.indexOf(lineText);
  if (at < 0) continue;
  const start = at + offset;
  const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
  let seen = 0, node, range = document.createRange(), begun = false;
  while ((node = walker.nextNode())) {
    const length = node.textContent.length;
    if (!begun && start < seen + length) { range.setStart(node, start - seen); begun = true; }
    if (begun && start + word.length <= seen + length) {
      range.setEnd(node, start + word.length - seen);
      const box = range.getBoundingClientRect();
      return {x: box.left + box.width / 2, y: box.top + box.height / 2,
              left: box.left, right: box.right, top: box.top, bottom: box.bottom,
              text: range.toString()};
    }
    seen += length;
  }
}
return null;
"""


class Workbench:
    def __init__(self, driver, server):
        self.driver = driver
        self.server = server

    def screenshot(self, name: str):
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def wait_for(self, condition, what: str, timeout: float = 30):
        """Polls `condition` until it returns something truthy; fails with a screenshot and the
        extension's log."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (StaleElementReferenceException, WebDriverException) as error:
                last_error = error
            time.sleep(0.25)
        name = "timeout-" + "".join(ch if ch.isalnum() else "-" for ch in what)[:60]
        self.screenshot(name)
        pytest.fail(
            f"timed out after {timeout}s waiting for {what} (screenshot {name}.png, last error {last_error})\n"
            f"{logs_of(self.server.user_data)}"
        )

    def visible(self, css: str):
        return [element for element in self.driver.find_elements(By.CSS_SELECTOR, css) if element.is_displayed()]

    def keys(self, *keys: str, modifiers: tuple = ()):
        actions = ActionChains(self.driver)
        for modifier in modifiers:
            actions.key_down(modifier)
        actions.send_keys(*keys)
        for modifier in reversed(modifiers):
            actions.key_up(modifier)
        actions.perform()

    def quick_input(self, text: str):
        """Types into the open quick input (Quick Open, Go to Line) and accepts."""
        box = self.wait_for(lambda: self.visible(".quick-input-widget .quick-input-box input"), "the quick input")[0]
        box.send_keys(text)
        return box

    def open_file(self, name: str):
        self.keys("p", modifiers=(Keys.CONTROL,))
        box = self.quick_input(name)
        self.wait_for(
            lambda: any(
                name in row.text for row in self.visible(".quick-input-widget .quick-input-list .monaco-list-row")
            ),
            f"{name} in Quick Open",
        )
        box.send_keys(Keys.ENTER)
        self.wait_for(
            lambda: self.visible(f'.editor-group-container.active .tab.active[aria-label^="{name}"]'),
            f"the editor of {name}",
        )
        self.wait_for(lambda: self.visible(".editor-group-container.active .monaco-editor .view-line"), "text")

    def go_to(self, line: int, column: int):
        """Puts the cursor at a 1-based line and column (Go to Line, Ctrl+G)."""
        self.keys("g", modifiers=(Keys.CONTROL,))
        box = self.quick_input(f"{line}:{column}")
        box.send_keys(Keys.ENTER)
        self.wait_for(lambda: self.cursor() == (line, column), f"the cursor at {line}:{column}", timeout=10)

    def cursor(self):
        """The cursor position the status bar shows, as (line, column)."""
        items = self.visible("#status\\.editor\\.selection")
        if not items:
            return None
        text = items[0].text  # "Ln 16, Col 1" (or "... (5 selected)")
        try:
            line, column = text.split("(")[0].replace("Ln", "").replace("Col", "").split(",")
            return int(line), int(column)
        except ValueError:
            return None

    def locate(self, line_text: str, word: str):
        return self.driver.execute_script(LOCATE_TEXT, line_text, word, line_text.index(word))

    def hover(self, line_text: str, word: str):
        box = self.wait_for(lambda: self.locate(line_text, word), f"`{word}` on screen", timeout=10)
        builder = ActionBuilder(self.driver)
        builder.pointer_action.move_to_location(5, 5)
        builder.pointer_action.move_to_location(int(box["x"]), int(box["y"]))
        builder.perform()
        return box

    def hide_hover(self):
        """Moves the mouse off the text and closes the hover."""
        builder = ActionBuilder(self.driver)
        builder.pointer_action.move_to_location(5, 5)
        builder.perform()
        self.keys(Keys.ESCAPE)
        self.wait_for(lambda: not self.visible(".monaco-hover"), "the hover to close", timeout=10)

    def squiggles(self, kind: str = "error"):
        return self.visible(f".editor-group-container.active .monaco-editor .squiggly-{kind}")


def open_workbench(browser, server, first_file: str) -> Workbench:
    browser.get(server.url)
    bench = Workbench(browser, server)
    bench.wait_for(lambda: bench.visible(".monaco-workbench .part.editor"), "the workbench", timeout=90)
    bench.wait_for(
        lambda: any(first_file in row.text for row in bench.visible(".explorer-folders-view .monaco-list-row")),
        "the workspace in the Explorer",
        timeout=60,
    )
    # Close whatever the workbench opened by itself (notifications, a welcome tab).
    bench.keys(Keys.ESCAPE)
    return bench


@pytest.fixture(scope="session")
def workbench(browser, code_server):
    return open_workbench(browser, code_server, "welcome.pulse")


def test_a_misspelt_field_is_squiggled_and_listed_in_problems(workbench):
    # The JSON DAG first: its misspelt field must reach the Problems panel too.
    workbench.open_file("pipeline.json")
    workbench.go_to(32, 62)  # `props.amout` in the splitter's route, scrolled into view
    # The first diagnostics wait for the extension to activate and start `pulsec lsp`.
    workbench.wait_for(lambda: workbench.squiggles(), "a squiggle in pipeline.json", timeout=90)

    workbench.open_file("broken.pulse")
    line = "login_filter: filter(event_name == \"login_success\" && usr_id != null)"
    squiggle = workbench.wait_for(lambda: workbench.squiggles(), "a squiggle in broken.pulse")[0]
    # The squiggle underlines `usr_id` and nothing else.
    word = workbench.locate(line, "usr_id")
    assert word and word["text"] == "usr_id", word
    rect = squiggle.rect
    assert abs(rect["x"] - word["left"]) <= 2 and abs(rect["x"] + rect["width"] - word["right"]) <= 2, (rect, word)
    assert word["top"] - 2 <= rect["y"] <= word["bottom"] + 2, (rect, word)
    assert len(workbench.squiggles()) == 1
    workbench.screenshot("squiggle")

    # Hovering the squiggle shows the diagnostic.
    workbench.hover(line, "usr_id")
    message = workbench.wait_for(
        lambda: [hover.text for hover in workbench.visible(".monaco-hover") if "usr_id" in hover.text],
        "the diagnostic's hover",
    )[0]
    assert "did you mean `userId`?" in message or "did you mean userId?" in message, message
    assert "E0205" in message, message
    workbench.screenshot("diagnostic-hover")
    workbench.hide_hover()

    # The Problems panel lists both files' problems with code, message and position.
    workbench.keys("m", modifiers=(Keys.CONTROL, Keys.SHIFT))
    rows = workbench.wait_for(
        lambda: [
            row.text
            for row in workbench.visible(".markers-panel .monaco-list-row")
            if "E0205" in row.text or ".pulse" in row.text or ".json" in row.text
        ]
        if len(workbench.visible(".markers-panel .monaco-list-row")) >= 4
        else None,
        "two files with one problem each in the Problems panel",
    )
    text = "\n".join(rows)
    assert "broken.pulse" in text and "pipeline.json" in text, text
    broken = next(row for row in rows if "usr_id" in row)
    assert "unknown field `usr_id` on the event" in broken or "unknown field usr_id on the event" in broken, broken
    assert "E0205" in broken and "pulsec" in broken and "Ln 21, Col 60" in broken, broken
    json_problem = next(row for row in rows if "amout" in row)
    assert "unknown field `props.amout` on `props`" in json_problem, json_problem
    assert "E0205" in json_problem and "Ln 32, Col 62" in json_problem, json_problem
    assert not any("welcome.pulse" in row for row in rows), rows
    workbench.screenshot("problems")
    # Close the panel again.
    workbench.keys("j", modifiers=(Keys.CONTROL,))


def test_the_server_runs_under_code_server(workbench):
    # The positive case of the activation test at the end: `pulsec lsp` is found among
    # code-server's processes.
    processes = workbench.server.pulsec_processes()
    assert any(" lsp" in process for process in processes), processes


def test_a_correct_file_has_no_squiggles(workbench):
    workbench.open_file("welcome.pulse")
    # The server answers the hover only once it analysed the document; by then diagnostics are in.
    workbench.hover('route big: props.amount != null', "amount")
    workbench.wait_for(lambda: workbench.visible(".monaco-hover"), "a hover in welcome.pulse")
    workbench.hide_hover()
    assert workbench.squiggles("error") == [] and workbench.squiggles("warning") == []


def test_hover_on_a_field(workbench):
    workbench.open_file("welcome.pulse")
    workbench.hover("props.amount >= 50", "amount")
    text = workbench.wait_for(
        lambda: [hover.text for hover in workbench.visible(".monaco-hover") if "props.amount" in hover.text],
        "the field's hover",
    )[0]
    assert "props.amount: float?" in text, text
    assert "declared in the event schema (line 9)" in text, text
    workbench.screenshot("hover")
    workbench.hide_hover()

    workbench.hover("-> wait_5min: delay(5m) by userId", "wait_5min")
    text = workbench.wait_for(
        lambda: [hover.text for hover in workbench.visible(".monaco-hover") if "wait_5min" in hover.text],
        "the node's hover",
    )[0]
    assert "wait_5min: delay" in text, text
    assert "emits each event unchanged" in text, text
    workbench.hide_hover()


def test_go_to_definition(workbench):
    workbench.open_file("welcome.pulse")
    # `split` in `split.big -> ...` (line 24) goes to the node's declaration on line 16.
    workbench.go_to(24, 2)
    workbench.keys(Keys.F12)
    workbench.wait_for(lambda: workbench.cursor() == (16, 1), "the cursor on `split: splitter` (16:1)", timeout=20)
    # A field goes to the event block: `userId` in `by userId` (line 22) to line 7.
    workbench.go_to(22, 34)
    workbench.keys(Keys.F12)
    workbench.wait_for(lambda: workbench.cursor() == (7, 3), "the cursor on `userId: string?` (7:3)", timeout=20)
    workbench.screenshot("definition")


def test_completion_of_fields(workbench):
    workbench.open_file("welcome.pulse")
    line = '  -> login_filter: filter(event_name == "login_success" && userId != null)'
    # Before the closing parenthesis of the filter.
    workbench.go_to(21, len(line))
    workbench.keys(" && props.")
    rows = workbench.wait_for(
        lambda: workbench.visible(".editor-widget.suggest-widget.visible .monaco-list-row"), "the completion list"
    )
    labels = [row.find_element(By.CSS_SELECTOR, ".label-name").text for row in rows]
    assert sorted(labels) == ["amount", "show_id"], labels
    details = " ".join(row.text for row in rows)
    assert "float?" in details or "string?" in details, details
    workbench.screenshot("completion")
    workbench.keys(Keys.ESCAPE)
    # Put the file back as it was (no save).
    workbench.keys("z", modifiers=(Keys.CONTROL,))


def test_no_activation_for_json_files_that_are_not_pulse_dags(browser, json_only_server):
    # Last: the browser leaves the main workspace. A workspace without .pulse files or
    # pipeline.json files does not activate the extension, even with JSON files open.
    bench = open_workbench(browser, json_only_server, "config.json")
    bench.open_file("config.json")
    bench.wait_for(
        lambda: any(item.text == "JSON" for item in bench.visible("#status\\.editor\\.mode")),
        "the JSON language mode",
    )
    time.sleep(5)  # the extension would activate and start `pulsec lsp` within a second or two
    assert json_only_server.pulsec_processes() == []
    assert logs_of(json_only_server.user_data) == "(no Pulse output channel log)"
