"""Read a spec's YAML once with libyaml: the node tree (line numbers for errors) and the data built from it.

PyYAML's pure-Python loader takes tens of seconds on a spec with 10,000 inline items; libyaml composes the
same node tree in C. The data are then constructed from that tree (not parsed a second time), by a small
builder for plain data (strings, numbers, mappings, sequences; the common case) that also notices
duplicate keys, or by PyYAML's own constructor when the document uses anchors, merge keys or other tags.
Python's cyclic garbage collector is paused while the (acyclic) trees are built: with hundreds of
thousands of new objects its repeated full passes otherwise cost more than the parse itself.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from probekit.errors import ProbekitError
from probekit.survey.errors import SpecError, SpecProblem

Loc = Sequence[str | int]

# libyaml when PyYAML was built with it (the wheels are); the pure-Python loader gives the same nodes.
YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def libyaml_available() -> bool:
    """True when specs are parsed by libyaml (C), False on the pure-Python fallback."""
    return YamlLoader is not yaml.SafeLoader


YAML_FIX = "check indentation, colons and quotes on this line (quote text containing ': ')"

MAX_DEPTH = 50
"""Deepest nesting of mappings and sequences a spec may have (real specs use fewer than 10 levels; Python's
recursion limit would otherwise end a deeper one in a RecursionError)."""
MAX_EXPANDED_NODES = 2_000_000
"""Most nodes a spec may hold once its aliases are expanded (the largest bundled spec has ~30,000; a YAML alias
bomb, "billion laughs", expands to 10^9 and would hang validation)."""


class YamlLimitError(ProbekitError, ValueError):
    """A YAML document nests too deeply or expands (through aliases) to too many nodes."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def check_expansion(root: Node) -> None:
    """Raise YamlLimitError when the tree, aliases expanded, is deeper than MAX_DEPTH or larger than
    MAX_EXPANDED_NODES. Aliases share nodes, so sizes are computed once per node (linear in the file)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            depths[key] = 1 + max((depths.get(id(c), 0) for c in children), default=0)
            if depths[key] > MAX_DEPTH:
                raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise YamlLimitError(f"expands to more than {MAX_EXPANDED_NODES:,} values through its aliases "
                                     "(*name): an alias bomb?", node.start_mark.line + 1)
            continue
        if key in sizes or type(node) is ScalarNode:
            continue
        if key in on_path:  # a recursive alias (an anchor used inside itself)
            raise YamlLimitError("an alias refers to the mapping or list that contains it (recursive data)",
                                 node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if type(child) is not ScalarNode and id(child) not in sizes)


def _children(node: Node) -> list[Node]:
    if type(node) is MappingNode:
        return [part for pair in node.value for part in pair]
    if type(node) is SequenceNode:
        return list(node.value)
    return []

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass
class YamlDocument:
    """One parsed YAML file: the node tree, the data constructed from it, and its duplicate keys."""

    path: str
    """The path as it appears in error messages."""
    root: Node | None
    """The node tree (None for an empty document); nodes carry `start_mark.line`."""
    data: Any
    """The constructed data, as yaml.safe_load would return it."""
    duplicates: list[SpecProblem] = field(default_factory=list)
    """Keys written twice in one mapping (YAML keeps the last silently; specs report them)."""

    def line(self, loc: Loc) -> int:
        """1-based line of the key or item at `loc` (keys and indices); the closest parent that exists."""
        return Locator(self.root).line(loc)


class Locator:
    """Maps a path inside the parsed YAML (keys and indices) to a line number in the file."""

    def __init__(self, root: Node | None):
        self.root = root

    def line(self, loc: Loc) -> int:
        node = self.root
        best = 1 if node is None else node.start_mark.line + 1
        for key in loc:
            if isinstance(node, MappingNode):
                pair = next(((k, v) for k, v in node.value if k.value == key), None)
                if pair is None:
                    break
                node = pair[1]
                best = pair[0].start_mark.line + 1
            elif isinstance(node, SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                best = node.start_mark.line + 1
            else:
                break
        return best


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees memory) and restore its state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Fallback(Exception):
    """The document needs PyYAML's full constructor (anchors, merge keys, complex keys, other tags)."""


class _PlainBuilder:
    """Builds plain data from a node tree; records mappings that repeat a key."""

    def __init__(self, loader: Any):
        self.loader = loader
        self.collections: set[int] = set()
        self.repeated: list[MappingNode] = []

    def build(self, node: Any, depth: int = 1) -> Any:
        kind = type(node)
        if kind is ScalarNode:
            return node.value if node.tag == _STR else self.loader.construct_object(node)
        if id(node) in self.collections:  # an alias: shared (maybe recursive) structure
            raise _Fallback
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1)
        self.collections.add(id(node))
        if kind is SequenceNode and node.tag == _SEQ:
            return [self.build(child, depth + 1) for child in node.value]
        if kind is MappingNode and node.tag == _MAP:
            out: dict[Any, Any] = {}
            for key, value in node.value:
                if type(key) is not ScalarNode or key.tag == _MERGE:
                    raise _Fallback
                out[key.value if key.tag == _STR else self.loader.construct_object(key)] = self.build(value, depth + 1)
            if len(out) < len(node.value):
                self.repeated.append(node)
            return out
        raise _Fallback


def _repeated_keys(node: MappingNode, path: str) -> list[SpecProblem]:
    problems = []
    seen: dict[Any, int] = {}
    for key, _value in node.value:
        if type(key) is not ScalarNode:
            continue
        line = key.start_mark.line + 1
        if key.value in seen:
            problems.append(SpecProblem(path, line, f"duplicate key {key.value!r} (first at line {seen[key.value]})",
                                        "keep one of them"))
        seen[key.value] = line
    return problems


def duplicate_keys(root: Node | None, path: str) -> list[SpecProblem]:
    """Every key written twice in one mapping of the tree, in line order (aliases are walked once)."""
    repeated: list[MappingNode] = []
    stack = [root] if root is not None else []
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if type(node) is ScalarNode or id(node) in visited:
            continue
        visited.add(id(node))
        if type(node) is MappingNode:
            keys = [key.value for key, _value in node.value if type(key) is ScalarNode]
            if len(set(keys)) < len(keys):
                repeated.append(node)
            stack.extend(value for _key, value in node.value)
        elif type(node) is SequenceNode:
            stack.extend(node.value)
    problems = [problem for node in repeated for problem in _repeated_keys(node, path)]
    return sorted(problems, key=lambda problem: problem.line)


def parse_yaml(text: str, path: str = "<string>") -> YamlDocument:
    """Parse one YAML document once: node tree, data built from that tree, duplicate keys.
    Raises yaml.YAMLError on a syntax error, YamlLimitError on a document nested too deeply or expanding
    (through aliases) to too many values."""
    with paused_gc():
        loader = YamlLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return YamlDocument(path, None, None)
            builder = _PlainBuilder(loader)
            try:
                data = builder.build(root)
                duplicates = sorted((p for node in builder.repeated for p in _repeated_keys(node, path)),
                                    key=lambda problem: problem.line)
            except _Fallback:
                check_expansion(root)  # aliases: an alias bomb expands exponentially, so measure first
                duplicates = duplicate_keys(root, path)  # first: merge keys rewrite the mapping nodes
                data = loader.construct_document(root)
        finally:
            loader.dispose()
    return YamlDocument(path, root, data, duplicates)


def read_text(path: str | Path, *, what: str = "spec", fix: str = "give a YAML survey or experiment file") -> str:
    """A text file's contents for a spec or data file: UTF-8 (a UTF-8 or UTF-16 byte-order mark is honoured).
    A missing path, a directory, an unreadable, binary or non-UTF-8 file raises SpecError (file:line — fix)."""
    shown = str(path)
    file = Path(path)
    if file.is_dir():
        raise SpecError([SpecProblem(shown, 0, f"is a directory, not a {what} file", fix)])
    if not file.exists():
        raise SpecError([SpecProblem(shown, 0, "file not found", "check the path")])
    try:
        data = file.read_bytes()
    except OSError as error:
        raise SpecError([SpecProblem(shown, 0, f"cannot read the file: {error.strerror or error}", "check its permissions")]) from None
    return decode_text(data, shown, what=what)


def decode_text(data: bytes, shown: str, *, what: str = "spec") -> str:
    """Bytes of a text file → str: UTF-8, or UTF-16/UTF-8 with a byte-order mark; SpecError (file:line — fix) for
    binary data or another encoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SpecError([SpecProblem(shown, 1, "starts with a UTF-16 byte-order mark but is not UTF-16 text",
                                         "save it as UTF-8")]) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data[:8192]:
        raise SpecError([SpecProblem(shown, 1, f"is a binary file, not a {what} (text) file", "check the path")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start:error.start + 1].hex()
        raise SpecError([SpecProblem(shown, line, f"not UTF-8 text (byte 0x{byte} on this line; Latin-1 or "
                                     "Windows-1252?)", "save the file as UTF-8")]) from None


def read_yaml(path: str | Path) -> YamlDocument:
    """`parse_yaml` of a file; a missing file, a directory, a file that is not UTF-8 text, a YAML syntax error or
    a document over the size and depth limits raises SpecError (file:line — fix)."""
    shown = str(path)
    text = read_text(path)
    try:
        return parse_yaml(text, shown)
    except YamlLimitError as exc:
        raise SpecError([SpecProblem(shown, exc.line, f"YAML {exc}", "write the data out plainly (fewer anchors, "
                                     "less nesting)")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([SpecProblem(shown, line, f"YAML syntax error: {problem}", YAML_FIX)]) from None
