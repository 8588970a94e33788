"""Exceptions with messages meant for users (they name the file/argument and the problem)."""


class MemoryGANError(Exception):
    """Base class for user-facing errors; the CLI prints them without a traceback (exit code 2)."""


class ConfigError(MemoryGANError, ValueError):
    """An invalid model/training configuration; the message names the field."""


class CheckpointError(MemoryGANError, ValueError):
    """A file that is not a valid checkpoint of the expected kind."""


class DatasetError(MemoryGANError, ValueError):
    """An invalid or unreadable dataset."""


class OutputError(MemoryGANError, OSError):
    """An output that cannot be written (disk full, read-only or missing folder); the message names the path."""


class RunBusyError(MemoryGANError):
    """A run folder locked by another process; the message names the holder (pid, host, since when)."""


class MemoryGANWarning(UserWarning):
    """Something accepted but worth knowing (the CLI prints it as `memorygan CMD: warning: ...`)."""
