"""Files that must survive crashes, full disks and hostile edits: safe JSON reading, durable atomic writes, and
append-only JSON-lines logs whose torn last line (a writer killed mid-line) never makes them unreadable.

- `read_json(path, error, what)`: any problem (missing, unreadable, not UTF-8, not JSON, nested too deeply, too
  big, not an object) becomes one `error` naming the file, never a raw exception.
- `write_text_atomic` / `fsync_tree`: data reaches the disk (fsync of the files and of their folder) before the
  rename that makes it visible, so a power loss after the rename cannot leave an empty file under the final name.
- `append_line` / `read_lines`: one JSON object per line, each line appended with a single `write` in append mode;
  readers skip unparsable lines (a warning names them) and `rewrite_lines` repairs a log atomically.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

from memorygan.errors import MemoryGANError, MemoryGANWarning

MAX_JSON_BYTES = 64 << 20          # no config of ours comes near this; a bigger file is refused before parsing


def read_json(path, error: type[MemoryGANError] = MemoryGANError, what: str = "JSON file",
              expect: type | None = dict) -> Any:
    """The decoded JSON of `path` (an object when `expect` is dict); `error` naming the file otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise error(f"{path}: {what} of {size / 2**20:.0f} MiB is too big (at most {MAX_JSON_BYTES >> 20} MiB)")
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except error:
        raise
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: {what} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise error(f"{path}: {what} is nested too deeply to parse") from None
    except (OSError, ValueError) as e:
        raise error(f"{path}: {what} is unreadable ({e.strerror if isinstance(e, OSError) else e})") from None
    if expect is not None and not isinstance(data, expect):
        raise error(f"{path}: {what} must be a JSON {'object' if expect is dict else expect.__name__}, "
                    f"got a JSON {_json_type(data)}")
    return data


def _json_type(x) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(x), type(x).__name__)


# ---------------------------------------------------------------------------------------------------- durability

def fsync_file(path) -> None:
    """Flush a closed file's data to the disk (Linux/macOS: fsync on a read-only descriptor flushes the inode)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Make a folder's entries (a rename into it, a new file) durable. A no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:                  # some filesystems refuse fsync on folders; nothing more can be done
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def fsync_tree(root) -> None:
    """fsync every file and folder under `root` (and `root`), deepest first."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_file(Path(dirpath) / name)
        fsync_dir(dirpath)


def jsonable(x):
    """Plain JSON values, the one rule of every JSON file memorygan writes: non-finite floats become null (strict
    JSON readers refuse NaN and Infinity), paths strings, numpy / torch scalars numbers, tuples lists."""
    import math

    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:  # numpy / torch scalars
        return jsonable(x.item())
    return x


def write_json(path, data, indent: int | None = 2) -> Path:
    """`data` as JSON (`jsonable`: non-finite floats as null) written atomically (`write_text_atomic`); the parent
    folder is created. The writer of every JSON record (metrics, summaries, settings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(jsonable(data), indent=indent, allow_nan=False) + "\n")


def write_text_atomic(path, text: str) -> Path:
    """Write `text` to `path` through a temporary sibling, fsync'ed before the rename; the folder after it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def disk_full(path, exc: BaseException | None = None, margin: int = 1 << 20) -> bool:
    """Whether a failed write to `path` is explained by a full disk: ENOSPC/EDQUOT, a message saying so (the
    writers of safetensors and torch wrap the errno in their own exceptions), or less than `margin` bytes left on
    its filesystem (torch.save may say only "file write failed")."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    if exc is not None and ("No space left on device" in str(exc) or "os error 28" in str(exc)):
        return True                       # safetensors and torch report ENOSPC inside their own messages
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < margin
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------- JSON lines

def append_line(path, row: dict, sync: bool = False, default: Callable | None = None) -> None:
    """Append one JSON line with a single write in append mode, so existing lines are never rewritten and a
    killed writer can at most leave one torn line at the end. When the file does not end with a newline (such a
    torn line), the new line starts on a line of its own. `sync`: fsync before returning."""
    path = Path(path)
    data = (json.dumps(row, default=default) + "\n").encode()
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path, warn: bool = True) -> list[dict]:
    """The JSON objects of a JSON-lines file ([] when it does not exist). Lines that do not parse as an object (a
    torn line left by a crash, a line mangled by hand) are skipped; with `warn` a `MemoryGANWarning` names them."""
    path = Path(path)
    if not path.is_file():
        return []
    rows, bad = _parse_lines(path.read_bytes())
    if bad and warn:
        where = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        warnings.warn(f"{path}: skipped {len(bad)} unreadable line(s) (line {where}; a write cut short by a "
                      f"crash leaves one at the end)", MemoryGANWarning, stacklevel=2)
    return rows


def _parse_lines(data: bytes) -> tuple[list[dict], list[int]]:
    rows, bad = [], []
    for i, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad.append(i)
    return rows, bad


def rewrite_lines(path, keep: Callable[[dict], bool] = lambda row: True) -> tuple[int, int]:
    """Rewrite a JSON-lines file atomically with only its readable rows for which `keep` is true (a torn last
    line is dropped). Returns (rows kept, lines dropped)."""
    path = Path(path)
    if not path.is_file():
        return 0, 0
    rows, bad = _parse_lines(path.read_bytes())
    kept = [r for r in rows if keep(r)]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(kept), len(rows) - len(kept) + len(bad)
