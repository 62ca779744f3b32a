"""Every example in README.md and docs/ runs, or at least parses, so none can rot unseen.

What is checked, in README.md and every docs/**/*.md (found afresh on each run, so a new file
or section is covered without touching this test):

- **Python blocks** (```python): each is its own test case, named by file and line, run in a
  temporary working directory. A block may use what earlier Python blocks of the same file
  defined, as a reader would: its test runs the file's earlier blocks first, in one namespace.
  Tracebacks point at the markdown file's own lines.
- **YAML blocks** (```yaml) are run configs: each loads with `RunConfig.load`, as `--config` does.
- **Command lines** must parse with the CLI's own parser (`aiayn.cli.build_parser()`; nothing
  runs). A command line is
  - in a bash/sh/shell/console block: every shell command (lines joined at a trailing
    backslash, `#` comments and a `$ ` prompt dropped, split at `&&`, `||`, `;`, `|` and
    redirections) whose program is `aiayn` (after any `VAR=value`), or that runs the module
    (`python -m aiayn ...`, `torchrun ... -m aiayn ...`): the words after `aiayn`;
  - in running text: an inline code span (it may wrap across lines) whose first word is
    `aiayn` followed by another word. A span that is just `aiayn SUBCOMMAND` names a command:
    the sub-command must exist. A longer span is a full command line and must parse, required
    options included (write `aiayn tune --run R --checkpoints average last`, not a fragment).
  The word `...` is an elision and is dropped (`aiayn tune --run R ...` checks what is shown).
  Placeholders (`R`, `DIR`, `runs/x`) are parsed as written, so they must stand where the
  parser takes a string; where it wants a number, the text shows a number.
  Shell lines that are not `aiayn` (pip, export, `python -m benchmarks.run`) are not checked.
- **Links and file paths**: every relative link or image target, and every inline code span
  that is a relative path with a folder and a file extension (`model/layers.py`,
  `configs/multi30k_en_de.yaml`), exists: beside the markdown file, in the repository root or
  in `src/aiayn/`. Paths under `runs/` (run directories) and globs are not files of the repository.

A block that cannot run in CI as written is excluded only by a marker on the line before its
fence, visible in the markdown source and giving a reason:
`<!-- docs-test: skip: needs a trained run -->`. Prefer making the block runnable.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiayn.cli import build_parser
from aiayn.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
SKIP_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*skip\b:?\s*(.*?)\s*-->\s*$")
# An inline code span: a run of backticks, content, the same run (CommonMark, simplified).
INLINE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
ELISION = re.compile(r"(?<!\S)\.\.\.(?!\S)")  # a bare `...`; a quoted "..." is a value
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")  # [text](target), ![alt](target)
REPO_PATH = re.compile(r"[\w.-]+(/[\w.-]+)+\.(py|md|yaml|yml|png|txt|toml)")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ";;", "<", ">", ">>", "<<", ">&", "<&", "|&"}


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, first content line (1-based) and text."""

    path: Path
    language: str
    line: int
    text: str
    skip_reason: str | None = None


@dataclass(frozen=True)
class CommandLine:
    """The arguments after `aiayn` of one documented command line, and where it was shown."""

    path: Path
    line: int
    shown: str
    args: tuple[str, ...]
    name_only: bool = False  # an inline `aiayn SUBCOMMAND` naming a command


def doc_files() -> list[Path]:
    """README.md and every markdown file under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def where(path: Path, line: int) -> str:
    """`file:line`, the file relative to the repository."""
    return f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{line}"


def split_markdown(path: Path, text: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks, and the running text between them as (first line, text) stretches."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    lines = text.split("\n")
    stretch_start, stretch, i = 1, [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            stretch.append(lines[i])
            i += 1
            continue
        prose.append((stretch_start, "\n".join(stretch)))
        fence, language = opening.group(1), opening.group(2).lower()
        previous = next((s for s in reversed(stretch) if s.strip()), "")
        marker = SKIP_MARKER.match(previous)
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^\s*{re.escape(fence)}{fence[0]}*\s*$", lines[j]):
            body.append(lines[j])
            j += 1
        indent = len(lines[i]) - len(lines[i].lstrip())
        body = [b[indent:] if b[:indent].isspace() else b for b in body]
        blocks.append(
            Block(path, language, i + 2, "\n".join(body), marker.group(1) if marker else None)
        )
        stretch_start, stretch, i = j + 2, [], j + 1
    prose.append((stretch_start, "\n".join(stretch)))
    return blocks, prose


def aiayn_args(words: list[str]) -> list[str] | None:
    """The arguments after `aiayn` if these words run the aiayn command or module, else None."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value before the program
    if words and words[0] == "aiayn":
        return words[1:]
    for k in range(len(words) - 1):
        if words[k] == "-m" and words[k + 1] == "aiayn":
            return words[k + 2 :]
    return None


def shell_commands(block: Block) -> list[CommandLine]:
    """The aiayn command lines of a shell block."""
    found: list[CommandLine] = []
    lines = block.text.split("\n")
    k = 0
    while k < len(lines):
        first, joined = k, lines[k]
        while joined.endswith("\\") and k + 1 < len(lines):
            k += 1
            joined = joined[:-1] + " " + lines[k]
        k += 1
        joined = ELISION.sub(" ", re.sub(r"^\s*\$\s", "", joined))
        lexer = shlex.shlex(joined, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for word in [*lexer, ";"]:
            if word not in SHELL_OPERATORS:
                words.append(word)
                continue
            args = aiayn_args(words)
            if args is not None:
                shown = " ".join(["aiayn", *args])
                found.append(CommandLine(block.path, block.line + first, shown, tuple(args)))
            words = []
    return found


def inline_commands(path: Path, first_line: int, text: str) -> list[CommandLine]:
    """The aiayn command lines shown as inline code spans in running text."""
    found: list[CommandLine] = []
    for paragraph_start, paragraph in paragraphs(first_line, text):
        for match in INLINE_SPAN.finditer(paragraph):
            words = shlex.split(ELISION.sub(" ", match.group(2).replace("\n", " ")))
            if len(words) < 2 or words[0] != "aiayn":
                continue
            line = paragraph_start + paragraph.count("\n", 0, match.start())
            shown = " ".join(words)
            found.append(CommandLine(path, line, shown, tuple(words[1:]), len(words) == 2))
    return found


def paragraphs(first_line: int, text: str) -> list[tuple[int, str]]:
    """Blank-line separated paragraphs with their first line: a code span never crosses one."""
    result, start, current = [], first_line, []
    for offset, line in enumerate(text.split("\n")):
        if line.strip():
            if not current:
                start = first_line + offset
            current.append(line)
        elif current:
            result.append((start, "\n".join(current)))
            current = []
    if current:
        result.append((start, "\n".join(current)))
    return result


def collect(paths: list[Path]) -> tuple[list[Block], list[CommandLine]]:
    """Every fenced block and every aiayn command line of these markdown files."""
    blocks: list[Block] = []
    commands: list[CommandLine] = []
    for path in paths:
        file_blocks, prose = split_markdown(path, path.read_text(encoding="utf-8"))
        blocks += file_blocks
        for block in file_blocks:
            if block.language in SHELL_LANGUAGES and block.skip_reason is None:
                commands += shell_commands(block)
        for first_line, text in prose:
            commands += inline_commands(path, first_line, text)
    return blocks, commands


def parse_error(args: tuple[str, ...]) -> str | None:
    """None if `aiayn ARGS` parses, else argparse's message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit as exit_:
        if exit_.code not in (0, None):  # --help and --version exit 0
            return stderr.getvalue().strip().splitlines()[-1]
    return None


BLOCKS, COMMANDS = collect(doc_files())
PYTHON = [b for b in BLOCKS if b.language in ("python", "py") and b.skip_reason is None]
YAML = [b for b in BLOCKS if b.language in ("yaml", "yml") and b.skip_reason is None]


def ids(items: list[Block] | list[CommandLine]) -> list[str]:
    return [where(item.path, item.line) for item in items]


@pytest.mark.parametrize("block", PYTHON, ids=ids(PYTHON))
def test_python_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    earlier = [b for b in PYTHON if b.path == block.path and b.line < block.line]
    for part in [*earlier, block]:
        # Padding with newlines makes a traceback name the markdown file's own line numbers.
        code = compile("\n" * (part.line - 1) + part.text, str(part.path), "exec")
        exec(code, namespace)  # our own documentation: running it is the point


@pytest.mark.parametrize("block", YAML, ids=ids(YAML))
def test_yaml_block_is_a_valid_run_config(block: Block, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(block.text, encoding="utf-8")
    RunConfig.load(config)


@pytest.mark.parametrize("command", COMMANDS, ids=ids(COMMANDS))
def test_command_line_parses(command: CommandLine) -> None:
    # `aiayn tune` alone names the command: it must exist (its --help parses).
    error = parse_error((*command.args, "--help") if command.name_only else command.args)
    if error is not None:
        pytest.fail(f"{where(command.path, command.line)}: `{command.shown}`: {error}")


def missing_paths(path: Path) -> list[str]:
    """The links and repository paths named in a markdown file that do not exist."""
    _, prose = split_markdown(path, path.read_text(encoding="utf-8"))
    named: list[tuple[int, str]] = []
    for first_line, text in prose:
        for start, paragraph in paragraphs(first_line, text):
            for match in LINK.finditer(paragraph):
                named.append((start + paragraph.count("\n", 0, match.start()), match.group(1)))
            for match in INLINE_SPAN.finditer(paragraph):
                if REPO_PATH.fullmatch(match.group(2)) and not match.group(2).startswith("runs/"):
                    named.append((start + paragraph.count("\n", 0, match.start()), match.group(2)))
    roots = (path.parent, REPO, REPO / "src" / "aiayn")
    return [
        f"{where(path, line)}: {name}"
        for line, name in named
        if not any((root / name.split("#")[0]).exists() for root in roots)
    ]


@pytest.mark.parametrize("path", doc_files(), ids=[str(p.relative_to(REPO)) for p in doc_files()])
def test_links_and_paths_exist(path: Path) -> None:
    missing = missing_paths(path)
    assert not missing, f"named but missing: {missing}"


def test_skip_markers_give_a_reason() -> None:
    unexplained = [where(b.path, b.line) for b in BLOCKS if b.skip_reason == ""]
    assert not unexplained, f"docs-test skip markers without a reason: {unexplained}"


def test_the_collector_finds_the_readme_examples() -> None:
    """Guards the collector itself: a broken pattern must not pass by finding nothing."""
    readme = REPO / "README.md"
    assert any(b.path == readme for b in PYTHON)
    assert any(b.path == readme for b in YAML)
    shown = {c.shown for c in COMMANDS if c.path == readme}
    assert "aiayn train" in shown  # from `pip install ... && aiayn train`
    assert any(s.startswith("aiayn train --config") and "--out" in s for s in shown)  # torchrun
    assert any(s.startswith("aiayn attention --run") for s in shown)  # an inline span


def test_collector_rules(tmp_path: Path) -> None:
    """The rules of the module docstring, on a page made for them."""
    page = tmp_path / "page.md"
    page.write_text(
        "Run `aiayn tune --run R --checkpoints\naverage last ...`, see `aiayn` and `aiayn demo`.\n"
        "\n"
        "```bash\n"
        "pip install -e . && OMP_NUM_THREADS=1 aiayn train --out runs/x  # comment\n"
        "torchrun --nproc_per_node=2 -m aiayn train \\\n"
        "    --max-epochs 3 > log.txt\n"
        "python -m benchmarks.run --quick\n"
        "```\n"
        "\n"
        "<!-- docs-test: skip: needs a trained run -->\n"
        "```bash\n"
        "aiayn translate --bogus\n"
        "```\n"
        "```python\n"
        "x = 1\n"
        "```\n",
        encoding="utf-8",
    )
    blocks, commands = collect([page])
    assert [(b.language, b.line, b.skip_reason) for b in blocks] == [
        ("bash", 5, None),
        ("bash", 13, "needs a trained run"),
        ("python", 16, None),
    ]
    assert [(c.line, c.shown, c.name_only) for c in commands] == [
        (5, "aiayn train --out runs/x", False),
        (6, "aiayn train --max-epochs 3", False),
        (1, "aiayn tune --run R --checkpoints average last", False),
        (2, "aiayn demo", True),
    ]
    assert parse_error(commands[0].args) is None
    assert missing_paths(page) == []
    page.write_text(
        "See [the recipe](docs/nope.md), `model/layers.py`, `model/nope.py`, `runs/x/curves.png`"
        " and [a site](https://example.org).\n",
        encoding="utf-8",
    )
    assert missing_paths(page) == [f"{page}:1: docs/nope.md", f"{page}:1: model/nope.py"]
    assert "--bogus" in parse_error(("translate", "--run", "R", "--bogus"))
    assert "invalid choice" in parse_error(("frobnicate", "--help"))
    assert "--run" in parse_error(("tune", "--beams", "4"))  # a required option left out
