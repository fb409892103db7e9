"""Command-line start-up of ``train.py`` / ``search.py``: bad input is one ``error:`` line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.markup import escape

from nago_pl.config.compose import compose
from nago_pl.errors import NagoError

_NOISE = ("Config search path", "See https://hydra.cc", "Set the environment variable")


def exit_with_error(err: NagoError) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with status 2."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", highlight=False,
                               soft_wrap=True)
    sys.exit(2)


def one_line(err: BaseException) -> str:
    """A Hydra / OmegaConf composition error as one line naming the setting."""
    lines: list[str] = []
    for line in str(err).splitlines():
        if line.startswith(_NOISE):
            break
        if line.startswith("\t") and lines:  # Hydra lists the available options one per line
            lines[-1] += (" " if lines[-1].endswith(":") else ", ") + line.strip()
        elif line.strip():
            lines.append(line.strip().rstrip("."))
    text = "; ".join(lines)
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        reason = str(getattr(cause, "msg", cause)).splitlines()[0]
        return f"{cause.full_key}: {reason} ({text})"
    return text


def check_command_line(config_name: str, args: Sequence[str]) -> None:
    """Compose ``conf/<config_name>.yaml`` with the command line's overrides and exit with one
    ``error:`` line if Hydra refuses them (unknown key, wrong type, unknown option, bad syntax).
    Hydra's own flags (``--multirun``, ``--cfg``, ...) and ``hydra.*`` overrides are left to it."""
    if any(arg.startswith("-") for arg in args):
        return
    overrides = [arg for arg in args if not arg.lstrip("+~").startswith("hydra.")]
    try:
        compose(config_name, overrides)
    except OverrideParseException as err:
        parser = OverridesParser.create()
        for arg in overrides:  # name the override Hydra could not parse
            try:
                parser.parse_overrides([arg])
            except OverrideParseException:
                exit_with_error(NagoError(f"{arg}: not a valid override ({one_line(err)})"))
        exit_with_error(NagoError(one_line(err)))
    except (HydraException, OmegaConfBaseException) as err:
        exit_with_error(NagoError(one_line(err)))
