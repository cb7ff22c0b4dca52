"""The content-addressed cache: read-only blobs under `<root>/files/ab/cdef...` keyed by BLAKE3.

Blobs are written atomically and never changed afterwards; a directory is stored as one blob per
file plus its JSON manifest. Restoring links or copies a blob into the workspace so that editing
the workspace file can never change the blob (reflink and copy by default; hardlink and symlink
are opt-in). Imports nothing of Pivot's but `pivot.errors`, `pivot.fs` and the store
itself.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from pivot import fs
from pivot.errors import CacheCorruptError, StoreError
from pivot.store import hashing
from pivot.store.hashing import DirectoryManifest

__all__ = ["DEFAULT_LINK_MODES", "LINK_MODES", "Cache", "VerifiedBlobs"]

LINK_MODES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_MODES = ("reflink", "copy")

_FICLONE = 0x40049409  # Linux ioctl: share the source's extents with the destination (CoW)
_BLOB_MODE = 0o444
_PARALLEL_AT = 16
_READ_WHOLE_BELOW = 1024 * 1024  # files smaller than this are read into memory once to store
_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EXDEV, errno.ENOSYS, errno.EPERM}
)
_Item = TypeVar("_Item")


class VerifiedBlobs(Protocol):
    """Remembers which files were hashed at which (inode, size, mtime): the state db."""

    def lookup(self, path: Path, st: os.stat_result) -> str | None: ...

    def record(self, path: Path, st: os.stat_result, digest: str) -> None: ...


class Cache:
    """Blobs under `root / "files"` (root is usually `.pivot/cache`)."""

    def __init__(
        self,
        root: Path,
        link_modes: Sequence[str] = DEFAULT_LINK_MODES,
        verified: VerifiedBlobs | None = None,
    ) -> None:
        unknown = [mode for mode in link_modes if mode not in LINK_MODES]
        if unknown or not link_modes:
            raise ValueError(
                f"unknown link modes {unknown or list(link_modes)}; use some of {list(LINK_MODES)}"
            )
        self.root = Path(root)
        self._files = os.path.abspath(self.root / "files")
        self.files_dir = Path(self._files)
        self.quarantine_dir = Path(os.path.abspath(self.root / "quarantine"))
        self.link_modes = tuple(link_modes)
        self.verified = verified
        self._unsupported: set[str] = set()  # modes this filesystem refused; skipped from now on

    # --- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        return Path(self._blob_name(digest))

    def _blob_name(self, digest: str) -> str:
        if not hashing.is_valid_hash(digest):
            raise ValueError(f"{digest!r} is not a content hash (64 lowercase hex characters)")
        return f"{self._files}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def add_file(self, path: Path, digest: str) -> None:
        """Store a copy of workspace file `path` (whose hash is `digest`); no-op if present."""
        blob = self.blob_path(digest)
        if blob.is_file() and self._intact(digest, blob):
            return
        with fs.map_os_errors(path, "store in the cache"), fs.atomic_output(blob) as temp:
            found = self._copy(Path(path), temp, allow_reflink=True)
            if found is not None and found != digest:
                raise StoreError(
                    f"'{path}' changed while it was being stored in the cache (it hashed to "
                    f"{digest}, then to {found}). Fix: make sure nothing else writes it "
                    "while Pivot runs, then run `pivot repro` again."
                )
            os.chmod(temp, _BLOB_MODE)

    def store_file(self, path: Path | str) -> str:
        """Hash workspace file `path`, store it, and return its hash. A small file is read once:
        the bytes hashed are the bytes stored (a larger one is streamed, see `add_file`)."""
        data = _read_small(path)
        if data is None:  # large, or grew while being read
            digest = hashing.hash_file(Path(path))
            self.add_file(Path(path), digest)
            return digest
        return self.add_bytes(data, source=path)

    def add_bytes(self, data: bytes, *, source: Path | str | None = None) -> str:
        """Store `data` as a blob (a blob there that does not hash right is replaced) and return
        its hash; errors name `source`, the file the bytes came from, when there is one."""
        digest = hashing.hash_bytes(data)
        blob = self._blob_name(digest)
        if self._intact(digest, Path(blob), data):
            return digest
        named, doing = (source, "store in the cache") if source else (blob, "write the cache blob")
        with fs.map_os_errors(named, doing):
            fs.atomic_write_bytes(blob, data, mode=_BLOB_MODE)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        """The content of a blob; CacheCorruptError if it is missing."""
        return self._read_blob(digest, "its content was asked for")

    def verify(self, digest: str) -> bool:
        """True if the blob exists and its content still hashes to `digest`."""
        blob = self.blob_path(digest)
        return blob.is_file() and self._intact(digest, blob)

    def checked_blob(self, digest: str, needed_by: str) -> Path:
        """The blob's path once its content is known to match its name (hashed on first use,
        then remembered by (inode, size, mtime) in `verified`). A missing blob, or a corrupt one
        (moved aside by `set_aside`), raises CacheCorruptError; `needed_by` says who needs it."""
        blob = self.blob_path(digest)
        if not blob.is_file():
            raise CacheCorruptError(self._missing_message(digest, needed_by))
        if not self._intact(digest, blob):
            raise self.set_aside(digest, needed_by)
        return blob

    def set_aside(self, digest: str, needed_by: str) -> CacheCorruptError:
        """Move a blob whose content does not match its name out of `files/` (into
        `quarantine/`, kept for inspection) and return the error that reports it.

        The one place a bad blob is handled: a caller may then re-create the content (re-run the
        stage, or fetch it again from a remote) and store it under its name afresh.
        """
        blob = self.blob_path(digest)
        moved = self.quarantine_dir / f"{digest}.{os.urandom(4).hex()}"
        try:
            moved.parent.mkdir(parents=True, exist_ok=True)
            os.replace(blob, moved)
            where = f"it was moved aside to {moved}"
        except OSError as error:
            where = f"it could not be moved aside ({error}); delete it by hand"
        return CacheCorruptError(
            f"cache blob {blob} is corrupt: its content does not hash to its name ({needed_by}); "
            f"{where}. Fix: `pivot repro` re-runs the stage that makes it (or pull it again "
            "from a remote)."
        )

    # --- directories --------------------------------------------------------------------------

    def add_directory(self, path: Path, manifest: DirectoryManifest) -> str:
        """Store every file of directory `path` listed in `manifest`, then the manifest itself."""
        root = Path(path)
        _run_all(lambda entry: self.add_file(root / entry[0], entry[1]), manifest.entries)
        return self.add_bytes(hashing.manifest_to_bytes(manifest))

    def load_manifest(self, digest: str) -> DirectoryManifest:
        """The manifest stored under `digest`; CacheCorruptError if missing or garbled."""
        data = self._read_blob(digest, "it is a directory manifest")
        if hashing.hash_bytes(data) != digest:
            raise self.set_aside(digest, "it is a directory manifest")
        try:
            return hashing.manifest_from_bytes(data)
        except ValueError as error:
            raise CacheCorruptError(
                f"directory manifest {digest} in the cache ({self.blob_path(digest)}) is "
                f"garbled: {error}. Fix: delete that file and run `pivot repro --force` on the "
                "stage that produces the directory (or pull it again from a remote)."
            ) from None

    # --- restoring ----------------------------------------------------------------------------

    def restore_file(self, digest: str, dest: Path, *, writable: bool = False) -> None:
        """Put the blob at `dest` atomically, linked or copied per `link_modes`.

        `writable=True` always makes a private writable copy (reflink or plain copy).
        """
        blob = self.blob_path(digest)
        dest = Path(dest)
        if not blob.is_file():
            raise CacheCorruptError(self._missing_message(digest, f"'{dest}' needs it"))
        if not os.path.islink(dest) and os.path.isdir(dest):
            with fs.map_os_errors(dest, "replace the directory"):
                fs.remove_path(dest)
        modes = ("reflink", "copy") if writable else self.link_modes
        with fs.map_os_errors(dest, "restore from the cache"), fs.atomic_output(dest) as temp:
            self._place(digest, temp, modes, f"'{dest}' needs it")
            if writable:
                os.chmod(temp, stat.S_IMODE(os.stat(temp).st_mode) | stat.S_IWUSR)

    def restore_directory(self, digest: str, dest: Path) -> None:
        """Make directory `dest` hold exactly the manifest's files (stale files are removed)."""
        manifest = self.load_manifest(digest)
        dest = Path(dest)
        with fs.map_os_errors(dest, "restore the directory from the cache"):
            if os.path.islink(dest) or (dest.exists() and not dest.is_dir()):
                fs.remove_path(dest)
            dest.mkdir(parents=True, exist_ok=True)
            _remove_stale(dest, {relative for relative, _digest in manifest})
        _run_all(lambda entry: self.restore_file(entry[1], dest / entry[0]), manifest.entries)

    # --- internals ----------------------------------------------------------------------------

    def _place(self, digest: str, temp: Path, modes: Sequence[str], needed_by: str) -> None:
        """Create `temp` from the blob with the first mode that works here; nothing is placed
        unless its content hashes to `digest` (a copy is hashed as it is made; a blob shared by
        a link is checked first, see `checked_blob`)."""
        blob = self.blob_path(digest)
        usable = [mode for mode in modes if mode not in self._unsupported] or ["copy"]
        for mode in usable:
            if mode == "copy":
                break
            try:
                _LINKERS[mode](self.checked_blob(digest, needed_by), temp)
                return
            except OSError as error:
                fs.remove_path(temp)
                if error.errno not in _UNSUPPORTED:
                    raise
                self._unsupported.add(mode)
        if self._copy(blob, temp, allow_reflink=False) != digest:
            raise self.set_aside(digest, needed_by)

    def _copy(self, source: Path, temp: Path, *, allow_reflink: bool) -> str | None:
        """Copy `source` to the new file `temp`; the hash of what a plain copy wrote (None for a
        reflink, which shares the source's extents instead of reading them)."""
        if allow_reflink and "reflink" not in self._unsupported:
            try:
                _reflink(source, temp)
                return None
            except OSError as error:
                fs.remove_path(temp)
                if error.errno not in _UNSUPPORTED:
                    raise
                self._unsupported.add("reflink")
        with open(fs.create_new_file(temp), "wb", closefd=True) as handle:
            return hashing.copy_hashing(source, handle)

    def _intact(self, digest: str, blob: Path, data: bytes | None = None) -> bool:
        """Whether the blob's content hashes to `digest`; a blob checked before and unchanged
        since (same inode, size, mtime) is not read again. `data`: the bytes at hand that hash
        to `digest` (a re-run's output is mostly in the cache already), compared with the
        blob's instead of hashing it."""
        try:
            st = os.stat(blob)
            if data is not None and (not stat.S_ISREG(st.st_mode) or st.st_size != len(data)):
                return False
            if self.verified is not None and self.verified.lookup(blob, st) == digest:
                return True
            if data is not None:
                if fs.read_bytes(blob) != data:
                    return False
            elif hashing.hash_file(blob) != digest:
                return False
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        if self.verified is not None:
            self.verified.record(blob, st, digest)
        return True

    def _read_blob(self, digest: str, context: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise CacheCorruptError(self._missing_message(digest, context)) from None

    def _missing_message(self, digest: str, context: str) -> str:
        return (
            f"cache blob {digest} is missing ({context}; expected at {self.blob_path(digest)}). "
            "Fix: pull it from a remote with `pivot pull`, or re-run the stage that produced it "
            "with `pivot repro --force <stage>`."
        )


def _reflink(source: Path, temp: Path) -> None:
    import fcntl  # Linux/macOS only; imported here so the module loads everywhere

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    with open(source, "rb") as src:
        fd = os.open(temp, flags, 0o666)
        try:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
        finally:
            os.close(fd)


def _hardlink(blob: Path, temp: Path) -> None:
    os.link(blob, temp)


def _symlink(blob: Path, temp: Path) -> None:
    os.symlink(blob, temp)


_LINKERS: dict[str, Callable[[Path, Path], None]] = {
    "reflink": _reflink,
    "hardlink": _hardlink,
    "symlink": _symlink,
}


def _remove_stale(root: Path, keep: set[str]) -> None:
    """Delete every entry under `root` that is not a kept file nor a directory leading to one."""
    keep_dirs = {relative.rsplit("/", 1)[0] for relative in keep if "/" in relative}
    keep_dirs |= {parent for directory in keep_dirs for parent in _parents(directory)}
    for directory, subdirs, files in os.walk(root):
        prefix = os.path.relpath(directory, root).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in files:
            if prefix + name not in keep:
                fs.remove_path(Path(directory, name))
        for name in list(subdirs):
            if prefix + name not in keep_dirs or os.path.islink(os.path.join(directory, name)):
                fs.remove_path(Path(directory, name))
                subdirs.remove(name)


def _parents(relative: str) -> Iterable[str]:
    parts = relative.split("/")
    return ("/".join(parts[:count]) for count in range(1, len(parts)))


def _run_all(function: Callable[[_Item], None], items: Sequence[_Item]) -> None:
    """Call `function` on every item, in threads when there are many (file I/O releases the GIL)."""
    if len(items) < _PARALLEL_AT:
        for item in items:
            function(item)
        return
    from concurrent.futures import ThreadPoolExecutor  # only paid for when used

    with ThreadPoolExecutor() as pool:
        for _ in pool.map(function, items):
            pass


def _read_small(path: Path | str) -> bytes | None:
    """The content of file `path` if it is smaller than `_READ_WHOLE_BELOW`, else None."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size >= _READ_WHOLE_BELOW:
            return None
        data = os.read(fd, size + 1)  # the whole file in one read...
        if len(data) > size:  # ...unless it grew meanwhile: read on to its end (or the limit)
            while len(data) < _READ_WHOLE_BELOW and (chunk := os.read(fd, _READ_WHOLE_BELOW)):
                data += chunk
    finally:
        os.close(fd)
    return data if len(data) < _READ_WHOLE_BELOW else None
