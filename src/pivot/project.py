"""The project: its root (the top-most directory holding `.pivot/`), layout and configuration.

A `Project` value is found once and passed down; nothing here is global. Imports of Pivot:
`pivot.errors` and the store (lock file paths, link modes) only.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pivot.errors import AlreadyInitializedError, ConfigError, NotInitializedError
from pivot.fs import PIVOT_DIR
from pivot.store import lock
from pivot.store.cache import DEFAULT_LINK_MODES, LINK_MODES

__all__ = [
    "ClusterConfig",
    "Config",
    "Project",
    "edit_config",
    "ensure_ignored",
    "find_root",
    "ignore_matcher",
    "init_project",
    "load_project",
    "parse_executor",
    "remember_stage_names",
    "remembered_stage_names",
]

LOCK_FILE = "lock"  # `.pivot/lock`: the project lock held by repro/run/checkout/commit

_DEFAULT_CONFIG = """\
# Pivot project configuration (committed).
cache:
  # How outputs are placed in the workspace from the cache, tried in order.
  # reflink and copy never let a workspace edit touch the cache; hardlink/symlink save space.
  link: [reflink, copy]
# Parallel stages for `pivot repro` (null: the number of CPUs available to this process).
jobs: null
fingerprint:
  # Also record versions of third-party packages a stage's code reaches.
  packages: false
"""

_GITIGNORE = (
    "/cache/\n/state.db\n/state.db-*\n/state.db.*\n/tmp/\n/lock\n/logs/\n/config.local.yaml\n"
    "/runs/\n/report/\n/pycache/\n/noop-*\n"
)
_REMOTE_KEYS = ("default_remote", "remotes")
"""Top-level config keys that `pivot remote ...` rewrites (the rest of the file is kept)."""

_PIVOTIGNORE = """\
# Paths Pivot never treats as data (gitignore syntax).
.git/
__pycache__/
*.pyc
.venv/
"""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings from `.pivot/config.yaml`, validated."""

    link_modes: tuple[str, ...] = DEFAULT_LINK_MODES
    jobs: int | None = None
    fingerprint_packages: bool = False
    remotes: Mapping[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)
    """name -> settings (`url`, and S3 options), config.local.yaml's merged over config.yaml's."""
    default_remote: str | None = None
    executor: str = "local"
    """Where `repro` runs stages: `local`, `dask` (a local cluster) or a scheduler address."""
    cluster: ClusterConfig = dataclasses.field(default_factory=lambda: ClusterConfig())


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """The `cluster:` settings: which remote moves the data, and how code reaches workers."""

    remote: str | None = None  # None: the default remote
    upload_code: bool = True  # `code: upload` (default) or `code: installed`


@dataclasses.dataclass(frozen=True)
class Project:
    """A Pivot project rooted at `root`."""

    root: Path
    config: Config

    @property
    def pivot_dir(self) -> Path:
        return self.root / PIVOT_DIR

    @property
    def cache_dir(self) -> Path:
        return self.pivot_dir / "cache"

    @property
    def state_db_path(self) -> Path:
        return self.pivot_dir / "state.db"

    @property
    def config_path(self) -> Path:
        return self.pivot_dir / "config.yaml"

    @property
    def local_config_path(self) -> Path:
        """Per-machine settings and secrets (git-ignored)."""
        return self.pivot_dir / "config.local.yaml"

    @property
    def stages_dir(self) -> Path:
        return self.pivot_dir / "stages"

    @property
    def pipeline_file(self) -> Path:
        return self.root / "pipeline.py"

    def lock_file(self, stage: str, state_dir: Path | None = None) -> Path:
        """A stage's lock file: in its pipeline's state dir when that lies inside the project,
        else in `.pivot/`."""
        return self.locks_dir(state_dir) / lock.lock_name(stage)

    def lock_path(self, stage: str, state_dir: Path | None = None) -> str:
        """`lock_file` as a string, its directory worked out once per state dir (planning and
        running N stages ask N times)."""
        folders = self._lock_folders
        folder = folders.get(state_dir)
        if folder is None:
            folder = folders[state_dir] = str(self.locks_dir(state_dir))
        return os.path.join(folder, lock.lock_name(stage))

    @functools.cached_property
    def _lock_folders(self) -> dict[Path | None, str]:
        return {}

    def locks_dir(self, state_dir: Path | None = None) -> Path:
        """The directory of the lock files of a pipeline whose state dir is `state_dir` (see
        `lock_file`)."""
        if state_dir is None or not state_dir.is_relative_to(self.root):
            state_dir = self.pivot_dir
        return lock.lock_dir(state_dir)

    @property
    def stage_names_file(self) -> Path:
        """The stage names as last loaded (for shell completion without importing anything)."""
        return _stage_names_file(self.root)


def _stage_names_file(root: Path) -> Path:
    return root / PIVOT_DIR / "tmp" / "stage-names"


def remember_stage_names(project: Project, names: tuple[str, ...]) -> None:
    """Keep the stage names for shell completion; written only when they changed."""
    text = "".join(f"{name}\n" for name in names)
    path = project.stage_names_file
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_name(f".stage-names.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:  # a read-only project still works; completion just knows less
        return


def remembered_stage_names(root: Path) -> list[str]:
    """Stage names for completion: the remembered list, else the names of lock files."""
    try:
        return _stage_names_file(root).read_text(encoding="utf-8").split()
    except OSError:
        stages = root / PIVOT_DIR / "stages"
        return sorted(p.name[: -len(".lock")] for p in stages.glob("*.lock"))


def ignore_matcher(root: Path) -> Callable[[str], bool] | None:
    """A predicate over project-relative POSIX paths from `.pivotignore` (gitignore syntax)."""
    try:
        lines = (root / ".pivotignore").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec.match_file


def find_root(start: Path | None = None) -> Path:
    """The top-most ancestor of `start` (default: cwd) that holds `.pivot/`."""
    here = Path(os.path.abspath(start or Path.cwd()))
    found = [p for p in (here, *here.parents) if (p / PIVOT_DIR).is_dir()]
    if not found:
        raise NotInitializedError(
            f"not a Pivot project: no {PIVOT_DIR}/ in {here} or any parent directory. "
            "Run `pivot init` in your project's root directory"
        )
    return found[-1]


def _read_document(path: Path) -> dict[str, Any]:
    """The mapping a YAML config file holds ({} if the file is missing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if text == _DEFAULT_CONFIG:
        return {}  # the file `pivot init` wrote: skip importing a YAML parser
    import yaml

    try:
        data: Any = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(
            f"{path} is not valid YAML: {error}. Fix it or re-run `pivot init --force`"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _merge_local(data: dict[str, Any], local: dict[str, Any], path: Path) -> dict[str, Any]:
    """config.local.yaml over config.yaml: settings of a remote are merged key by key."""
    merged = {**data, **{key: value for key, value in local.items() if key != "remotes"}}
    remotes = {name: dict(value) for name, value in _remotes_of(data, path).items()}
    for name, value in _remotes_of(local, path).items():
        remotes[name] = {**remotes.get(name, {}), **value}
    if remotes:
        merged["remotes"] = remotes
    return merged


def _remotes_of(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    remotes = data.get("remotes") or {}
    if not isinstance(remotes, dict) or not all(isinstance(v, dict) for v in remotes.values()):
        raise ConfigError(f"{path}: remotes must map each remote's name to its settings")
    return remotes


def _read_config(path: Path, local_path: Path) -> Config:
    data = _read_document(path)
    local = _read_document(local_path)
    return _parse_config(_merge_local(data, local, local_path) if local else data, path)


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """A nested group of settings (`cache:`, `fingerprint:`); absent or empty is {}."""
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: {name} must be a mapping of settings (e.g. `{name}:` followed by indented "
            f"`key: value` lines), got {section!r}"
        )
    return section


def _parse_config(data: dict[str, Any], path: Path) -> Config:
    known = {"cache", "jobs", "fingerprint", "executor", "cluster", *_REMOTE_KEYS}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {sorted(unknown)}; known: {', '.join(sorted(known))}"
        )
    link = _section(data, "cache", path).get("link", list(DEFAULT_LINK_MODES))
    if isinstance(link, str):
        link = [link]
    if not isinstance(link, list) or not link or any(mode not in LINK_MODES for mode in link):
        raise ConfigError(f"{path}: cache.link must be a list of {list(LINK_MODES)}, got {link!r}")
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ConfigError(f"{path}: jobs must be a positive integer or null, got {jobs!r}")
    packages = _section(data, "fingerprint", path).get("packages", False)
    if not isinstance(packages, bool):
        raise ConfigError(f"{path}: fingerprint.packages must be true or false, got {packages!r}")
    remotes = _remotes_of(data, path)
    default = data.get("default_remote")
    if default is not None and (not isinstance(default, str) or default not in remotes):
        raise ConfigError(
            f"{path}: default_remote is {default!r}, but no remote has that name. Fix: "
            "`pivot remote default NAME` with one of `pivot remote list`."
        )
    return Config(
        link_modes=tuple(link),
        jobs=jobs,
        fingerprint_packages=packages,
        remotes=remotes,
        default_remote=default,
        executor=parse_executor(data.get("executor") or "local", f"{path}: executor"),
        cluster=_parse_cluster(data.get("cluster") or {}, path),
    )


def parse_executor(value: object, where: str) -> str:
    """`local`, `dask`, or a scheduler address (`dask://host:port` means `tcp://host:port`)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be local, dask or a scheduler address, got {value!r}")
    if value in ("local", "dask"):
        return value
    if value.startswith("dask://"):
        return "tcp://" + value.removeprefix("dask://")
    if "://" in value:
        return value
    raise ConfigError(
        f"{where}: {value!r} is not an executor. Use `local` (this machine's process pool), "
        "`dask` (a local Dask cluster) or a scheduler address such as dask://HOST:8786"
    )


def _parse_cluster(data: object, path: Path) -> ClusterConfig:
    if not isinstance(data, dict) or set(data) - {"remote", "code"}:
        raise ConfigError(
            f"{path}: cluster must be a mapping with `remote` (a remote's name) and `code` "
            f"(upload or installed), got {data!r}"
        )
    remote, code = data.get("remote"), data.get("code", "upload")
    if remote is not None and not isinstance(remote, str):
        raise ConfigError(f"{path}: cluster.remote must be a remote's name, got {remote!r}")
    if code not in ("upload", "installed"):
        raise ConfigError(f"{path}: cluster.code must be upload or installed, got {code!r}")
    return ClusterConfig(remote=remote, upload_code=code == "upload")


def load_project(start: Path | None = None) -> Project:
    """Find the project above `start` and read its config."""
    root = find_root(start)
    pivot_dir = root / PIVOT_DIR
    config = _read_config(pivot_dir / "config.yaml", pivot_dir / "config.local.yaml")
    return Project(root=root, config=config)


def init_project(directory: Path, *, force: bool = False) -> Project:
    """Create `.pivot/` (config, stages/, .gitignore) and `.pivotignore` in `directory`."""
    root = Path(os.path.abspath(directory))
    pivot_dir = root / PIVOT_DIR
    outer = [parent for parent in root.parents if (parent / PIVOT_DIR).is_dir()]
    if outer:
        raise AlreadyInitializedError(
            f"{root} is inside the Pivot project at {outer[-1]}, so nothing was created: Pivot "
            "commands work from any directory of that project. To start a separate project, "
            "run `pivot init` in a directory outside it"
        )
    if pivot_dir.exists() and not force:
        raise AlreadyInitializedError(
            f"{root} is already a Pivot project ({PIVOT_DIR}/ exists). Use `pivot init --force` "
            "to rewrite its config (lock files and cache are kept)"
        )
    (pivot_dir / "stages").mkdir(parents=True, exist_ok=True)
    (pivot_dir / "cache").mkdir(exist_ok=True)
    _write_if_missing(pivot_dir / "config.yaml", _DEFAULT_CONFIG, overwrite=force)
    _write_if_missing(pivot_dir / ".gitignore", _GITIGNORE, overwrite=force)
    _write_if_missing(root / ".pivotignore", _PIVOTIGNORE, overwrite=False)
    return load_project(root)


def ensure_ignored(project: Project) -> None:
    """Add to `.pivot/.gitignore` the entries a project made by an older Pivot lacks (the
    project lock, logs, ...), keeping any lines the user added."""
    path = project.pivot_dir / ".gitignore"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    missing = [line for line in _GITIGNORE.splitlines() if line not in lines]
    if missing:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines + missing) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _write_if_missing(path: Path, text: str, *, overwrite: bool) -> None:
    if overwrite or not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the remote settings (`remotes`, `default_remote`) of config file `path`.

    `change` edits a dict holding those keys; every other line of the file (comments too) is
    kept as it is. The file is replaced atomically.
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    data = _read_document(path) if text else {}
    managed = {key: data[key] for key in _REMOTE_KEYS if data.get(key) is not None}
    change(managed)
    kept = _without_top_level_keys(text, _REMOTE_KEYS)
    block = {key: managed[key] for key in _REMOTE_KEYS if managed.get(key)}
    dumped = yaml.safe_dump(block, sort_keys=False, default_flow_style=False) if block else ""
    new_text = (kept.rstrip("\n") + "\n" if kept.strip() else "") + dumped
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)


def _without_top_level_keys(text: str, keys: tuple[str, ...]) -> str:
    """`text` without the blocks of the given top-level YAML keys (key line + indented lines)."""
    starts = re.compile(rf"^({'|'.join(map(re.escape, keys))})\s*:")
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if starts.match(line):
            skipping = True
            continue
        if skipping and (line[:1] in (" ", "\t") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return "".join(kept)
