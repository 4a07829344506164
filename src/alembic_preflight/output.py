"""The only module besides the reporters (and output_progress.py, its bars) that writes to
the terminal: progress and errors go to stderr, so stdout stays for reports (and GitHub
workflow commands).

Every line is masked (the secrets `hide` was given, in every spelling) and survives any
text: a lone surrogate or a byte the terminal's encoding cannot show is replaced, never
raised (issue 15)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from urllib.parse import quote, quote_plus

from alembic_preflight.findings import CheckResult

MASK = "***"
_hidden: list[str] = []


# A secret shorter than this is not masked wherever it appears as text: a password `x`
# would mask every x of every line (and, told to GitHub, of the whole job's log), which
# hides nothing a reader could not guess. It is still masked where a URL shows it (see
# _URL_PASSWORD), the only place our output or a driver's message would print it.
MIN_MASKED = 4


def spellings(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Every way a secret reaches text: as is, percent-encoded as in a URL (`p%40ss`,
    with `/` kept or not, `+` for spaces as a form writes it), and escaped as in a libpq
    DSN (`password='it\\'s'`). The secrets as given first, in their order, then the other
    spellings; whoever replaces them must go longest first (`masked` does). Not those
    shorter than MIN_MASKED."""
    found = [s for s in secrets if len(s) >= MIN_MASKED]
    for secret in list(found):
        variants = (
            quote(secret, safe=""),
            quote(secret),
            quote_plus(secret),
            secret.replace("\\", "\\\\").replace("'", "\\'"),
        )
        found += [v for v in variants if v not in found]
    return tuple(dict.fromkeys(found))


def hide(secrets: tuple[str, ...]) -> None:
    """Mask these secrets in everything said on the terminal from now on."""
    _hidden[:] = spellings((*_hidden, *secrets))


# the password of any URL a message quotes (postgresql://app:PASSWORD@db/app): a migration
# that prints its own production URL must not print its password (issue 15)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)", re.IGNORECASE)


def masked(text: str, secrets: tuple[str, ...] | None = None) -> str:
    # longest first: a spelling that contains another is masked whole
    for s in sorted(_hidden if secrets is None else secrets, key=len, reverse=True):
        text = text.replace(s, MASK)
    return _URL_PASSWORD.sub(lambda m: m[1] + (m[2] if m[2] == MASK else MASK) + m[3], text)


# while progress bars hold the terminal (output_progress.Bars), lines are printed through
# them, above the bars: written past them, a line would be drawn over at the next refresh
_through: Callable[[str], None] | None = None


def divert(write: Callable[[str], None] | None) -> None:
    """Every line from now on to `write` (already masked); None: to stderr again."""
    global _through
    _through = write


def _say(text: str) -> None:
    line = masked(text) + "\n"
    stream = sys.stderr
    encoding = getattr(stream, "encoding", None) or "utf-8"
    line = line.encode(encoding, "replace").decode(encoding, "replace")
    through = _through
    if through is not None:
        through(line)
        return
    stream.write(line)
    stream.flush()


def progress(result: CheckResult) -> None:
    note = f" ({result.note})" if result.note and result.status.value == "skipped" else ""
    count = len(result.findings)
    found = f", {count} finding{'s' if count != 1 else ''}" if count else ""
    _say(
        f"alembic-preflight: {result.id}: {result.status.value} in {result.duration_s:.1f} s"
        f"{found}{note}"
    )


def info(message: str) -> None:
    _say(f"alembic-preflight: {message}")


def error(message: str) -> None:
    _say(f"alembic-preflight: error: {message}")
