"""The README documents every command a user can run (a newcomer found `memorygan generate` missing)."""
import argparse
import re
from pathlib import Path

from memorygan.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _leaf_commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from _leaf_commands(sub, prefix + (name,))
                else:
                    yield prefix + (name,)


def _documented(command: tuple, rows: list[str]) -> bool:
    """`memorygan GROUP NAME` in a command-table row, NAME possibly among alternatives (`compose\\|mix`) or after
    a slash (`data check DIR` / `preview DIR`)."""
    group, name = command[:-1], command[-1]
    head = "memorygan " + " ".join(group)
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    return any(head in row and word.search(re.split(r"(?<!\\)\|", row)[1]) for row in rows)


def test_every_command_is_in_the_readme_command_table():
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `memorygan ")]
    commands = list(_leaf_commands(build_parser()))
    assert ("generate",) in commands and ("edit", "report") in commands
    missing = [" ".join(c) for c in commands if not _documented(c, rows)]
    assert not missing, f"commands missing from the README's command table: {missing}"
