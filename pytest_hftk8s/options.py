"""The ``hftk8s`` option group: registers :data:`~pytest_hftk8s.settings.OPTIONS` with pytest's
parser (each with its ini key) and resolves them into :class:`~pytest_hftk8s.settings.HftSettings`.

Wiring only: values are parsed by the settings module's typed parsers, whose errors become
``pytest.UsageError`` here. No I/O, no cluster, no subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.settings import OPTIONS, HftSettings, resolve

__all__ = ["OPTIONS", "add_options", "settings_from"]


def _usage(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` that reports a bad value as a usage error, like pytest-xdist's."""

    def parse_or_fail(value: str) -> Any:
        try:
            return parse(value)
        except ConfigError as e:
            raise pytest.UsageError(str(e)) from e

    parse_or_fail.__name__ = getattr(parse, "__name__", "value")
    return parse_or_fail


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("hftk8s", "HFT platform on Kubernetes: deploy, gate, load, chaos, SLOs")
    for opt in OPTIONS:
        text = f"{opt.help} [env {opt.env}, ini {opt.dest}]"
        kind = _usage(opt.parse) if opt.parse is not None else None
        metavar = opt.dest.upper()[4:]
        if opt.is_flag:
            group.addoption(opt.flag, action="store_true", dest=opt.dest, default=None, help=text)
        elif opt.repeatable:
            group.addoption(
                opt.flag, dest=opt.dest, default=None, action="append", type=kind, metavar=metavar, help=text
            )
        else:
            group.addoption(opt.flag, dest=opt.dest, default=None, type=kind, metavar=metavar, help=text)
        parser.addini(opt.dest, f"{opt.help} (ini equivalent of {opt.flag})", type="string", default="")


def settings_from(config: pytest.Config) -> HftSettings:
    """The session's settings; a bad value or combination is a ``pytest.UsageError``."""
    flags = {opt.dest: config.getoption(opt.dest) for opt in OPTIONS}
    ini = {opt.dest: str(config.getini(opt.dest) or "") for opt in OPTIONS}
    try:
        return resolve(flags, ini, rootpath=config.rootpath)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
