"""The README's examples run as written: the Python example, and every command's settings."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import needs_shared

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_ask_tell_example_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "Pareto-optimal trials, hypervolume" in capsys.readouterr().out


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(config name, overrides)`` of every train.py / search.py command in a bash block, and
    of every search override the text quotes inline."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(re.sub(r"<\w+>", "placeholder", line.split(" #")[0]))
            if words[:1] == ["python"] and words[1] in ("train.py", "search.py"):
                commands.append((words[1].removesuffix(".py"), words[2:]))
    for span in re.findall(r"`([+'~]*search\.[^`]+)`", text):
        if "=" in span:
            commands.append(("search", shlex.split(span)))
    return commands


def test_readme_commands_compose_and_validate_as_written(capsys) -> None:
    from nago_pl.config import compose
    from nago_pl.config.cli import check_command_line
    from nago_pl.config.validate import validate_search, validate_train

    commands = readme_commands()
    assert len(commands) >= 20
    assert ("search", ["+search.space.G3_P.log=true"]) in commands
    for name, overrides in commands:
        check_command_line(name, overrides)  # exits with an error line if Hydra refuses them
        cfg = compose(name, overrides)
        validate_search(cfg) if name == "search" else validate_train(cfg)
    assert capsys.readouterr().err == ""


DATA = README.parent / "../shared/data"
TABLE = DATA / "nas-bench-201/nats_tss_test_acc_200ep.csv"
#: What the test adds to a README search so that it stays small (trial count and epochs only).
SMALL = {"hnag": ["search.trials=1", "trainer.max_epochs=1"], "nb201": ["search.trials=2"]}


def readme_searches() -> list[list[str]]:
    """The README's search commands with every setting given (``search.py`` lines of the bash
    blocks, and the inline ``python search.py ...`` spans), in the order the README has them."""
    text = README.read_text()
    found = []
    for match in re.finditer(r"```bash\n(.*?)```|`python search\.py ([^`]*)`", text, flags=re.S):
        if match.group(2) is not None:
            found.append(shlex.split(match.group(2).replace("\n", " ")))
            continue
        for line in match.group(1).replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0])
            if words[:2] == ["python", "search.py"]:
                found.append(words[2:])
    return found


@pytest.mark.slow
@needs_shared(TABLE)
def test_readme_searches_typed_in_order_each_get_their_own_study(tmp_path: Path) -> None:
    """`make search` (``python search.py``), then the NB201 table search, in one fresh
    project tree: neither refuses the other's study, each says which study it is, and
    ``runs/search/latest`` (the README's ``init_from=``) is the newest."""
    searches = readme_searches()
    first = searches[0]
    table = next(s for s in searches if "evaluator=nb201_table" in s)
    assert first == []
    work = tmp_path / "project"
    work.mkdir()
    (tmp_path / "shared").symlink_to(DATA.parent.resolve())  # ../shared/data as in a clone
    names = []
    for command in (first, table):
        small = SMALL["nb201" if "space=nb201" in command else "hnag"]
        done = subprocess.run([sys.executable, str(README.parent / "search.py"), *command,
                               *small, "logger=none"], cwd=work, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        names += [ln.split()[1] for ln in done.stdout.splitlines()
                  if ln.startswith("study ") and "(new)" in ln]
    assert len(names) == 2 and names[0] != names[1], names
    runs = work / "runs" / "search"
    assert sorted(p.name for p in runs.iterdir()) == sorted([*names, "latest"])
    assert (runs / "latest").resolve() == (runs / names[1]).resolve()
    init_from = re.search(r"init_from=(\S+)", README.read_text()).group(1)
    assert (work / init_from).resolve() == (runs / "latest").resolve()


def test_no_tracked_file_is_ignored() -> None:
    """A fresh clone has every file the project tracks (no .gitignore pattern covers one)."""
    root = README.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
                            cwd=root, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == []
