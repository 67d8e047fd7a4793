"""Just enough of a Dockerfile reader for the image test to run what the image runs.

It knows the instructions the repository's Dockerfile uses (ARG, FROM, ENV, WORKDIR,
COPY, RUN, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD), line continuations, comments,
``$VAR``/``${VAR}`` substitution in ENV and ARG values, and the ``# image-test: NAME``
comment that names the instruction after it. Anything else it refuses, so a Dockerfile
that outgrows it fails the test instead of being half read.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^#\s*image-test:\s*(\S+)\s*$")
KNOWN = {
    "ARG",
    "FROM",
    "ENV",
    "WORKDIR",
    "COPY",
    "RUN",
    "USER",
    "EXPOSE",
    "HEALTHCHECK",
    "ENTRYPOINT",
    "CMD",
}
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    text: str  # everything after the keyword, continuations joined
    marker: str | None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def marked(self, marker: str) -> Instruction:
        found = [i for i in self.instructions if i.marker == marker]
        assert len(found) == 1, f"one instruction marked {marker!r} in stage {self.name}"
        return found[0]

    def env(self, inherited: dict[str, str], given: dict[str, str]) -> dict[str, str]:
        """The stage's ENV as a container sees it.

        ``inherited`` is what the base image defines (``$PATH`` refers to it);
        ``given`` replaces a declared value (a path of the image mapped to a test
        directory) before later values that refer to it are expanded.
        """
        values = dict(inherited)
        declared: dict[str, str] = {}
        for instruction in self.all("ENV"):
            before = dict(values)  # one ENV's pairs see the values from before it, as Docker
            for key, value in _pairs(instruction.text):
                value = given.get(key, _expand(value, before))
                values[key] = value
                declared[key] = value
        return declared

    def args(self, given: dict[str, str], global_args: dict[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ARG"):
            name, _, default = instruction.text.partition("=")
            values[name] = given.get(name, default or global_args.get(name, ""))
        return values


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str | None) -> Stage:
        """The stage named ``name``; None: the last one (the image)."""
        if name is None:
            return self.stages[-1]
        return next(s for s in self.stages if s.name == name)

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, text, marker in _instructions(path.read_text()):
        if keyword not in KNOWN:
            raise AssertionError(f"{path.name}: {keyword} is not understood by {__name__}")
        if keyword == "FROM":
            words = text.split()
            base = _expand(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = text.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, text, marker))
    return Dockerfile(global_args, stages)


def exec_form(instruction: Instruction) -> list[str]:
    """ENTRYPOINT/CMD (or HEALTHCHECK's CMD) in exec form: the argv, no shell."""
    text = instruction.text
    if instruction.keyword == "HEALTHCHECK":
        _, _, text = text.partition(" CMD ")
    argv = json.loads(text)
    assert isinstance(argv, list), f"{instruction.keyword} must be in exec form (JSON)"
    assert all(isinstance(a, str) for a in argv)
    return [str(a) for a in argv]


def healthcheck_options(instruction: Instruction) -> dict[str, str]:
    options, _, _ = instruction.text.partition(" CMD ")
    return dict(word.removeprefix("--").split("=", 1) for word in options.split())


def run_command(instruction: Instruction) -> str:
    """A RUN's shell command, its ``--mount`` and other flags left out."""
    assert instruction.keyword == "RUN"
    text = instruction.text
    while text.startswith("--"):
        _, _, text = text.partition(" ")
        text = text.lstrip()
    assert not text.startswith("["), "RUN steps are in shell form"
    return text


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """The stage's COPY instructions from the build context: (sources, destination)."""
    found = []
    for instruction in stage.all("COPY"):
        words = shlex.split(instruction.text)
        assert not any(w.startswith("--") for w in words), "COPY flags are not understood"
        found.append((words[:-1], words[-1]))
    return found


def ignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (excludes, pattern); the last matching rule wins."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        rules.append((not negated, re.compile(_glob_regex(pattern))))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves out ``relative`` (a POSIX path): a rule matches a
    path when it matches the path itself or one of its parent directories."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for excludes, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = excludes
    return excluded


def _glob_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _instructions(source: str) -> list[tuple[str, str, str | None]]:
    found: list[tuple[str, str, str | None]] = []
    marker: str | None = None
    pending: list[str] = []
    for raw in source.splitlines():
        line = raw.strip()
        if not pending:
            if not line:
                marker = None
                continue
            if line.startswith("#"):
                matched = MARKER.match(line)
                if matched:
                    marker = matched.group(1)
                continue
        elif line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, text = " ".join(p for p in pending if p).partition(" ")
        found.append((keyword.upper(), text.strip(), marker))
        pending, marker = [], None
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for word in shlex.split(text, posix=True):
        key, sep, value = word.partition("=")
        assert sep, f"ENV in the key=value form only ({word!r})"
        pairs.append((key, value))
    return pairs


def _expand(value: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), value)
