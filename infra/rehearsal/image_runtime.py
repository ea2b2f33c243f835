"""What an image's last stage says about running it: its USER, and what a task volume mounted
at a path starts with.

ECS (bind mounts, the task volumes of ``containers.py``): an empty task volume is a directory
owned by root with mode 0755, unless the image declares ``VOLUME`` at the mount's path; then
the image's directory there, with its content, owners and permissions, is copied into the volume
(aws/containers-roadmap#938). A container running as an unprivileged USER can therefore write
to its scratch volume only when its image declares the VOLUME and makes the directory writable.

The directories the image gives those paths are read from the last stage's RUN lines
(``mkdir``, ``install -d``, ``chmod``, ``chown``, numeric modes and ids only). What the base
image already has there is not visible from the Dockerfile, so a path the Dockerfile does not
set up counts as root's 0755: the Dockerfile must state the mode it relies on.
"""

from __future__ import annotations

import json
import re
import shlex
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

#: What a path's directory is when nothing says otherwise (and a fresh, empty task volume).
ROOT_0755 = (0, 0, 0o755)
_TRACKED = ("mkdir", "install", "chmod", "chown")


class DockerfileError(ValueError):
    """A Dockerfile line the rehearsal cannot read (a symbolic mode, a user name...)."""


@dataclass(frozen=True)
class Directory:
    """A directory as the image ships it."""

    path: PurePosixPath
    uid: int = 0
    gid: int = 0
    mode: int = 0o755

    def writable_by(self, uid: int, gid: int) -> bool:
        """Whether a process running as ``uid:gid`` (no supplementary groups) may create
        entries here."""
        if uid == 0:
            return True
        if uid == self.uid:
            return bool(self.mode & stat.S_IWUSR and self.mode & stat.S_IXUSR)
        if gid == self.gid:
            return bool(self.mode & stat.S_IWGRP and self.mode & stat.S_IXGRP)
        return bool(self.mode & stat.S_IWOTH and self.mode & stat.S_IXOTH)


@dataclass(frozen=True)
class ImageRuntime:
    """An image's last stage: its USER and VOLUME paths, the directories its RUN lines make,
    and its ENV."""

    uid: int = 0
    gid: int = 0
    volumes: tuple[PurePosixPath, ...] = ()
    directories: dict[PurePosixPath, Directory] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def fresh_volume(self, mount_path: str) -> list[Directory]:
        """What a task volume mounted at ``mount_path`` starts with, top directory first: the
        image's directories there when it declares that VOLUME, else an empty root 0755."""
        top = PurePosixPath(mount_path)
        if top not in self.volumes:
            return [Directory(top, *ROOT_0755)]
        inside = sorted((d for p, d in self.directories.items() if top in p.parents),
                        key=lambda d: len(d.path.parts))
        return [self.directories.get(top, Directory(top, *ROOT_0755)), *inside]

    def can_create(self, path: str, mount_path: str) -> bool:
        """Whether the USER can use ``path`` (a directory it will create or already has) on a
        fresh volume at ``mount_path``: the nearest directory the image ships at or above it
        is writable (an existing directory must be writable itself, a missing one needs a
        writable parent)."""
        shipped = {d.path: d for d in self.fresh_volume(mount_path)}
        target = PurePosixPath(path)
        for candidate in (target, *target.parents):
            if candidate in shipped:
                return shipped[candidate].writable_by(self.uid, self.gid)
        return False


def read(dockerfile: Path) -> ImageRuntime:
    """The runtime facts of ``dockerfile``'s last stage."""
    runtime = ImageRuntime()
    for op, argument in _instructions(dockerfile.read_text()):
        if op == "FROM":
            runtime = ImageRuntime()
        elif op == "USER":
            uid, _, gid = argument.partition(":")
            runtime = replace(runtime, uid=_number(uid, "USER"), gid=_number(gid or uid, "USER"))
        elif op == "VOLUME":
            paths = json.loads(argument) if argument.startswith("[") else argument.split()
            runtime = replace(runtime, volumes=(*runtime.volumes,
                                                *(PurePosixPath(p) for p in paths)))
        elif op == "RUN":
            for command in _commands(argument):
                _apply(command, runtime.directories)
        elif op == "ENV":
            runtime.environment.update(_env_pairs(argument))
    return runtime


def _instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)  # continuation lines
    found = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if words and not words[0].startswith("#"):
            found.append((words[0].upper(), words[1].strip() if len(words) > 1 else ""))
    return found


def _commands(shell: str) -> list[list[str]]:
    """A RUN line's simple commands (split at ``&&``, ``||``, ``;`` and ``|``)."""
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _apply(words: list[str], directories: dict[PurePosixPath, Directory]) -> None:
    if not words or words[0] not in _TRACKED:
        return
    name, options, paths = words[0], _options(words[1:]), _operands(words[1:])
    if name == "install" and "-d" not in options:
        return  # installs files, not directories
    if name in ("mkdir", "install"):
        mode = _mode(options["-m"]) if "-m" in options else 0o755
        uid = _number(options["-o"], "install -o") if "-o" in options else 0
        gid = _number(options["-g"], "install -g") if "-g" in options else 0
        for path in map(PurePosixPath, paths):
            directories[path] = Directory(path, uid, gid, mode)
    elif name == "chmod":
        mode = _mode(paths[0])
        for path in map(PurePosixPath, paths[1:]):
            directories[path] = replace(_known(directories, path), mode=mode)
    else:  # chown
        user, _, group = paths[0].partition(":")
        for path in map(PurePosixPath, paths[1:]):
            current = _known(directories, path)
            directories[path] = replace(current, uid=_number(user, "chown"),
                                        gid=_number(group, "chown") if group else current.gid)


def _options(words: list[str]) -> dict[str, str]:
    """-m/-o/-g take a value; other flags (-p, -d) stand alone."""
    options, rest = {}, iter(words)
    for word in rest:
        if word in ("-m", "-o", "-g"):
            options[word] = next(rest, "")
        elif word.startswith("-"):
            options[word] = ""
    return options


def _operands(words: list[str]) -> list[str]:
    operands, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("-m", "-o", "-g"):
            skip = True
        elif not word.startswith("-"):
            operands.append(word)
    return operands


def _known(directories: dict[PurePosixPath, Directory], path: PurePosixPath) -> Directory:
    return directories.get(path, Directory(path, *ROOT_0755))


def _mode(text: str) -> int:
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise DockerfileError(f"mode {text!r}: write it in octal (1777), not symbolically")
    return int(text, 8)


def _number(text: str, where: str) -> int:
    if not text.isdigit():
        raise DockerfileError(f"{where} {text!r}: use numeric ids, as ECS and the rehearsal "
                              "read them without the image's /etc/passwd")
    return int(text)


def _env_pairs(text: str) -> dict[str, str]:
    pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', text)
    if not pairs:  # the legacy form: ENV NAME value
        name, _, value = text.partition(" ")
        return {name: value.strip()}
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}
