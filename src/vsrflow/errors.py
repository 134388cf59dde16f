"""The one error tree of vsrflow.

Every message names the input that failed and what to do about it. The CLI maps
:class:`InputError` to exit code 2 and every other :class:`VsrError` to exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence


class VsrError(Exception):
    """Base class: a failure vsrflow understood and can explain in one line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InputError(VsrError):
    """Bad media, model id, option or config supplied by the user. Never retried."""


class TransientError(VsrError):
    """Throttling, a warming endpoint, a busy resource: retrying with backoff may succeed."""


class ModelError(VsrError):
    """A model or weight file that cannot be built, loaded or verified."""


class ExternalToolError(VsrError):
    """An external program (ffmpeg, pip, ...) failed.

    Keeps the argument list, exit code and the tail of stderr so the message is actionable.
    """

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stderr: str,
        *,
        what: str,
        hint: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        tail_lines = [ln for ln in stderr.strip().splitlines() if ln.strip()][-8:]
        self.stderr_tail = "\n".join(tail_lines)
        message = f"{what}: {self.argv[0]} exited with code {returncode}"
        if self.stderr_tail:
            message += f"; last output:\n{self.stderr_tail}"
        super().__init__(message, hint=hint)
