"""The README's examples run as written: the Python example, and every command's settings."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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
