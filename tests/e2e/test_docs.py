"""The concept pages and how-tos run: against one real `stratum up` (the fleet the pages
describe), each page's blocks run in order in one shell, as a reader would type them.

- ```console: each `$ command` runs; every output line the page shows under it must be in
  what the command printed (whitespace aside; `...` stands for lines left out); a command
  must succeed unless the page shows it failing (a shown line starting `error:`).
- ```yaml: a manifest (apiVersion and kind) is applied with `stratum apply -f`; a block with
  `file=NAME` in its info string is saved as NAME for the commands after it instead; any
  other YAML block must at least parse.
Pages run in file order (concepts, then how-tos) on the same server, so names must not
collide between pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stratum.testing.docs import (
    UpProcess,
    code_blocks,
    console_steps,
    missing_lines,
    reader_env,
    run_in_one_shell,
    stratum_shim,
)
from tests import REPO

PAGES = [
    *sorted((REPO / "docs" / "concepts").glob("*.md")),
    *sorted((REPO / "docs" / "howto").glob("*.md")),
]


@dataclass
class Reader:
    work: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    base = tmp_path_factory.mktemp("docs")
    home, work = base / "home", base / "work"
    home.mkdir()
    shim = stratum_shim(work)
    env = reader_env(home)
    env["PATH"] = f"{shim.parent}:{env.get('PATH', '')}"
    up = UpProcess("stratum up", cwd=work, env=env, logs=base).start()
    try:
        token = (home / ".local/share/stratum/admin-token").read_text().strip()
        env = {**env, "STRATUM_SERVER": up.url, "STRATUM_TOKEN": token}
        ready = run_in_one_shell(
            ["stratum wait workload/llama-finetune -n research --for=phase=Running --timeout=90"],
            cwd=work,
            env=env,
        )
        assert ready[0].returncode == 0, ready[0].output
        yield Reader(work, env)
    finally:
        up.stop()


@dataclass(frozen=True)
class Step:
    command: str
    shown: tuple[str, ...]
    where: str


def steps_of(page: Path, work: Path) -> list[Step]:
    steps: list[Step] = []
    for block in code_blocks(page.read_text(encoding="utf-8")):
        where = f"{page.name}:{block.line}"
        if block.lang == "console":
            steps += [Step(s.command, s.shown, where) for s in console_steps(block.text)]
        elif block.lang == "yaml":
            docs = [d for d in yaml.safe_load_all(block.text) if d is not None]
            name = block.attribute("file")
            if name is not None:
                (work / name).write_text(block.text)
            elif docs and all(isinstance(d, dict) and "apiVersion" in d for d in docs):
                saved = work / f"{page.stem}-{block.line}.yaml"
                saved.write_text(block.text)
                steps.append(Step(f"stratum apply -f {saved.name}", (), where))
    return steps


def test_there_are_pages_that_run() -> None:
    names = {p.relative_to(REPO / "docs").as_posix() for p in PAGES}
    assert {"concepts/contracts.md", "howto/launch-from-the-catalog.md"} <= names


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO / "docs").as_posix())
def test_the_page_runs_as_written(page: Path, reader: Reader) -> None:
    steps = steps_of(page, reader.work)
    assert steps, f"{page.name} has no ```console or ```yaml block to run"
    ran = run_in_one_shell([s.command for s in steps], cwd=reader.work, env=reader.env)
    for step, result in zip(steps, ran, strict=True):
        fails = any(line.startswith("error:") for line in step.shown)
        assert (result.returncode != 0) == fails, (step.where, step.command, result.output)
        missing = missing_lines(step.shown, result.output)
        assert not missing, (step.where, step.command, missing, result.output)
