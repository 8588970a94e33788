"""Exceptions with messages meant for users (they name the file/argument and the problem)."""


class MemoryGANError(Exception):
    """Base class for user-facing errors; the CLI prints them without a traceback (exit code 2)."""


class ConfigError(MemoryGANError, ValueError):
    """An invalid model/training configuration; the message names the field."""


class CheckpointError(MemoryGANError, ValueError):
    """A file that is not a valid checkpoint of the expected kind."""


class DatasetError(MemoryGANError, ValueError):
    """An invalid or unreadable dataset."""
