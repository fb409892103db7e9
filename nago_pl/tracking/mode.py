"""Decide how W&B runs: online with credentials, offline without, never a login prompt."""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from nago_pl.errors import NagoError

#: The W&B project of runs and sweeps when neither the config nor WANDB_PROJECT names one.
DEFAULT_PROJECT = "nago-pl"

DEFAULT_HOST = "https://api.wandb.ai"
MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
         "disabled": "disabled", "shared": "shared"}


def import_wandb(what: str = "logger=wandb") -> ModuleType:
    """The ``wandb`` module, or a one-line :class:`NagoError` naming the fix."""
    try:
        import wandb
    except ImportError:
        raise NagoError(f"{what} needs the wandb package: pip install wandb") from None
    return wandb


def wandb_installed() -> bool:
    """Whether ``import wandb`` works."""
    try:
        import_wandb()
    except NagoError:
        return False
    return True


def has_credentials() -> bool:
    """Whether W&B could authenticate without asking: ``WANDB_API_KEY``, an identity token file,
    or a netrc entry for the server (``$WANDB_BASE_URL``; ``wandb login`` writes it). Reads files
    and the environment only, never the network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_HOST).netloc
    path = os.environ.get("NETRC") or Path.home() / ".netrc"
    try:
        return bool(host) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(requested: str | None, where: str = "logger.mode") -> str:
    """The W&B mode to run in: ``requested`` (else ``$WANDB_MODE``) if given, else online with
    credentials and offline without. Online without credentials raises :class:`NagoError`
    (W&B would otherwise wait for an API key on stdin)."""
    if not requested and os.environ.get("WANDB_MODE"):
        requested, where = os.environ["WANDB_MODE"], "WANDB_MODE"
    if not requested:
        return "online" if has_credentials() else "offline"
    mode = MODES.get(str(requested).lower())
    if mode is None:
        raise NagoError(f"{where}={requested}: not a W&B mode; allowed: online, offline, disabled")
    if mode in ("online", "shared") and not has_credentials():
        raise NagoError(f"{where}={requested} but no W&B credentials: run `wandb login` (or set "
                        "WANDB_API_KEY), or use WANDB_MODE=offline")
    return mode


_NOTICED: set[str] = set()


def notice(message: str, topic: str | None = None) -> None:
    """Print ``message`` on stderr once per process and ``topic`` (default: the message)."""
    topic = topic or message
    if topic in _NOTICED:
        return
    _NOTICED.add(topic)
    print(message, file=sys.stderr, flush=True)
