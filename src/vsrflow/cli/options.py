"""Flags shared by several commands, spelled once: the parser class (no abbreviations, "did you
mean" for unknown flags), the encoder preset, and deprecated spellings that still work."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

#: The encoder speed preset flag of every command that encodes (x264/x265 ``-preset``).
ENCODER_PRESET = "--encoder-preset"
#: Earlier spellings (upscale/submit, bench): accepted, hidden, with a warning.
OLD_ENCODER_PRESETS = ("--preset-x264", "--x264-preset")


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


class VsrParser(argparse.ArgumentParser):
    """An ArgumentParser that takes only whole flag names (``--pre`` is not ``--preset``) and
    answers an unknown flag with the closest real one. Sub-commands are built with the same class
    (``add_subparsers`` uses ``type(self)``), so every command behaves alike."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if extras:
            # Reported by the innermost parser that saw them (a command's own usage and flags);
            # vsrflow never takes arguments it does not know.
            self.error(self.unknown_message(extras))
        return ns, extras

    def known_flags(self) -> dict[str, str]:
        """Every long flag of this parser -> the spelling to suggest (a deprecated alias -> its new
        name; hidden flags that are not aliases are left out)."""
        flags: dict[str, str] = {}
        for action in self._actions:
            for flag in action.option_strings:
                if not flag.startswith("--"):
                    continue
                if isinstance(action, DeprecatedAlias):
                    flags[flag] = action.new
                elif action.help is not argparse.SUPPRESS:
                    flags[flag] = flag
        return flags

    def unknown_message(self, extras: Sequence[str]) -> str:
        known = self.known_flags()
        parts = []
        for extra in extras:
            name = extra.split("=", 1)[0]
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f" (did you mean {known[close[0]]}?)" if name.startswith("-") and close else ""
            parts.append(extra + hint)
        return "unrecognized arguments: " + " ".join(parts)

    def error(self, message: str) -> NoReturn:
        choice = _INVALID_CHOICE.search(message)
        if choice is not None:
            options = [c.strip().strip("'") for c in choice["choices"].split(",")]
            close = difflib.get_close_matches(choice["value"], options, n=1, cutoff=0.5)
            if close:
                message += f"; did you mean {close[0]!r}?"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


class DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: stores into the new flag's ``dest`` and warns once on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option: str | None = None,
    ) -> None:
        print(f"vsrflow: warning: {option} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_accept_damaged(parser: argparse.ArgumentParser) -> None:
    """``--accept-damaged`` (dest ``accept_damaged``) of ``upscale`` and ``submit``."""
    parser.add_argument(
        "--accept-damaged",
        action="store_true",
        help="upscale a source that holds less video than its container declares (cut short) as "
        "far as it goes, and report what was lost; by default such a source is refused",
    )


def add_encoder_preset(parser: argparse.ArgumentParser, default: str, help_text: str) -> None:
    """``--encoder-preset`` (dest ``encoder_preset``), plus the old spellings as hidden aliases."""
    parser.add_argument(ENCODER_PRESET, dest="encoder_preset", default=default, help=help_text)
    for old in OLD_ENCODER_PRESETS:
        parser.add_argument(
            old, dest="encoder_preset", action=DeprecatedAlias, new=ENCODER_PRESET, help=argparse.SUPPRESS
        )
