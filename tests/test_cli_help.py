"""Every subcommand and every argument of `memorygan` says what it is for (issue 30: several --help entries were
empty), and every --help renders."""
import argparse

import pytest

from memorygan.cli import build_parser


def _walk(parser, path):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in a._choices_actions}
            for name, sub in a.choices.items():
                yield path + [name], None, helps.get(name)
                yield from _walk(sub, path + [name])
        elif not isinstance(a, argparse._HelpAction):
            yield path, a, a.help


def test_every_argument_has_help():
    missing = [" ".join(path) + " " + ("/".join(a.option_strings) or a.dest if a is not None else "(command)")
               for path, a, text in _walk(build_parser(), ["memorygan"]) if not text]
    assert missing == []


def test_every_help_renders(capsys):
    commands = sorted({tuple(path) for path, a, _ in _walk(build_parser(), [])})
    assert ("biggan", "train") in commands and ("edit", "learn") in commands
    for cmd in commands:
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args(list(cmd) + ["--help"])
        assert e.value.code == 0
    assert "%(default)s" not in capsys.readouterr().out
