"""Run directories, seeding, logging and thread settings: the one place each is done."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filingcontrast.config import RunConfig, dump_toml
from filingcontrast.errors import UserError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when imported) from one number."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def set_threads(threads: int = 0, processes: int = 1) -> int:
    """Torch intra-op threads; 0 = the CPUs this process may run on (its affinity, which
    respects container limits, unlike os.cpu_count), shared evenly by `processes`."""
    import torch

    if threads <= 0:
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        threads = max(1, (usable or os.cpu_count() or 2) // max(1, processes))
    torch.set_num_threads(threads)
    return threads


class RunDir:
    """`runs/<name>/`: resolved `config.toml`, `log.txt`, `metrics.jsonl` and the stage artifacts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, config: RunConfig) -> RunDir:
        run = cls(config.run_dir)
        run.write_config(config)
        return run

    def write_config(self, config: Any) -> None:
        atomic_write_text(self.path / "config.toml", dump_toml(config))

    def log(self, message: str, echo: bool = False) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with (self.path / "log.txt").open("a") as fh:
            fh.write(line + "\n")
        if echo:
            print(message, file=sys.stderr)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with (self.path / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")


ALLOCATOR_ENV = "FILINGCONTRAST_ALLOCATOR"
"""Environment variable choosing the memory allocator of the model commands: `mimalloc`
(default where the `cmeel-mimalloc` wheel is installed, Linux) or `system` (glibc malloc)."""
ALLOCATORS = ("mimalloc", "system")


def mimalloc_path() -> str | None:
    """libmimalloc.so from the `cmeel-mimalloc` wheel (a Linux dependency), or None."""
    from importlib.metadata import PackageNotFoundError, files

    try:
        found = files("cmeel-mimalloc") or []
    except PackageNotFoundError:
        return None
    libs = [f for f in found if f.name == "libmimalloc.so"]
    path = Path(libs[0].locate()) if libs else None
    return str(path.resolve()) if path and path.is_file() else None


RESTARTED_ENV = "_FILINGCONTRAST_RESTARTED"
"""Set for a process restarted by `reexec_with_allocator`, to the JSON of the variables the
restart changed, which the restarted process puts back: one restart at most, and whatever it
starts (subprocesses) sees the user's environment."""


def allocator_env(env: dict[str, str] | None = None, loaded: str | None = None) -> dict | None:
    """The environment to restart a process of ours in, or None to go on as it is. `env`
    defaults to ours and `loaded` to `active_allocator()`.

    - `mimalloc` (the default): mimalloc preloaded, on Linux with the `cmeel-mimalloc` wheel,
      unless it is loaded already or the user preloads libraries of their own (a malloc they
      preload is theirs to choose, and a sanitizer must come first).
    - `system`: mimalloc taken out of LD_PRELOAD when it is loaded (e.g. inherited from a
      process that preloaded it).

    Why mimalloc: a training step allocates blocks of many sizes (2048 x 576 and 2048 x 1536
    fp32 activations, attention buffers); glibc malloc keeps freed ones in heaps that fragment,
    so peak RSS grows to about 2.5x what the step holds (3.5 GB at a 2048-token row with
    checkpointing), and mapping each large block instead (`lean_allocator`) costs a page fault
    per touch. mimalloc reuses freed blocks by size class: 1.4 GB at the same speed
    (bench/train_throughput.py, docs/training.md). `MIMALLOC_PURGE_DELAY=-1` (never hand
    memory back while the process runs) measured fastest at no cost in peak RSS; a value the
    user set wins."""
    env = dict(os.environ if env is None else env)
    choice = env.get(ALLOCATOR_ENV, "mimalloc").strip() or "mimalloc"
    if choice not in ALLOCATORS:
        raise UserError(f"${ALLOCATOR_ENV}={choice!r}: expected one of {', '.join(ALLOCATORS)}")
    loaded = active_allocator() if loaded is None else loaded
    preload = [p for p in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    others = [p for p in preload if "libmimalloc" not in Path(p).name]
    changed = {k: env.get(k) for k in ("LD_PRELOAD", "MIMALLOC_PURGE_DELAY")}
    if choice == "system":
        if loaded != "mimalloc" and others == preload:
            return None
        new = others
    else:
        lib = mimalloc_path() if sys.platform.startswith("linux") else None
        if lib is None or loaded == "mimalloc" or others:
            return None
        new = [lib]
        env.setdefault("MIMALLOC_PURGE_DELAY", "-1")
    env[RESTARTED_ENV] = json.dumps(changed)
    if new:
        env["LD_PRELOAD"] = ":".join(new)
    else:
        env.pop("LD_PRELOAD", None)
    return env


def reexec_with_allocator() -> None:
    """Restart this process as it was started (`sys.orig_argv`: the same interpreter flags and
    `-m filingcontrast` or console script) in `allocator_env()`, or go on when that is None.
    Only those two entries restart: replaying anything else (a script of the user's that calls
    `cli.main()`, `python -c`, stdin) could repeat or lose work. A preload has to be in place
    before the process starts: replacing malloc later would leave blocks that glibc allocated
    to be freed by mimalloc. Same PID, so `accelerate launch` and job control see the same
    process. The restarted process puts the user's variables back (RESTARTED_ENV)."""
    if RESTARTED_ENV in os.environ:
        for key, value in json.loads(os.environ.pop(RESTARTED_ENV)).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return
    entry = Path(sys.argv[0])
    ours = entry.name == "filingcontrast" or entry.parts[-2:] == ("filingcontrast", "__main__.py")
    env = allocator_env() if ours and entry.is_file() and sys.executable else None
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError as exc:
        print(f"note: cannot restart with the allocator ({exc}); going on", file=sys.stderr)


def active_allocator() -> str:
    """`mimalloc` when this process has it loaded, else `system`."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in maps else "system"


LEAN_MMAP_THRESHOLD = 4 << 20
"""Bytes from which `lean_allocator` maps each block separately (a 2048 x 576 fp32 activation is 4.7 MB)."""


def lean_allocator(threshold: int = LEAN_MMAP_THRESHOLD) -> bool:
    """Make glibc malloc map blocks of `threshold` bytes and more with mmap and unmap them when
    freed (mallopt M_MMAP_THRESHOLD, which also stops glibc raising the threshold by itself).
    By default glibc moves such blocks into its heap after the first free, where a training
    step's mix of sizes fragments it: measured at 2048-token rows with checkpointing, peak RSS
    3.7 GB instead of 1.4-1.5 GB, at the price of page faults on every large allocation (a step
    ~30 % slower). Process-wide; False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, int(threshold)))


def hash_file(h: Any, path: Path) -> None:
    """Feed a file's bytes to the hashlib object `h` in 4 MiB chunks (never the whole file)."""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 via a temp file, flushed to disk, then rename: a reader (or a restart after a
    crash) never sees a half-written file, and a failed write leaves no temp file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_json(path: str | Path, missing_ok: bool = False) -> dict | None:
    """A JSON object from a file; None when missing and `missing_ok`. Missing, invalid or
    non-object files are one-line `UserError`s naming the path."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise UserError(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object")
    return obj


def check_field_types(path: Path, obj: dict, types: dict[str, tuple[type, ...]]) -> None:
    """UserError naming the first field of `obj` (read from `path`) whose value is not of its
    type in `types`; fields it lacks are left to their readers' defaults."""
    for field, allowed in types.items():
        if field not in obj:
            continue
        value = obj[field]
        wrong_bool = isinstance(value, bool) and bool not in allowed  # bool is an int subclass
        if wrong_bool or not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise UserError(f"{path}: field {field}: expected {names}, got {value!r}")


def read_utf8(path: Path, advice: str) -> str:
    """A text file's content (a UTF-8 BOM dropped); not UTF-8 is a one-line `UserError`
    naming the byte, followed by `advice`."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); {advice}") from None


def iter_jsonl(path: str | Path, torn_tail_ok: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file.

    A line that is not a JSON object is a one-line `UserError` naming `path:line`. With
    `torn_tail_ok`, a broken *last* line (a writer killed mid-line, e.g. a live metrics.jsonl) is
    skipped instead."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A writer killed inside a multi-byte character leaves "unexpected end of data": the
        # torn last line, dropped below. Anything else is not a JSON-lines file.
        if not (torn_tail_ok and exc.reason == "unexpected end of data"):
            raise UserError(
                f"{path}: not UTF-8 text (byte {exc.start}); expected JSON lines"
            ) from None
        text = data[: exc.start].decode("utf-8-sig")
    # Line breaks are "\n", "\r\n" or "\r" (which JSON never holds raw inside a string), not
    # what str.splitlines also breaks at: U+2028 and U+0085, legal raw inside JSON strings (and
    # our writers leave them raw: ensure_ascii=False).
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn_tail_ok and n == len(lines):
                return
            raise UserError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{n}: expected a JSON object per line")
        yield n, obj
