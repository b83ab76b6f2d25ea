"""Limits on the files optbench reads and the folders it writes, so a damaged or hostile one is one
clear error.

A file is read only when it is a regular file (not a folder, nor a link to `/dev/zero`), and at most
`MAX_BYTES`; its nesting is at most `MAX_DEPTH` deep; a YAML file's aliases may expand it to at most
`MAX_NODES` nodes (a 1 kB "billion laughs" anchor bomb expands to 10^9). Every failure is an
`OptbenchError` naming the file and the limit, raised before the parsed value is used anywhere.
An output folder's names must each fit a file system (`check_folder_path`), checked before any work.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import OptbenchError

MAX_BYTES = 64 * 2**20  # meta.json of a large benchmark is a few MB
MAX_DEPTH = 100  # optbench writes at most ~6 levels; Python's recursion limit is 1000
MAX_NODES = 100_000  # values in a config once its YAML aliases are expanded


def read_text(path: Path, what: str = "file") -> str:
    """The text of the regular file `path`, read to at most MAX_BYTES.

    Raises OptbenchError when `path` is missing, is not a regular file, is larger, or is not UTF-8.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise OptbenchError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise OptbenchError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise OptbenchError(f"{what} {path} is not a regular file (a device, pipe or socket)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise OptbenchError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > MAX_BYTES:
        raise OptbenchError(f"{what} {path} is larger than {MAX_BYTES // 2**20} MB: not one optbench wrote")
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        raise OptbenchError(f"{what} {path} is not UTF-8 text: {error}") from None


def load_json(path: Path, what: str = "file"):
    """The JSON value in `path` (see `read_text`); OptbenchError when it is not JSON or nests too deep."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise OptbenchError(f"corrupt {path}: {error}") from None
    except RecursionError:
        raise OptbenchError(f"corrupt {path}: nested deeper than {MAX_DEPTH} levels") from None
    check_nesting(path, value)
    return value


def check_nesting(path, value) -> None:
    """Refuse (OptbenchError) a parsed value whose lists and mappings nest deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    raise OptbenchError(f"corrupt {path}: nested deeper than {MAX_DEPTH} levels")
                stack.append((child, depth + 1))


def load_yaml(path: Path, what: str = "config file"):
    """The YAML value in `path` (safe tags only; see `read_text`).

    Raises OptbenchError when it is not YAML, nests deeper than MAX_DEPTH, or its aliases expand it
    past MAX_NODES values; the limits are checked on the composed node graph, before any value is built.
    """
    import yaml

    text = read_text(path, what)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_nodes(path, node)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise OptbenchError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise OptbenchError(f"{path} is nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _check_yaml_nodes(path, root) -> None:
    """Depth and expanded size of a composed YAML node graph. Aliases share nodes, so each node's
    (size, height) is computed once and reused: the check costs the file's size, not its expansion."""
    import yaml

    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, levels below it)
    active: set[int] = set()

    def measure(node, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise OptbenchError(f"{path} is nested deeper than {MAX_DEPTH} levels")
        if id(node) in measured:
            size, height = measured[id(node)]
            if depth + height > MAX_DEPTH:
                raise OptbenchError(f"{path} is nested deeper than {MAX_DEPTH} levels")
            return size, height
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        if id(node) in active:
            raise OptbenchError(f"{path} holds an alias that contains itself")
        active.add(id(node))
        children = (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        )
        size, height = 1, 0
        for child in children:
            child_size, child_height = measure(child, depth + 1)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_NODES:
                raise OptbenchError(
                    f"{path} expands to more than {MAX_NODES:,} values through its YAML aliases "
                    "(&anchor / *alias); write the values out"
                )
        active.discard(id(node))
        measured[id(node)] = size, height
        return size, height

    measure(root, 1)


NAME_MAX = 255  # bytes in one file or folder name on Linux and macOS file systems


def check_folder_path(folder) -> Path:
    """`folder` as a Path once each of its names fits a file system (NAME_MAX bytes); OptbenchError
    naming the first that does not, so that a long --out fails before any work, not at the first write."""
    folder = Path(folder)
    for name in folder.parts:
        size = len(os.fsencode(name))
        if size > NAME_MAX:
            shown = name if len(name) <= 40 else name[:37] + "..."
            raise OptbenchError(
                f"output folder name '{shown}' is {size} bytes long; a file system allows at most {NAME_MAX}"
            )
    return folder
