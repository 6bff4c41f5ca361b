"""Safety rails for chaos: the kube-context allow-list and the dry-run rendering.

Pure decisions and formatting, no cluster I/O: the drivers call :func:`check_allowed` before they
create anything, and :func:`render_dry_run` to show what would have been injected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import yaml

from pytest_hftk8s.errors import ChaosRefused

if TYPE_CHECKING:
    from pytest_hftk8s.chaos.run import ChaosRun

__all__ = ["ALWAYS_ALLOWED", "EMULATED_CONTEXT", "check_allowed", "render_dry_run"]

#: The embedded local cluster is this machine's own; chaos there cannot hurt anyone else.
#: The context ``--hft-cluster=emulated`` writes: the local cluster behind an emulated API.
EMULATED_CONTEXT = "hftk8s-emulated"
#: Contexts whose pods are this machine's own processes, so chaos there is never someone else's.
ALWAYS_ALLOWED = frozenset({"local", EMULATED_CONTEXT})


def check_allowed(*, context: str, allowed: Iterable[str], what: str) -> None:
    """Raise :class:`ChaosRefused` unless ``context`` is ``local`` or explicitly allowed."""
    allowed_set = {a.strip() for a in allowed if a and a.strip()}
    if context in ALWAYS_ALLOWED or context in allowed_set:
        return
    listed = ", ".join(sorted(allowed_set)) or "none"
    raise ChaosRefused(
        f"refusing to inject {what} into kube context {context!r}: destructive chaos runs only in "
        f"contexts listed with --hft-allow-context (allowed: {listed}; 'local' and 'emulated' always are). If "
        f"{context!r} is a disposable test cluster, pass --hft-allow-context={context}; to only see the "
        f"objects, use --hft-chaos-dry-run."
    )


def render_dry_run(objects: Iterable[Mapping[str, Any]]) -> str:
    """The objects as one multi-document YAML, as ``kubectl apply --dry-run=client -o yaml`` shows."""
    docs = [yaml.safe_dump(dict(obj), sort_keys=False) for obj in objects]
    return "---\n" + "---\n".join(docs)


@contextlib.contextmanager
def dry_run(run: ChaosRun, *, echo: Callable[[str], None]) -> Iterator[ChaosRun]:
    """Print ``run``'s object instead of injecting it; the run still gets a window for the report."""
    echo(render_dry_run([run.object]))
    try:
        yield run
    finally:
        run.ended_at = time.time()
