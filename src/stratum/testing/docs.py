"""Documentation that runs: the fenced code blocks of a Markdown page, a `stratum up` to run
them against, and a shell that runs a page's commands in order, as a reader would type them
(one shell, so `export` and `x=$(...)` carry over), keeping each command's output apart.

Used by the newcomer test (the README's quick start, literally) and the docs tests (every
```console and ```yaml block of docs/concepts and docs/howto)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stratum.testing.campaigns.servers import free_port, wait_ready

# Variables a reader's shell would not have: the test suite's own server, token and homes.
_SUITE_ENV = (
    "STRATUM_HOME",
    "STRATUM_TOKEN",
    "STRATUM_SERVER",
    "STRATUM_CONFIG",
    "STRATUM_NAMESPACE",
    "STRATUM_DATABASE_URL",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
)


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block: its language, the rest of its info string (`file=NAME`), its
    text and the line it starts on."""

    lang: str
    text: str
    line: int
    attributes: tuple[tuple[str, str], ...] = ()

    def attribute(self, name: str) -> str | None:
        return dict(self.attributes).get(name)


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)(?P<rest>[^`]*)$")


def code_blocks(markdown: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        # A block in a list item is indented: its lines lose that indentation.
        indent, fence, start, body = len(m.group("indent")), m.group("fence"), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].lstrip(" ").startswith(fence):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip(" "))
            i += 1
        pairs = [a.split("=", 1) for a in m.group("rest").split() if "=" in a]
        attributes = tuple((k, v) for k, v in pairs)
        blocks.append(Block(m.group("info").lower(), "\n".join(body) + "\n", start, attributes))
        i += 1
    return blocks


def prose(markdown: str, *, inline_code: bool = False) -> str:
    """The text outside fenced code blocks (where links are links), without inline code
    unless asked (headings keep theirs: it is part of their anchor)."""
    out, fence = [], ""
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if fence:
            if line.lstrip(" ").startswith(fence):
                fence = ""
            out.append("")
        elif m is not None:
            fence = m.group("fence")
            out.append("")
        else:
            out.append(line if inline_code else re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link outside code."""
    return [
        (n, m.group("target"))
        for n, line in enumerate(prose(markdown).splitlines(), start=1)
        for m in _LINK.finditer(line)
    ]


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes for a page's headings: lower case, punctuation dropped,
    spaces to hyphens, repeats numbered (-1, -2)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose(markdown, inline_code=True).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def section(markdown: str, heading: str) -> str:
    """The text under a `## heading`, up to the next heading of the same level or above."""
    lines = markdown.splitlines()
    level = heading.split(" ", 1)[0]
    start = lines.index(heading)
    end = next(
        (
            j
            for j in range(start + 1, len(lines))
            if lines[j].startswith("#") and lines[j].split(" ", 1)[0] in _at_or_above(level)
        ),
        len(lines),
    )
    return "\n".join(lines[start:end]) + "\n"


def _at_or_above(level: str) -> set[str]:
    return {"#" * n for n in range(1, len(level) + 1)}


def shell_commands(text: str) -> list[str]:
    """The commands of a ```sh block: one a line, `\\` continuations joined, comment-only
    lines dropped (a trailing comment stays: the shell ignores it)."""
    commands: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if pending:
            line = pending + " " + line.lstrip()
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


@dataclass(frozen=True, slots=True)
class ConsoleStep:
    """A `$ command` of a ```console block and the output lines the page shows under it."""

    command: str
    shown: tuple[str, ...]


def console_steps(text: str) -> list[ConsoleStep]:
    steps: list[ConsoleStep] = []
    command: str | None = None
    shown: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                steps.append(ConsoleStep(command, tuple(shown)))
            command, shown = line[2:].strip(), []
        elif command is not None and command.endswith("\\"):
            command = command[:-1].rstrip() + " " + line.strip()
        elif command is not None and line.strip():
            shown.append(line)
    if command is not None:
        steps.append(ConsoleStep(command, tuple(shown)))
    return steps


def squeeze(text: str) -> str:
    """Whitespace runs as one space: tables compare by their cells, not their padding."""
    return " ".join(text.split())


def missing_lines(shown: Iterable[str], output: str) -> list[str]:
    """The lines a page shows that the output lacks (`...` elides any number of lines)."""
    have = {squeeze(line) for line in output.splitlines()}
    return [line for line in shown if line.strip() != "..." and squeeze(line) not in have]


@dataclass(frozen=True, slots=True)
class Ran:
    command: str
    output: str  # stdout and stderr, in order
    returncode: int


def run_in_one_shell(
    commands: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 300
) -> list[Ran]:
    """Run `commands` one after another in one bash, as typed into a terminal; each one's
    output and exit status apart. A failing command does not stop the ones after it."""
    marker = f"@@stratum-step-{os.getpid()}"
    script = []
    for i, command in enumerate(commands):
        script.append(f'echo "{marker} {i}"')
        # Braces, not a subshell: `export` and `x=$(...)` stay for the next command. The
        # newline before `}` ends a trailing comment.
        script.append(f"{{ {command}\n}} </dev/null 2>&1")
        # On a line of its own even when the output did not end with a newline.
        script.append(f'__rc=$?; printf "\\n{marker} {i} rc=%d\\n" "$__rc"')
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    results: list[Ran] = []
    chunks = re.split(rf"^{marker} (\d+)(?: rc=(\d+))?$", done.stdout, flags=re.MULTILINE)
    # chunks: [before, i, None, output, i, rc, between, ...]
    for j in range(1, len(chunks) - 2, 6):
        index, output, rc = int(chunks[j]), chunks[j + 2], chunks[j + 4]
        results.append(Ran(commands[index], output.strip("\n"), int(rc)))
    if len(results) != len(commands):
        raise AssertionError(
            f"the shell stopped after {len(results)} of {len(commands)} commands: "
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return results


def reader_env(home: Path, **extra: str) -> dict[str, str]:
    """A reader's environment: this one, with HOME in `home` and none of the suite's
    server, token or homes (so `~/.local/share/stratum` is the reader's own)."""
    env = {k: v for k, v in os.environ.items() if k not in _SUITE_ENV}
    return {**env, "HOME": str(home), **extra}


def stratum_shim(folder: Path) -> Path:
    """`folder/scripts/stratum`: the README's command, run by this interpreter (the
    checkout's .venv, already installed: the suite does not reinstall it)."""
    script = folder / "scripts" / "stratum"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stratum "$@"\n')
    script.chmod(0o755)
    return script


class UpProcess:
    """`stratum up` as a reader starts it (a command line run by bash in `cwd`), on a free
    port, with its standard output and error in files of `logs`."""

    def __init__(self, command: str, *, cwd: Path, env: Mapping[str, str], logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The reader's line without its comment, on this test's port.
        self.command = shlex.join([*shlex.split(command, comments=True), "--port", str(self.port)])
        self.cwd = cwd
        self.env = dict(env)
        self.out_path = logs / f"up-{self.port}.out"
        self.err_path = logs / f"up-{self.port}.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def start(self, timeout: float = 120.0) -> UpProcess:
        out, err = open(self.out_path, "wb"), open(self.err_path, "wb")  # noqa: SIM115
        self._files = [out, err]
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=err,
        )
        wait_ready(self.proc, self.url, timeout, "stratum up", lambda: self.stderr)
        return self

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for f in self._files:
            f.close()
