"""A YAML loader for configuration files that cannot be turned against the reader.

PyYAML's ``SafeLoader`` constructs no arbitrary objects, but still (1) expands aliases: a 564-byte "billion laughs"
file of nested anchors becomes a tree of 10^9 nodes for whatever walks it next (ran past 60 s and 5 GB), and (2)
composes and constructs recursively: YAML nested 20,000 deep ends in ``RecursionError``. ``BoundedSafeLoader``
adds two limits, checked while the document is composed, before any Python object is built:

* ``MAX_DEPTH`` levels of nesting;
* ``MAX_NODES`` nodes once aliases are expanded (each alias counts the full size of what it refers to). Plain
  anchors and aliases within the budget keep working.

Violations raise ``yaml.YAMLError`` subclasses with a mark (line, column), so callers report them like any
syntax error.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 64
"""Deepest nesting accepted (tolerances.yaml needs 5)."""
MAX_NODES = 200_000
"""Largest document accepted, counted with aliases expanded (the committed tolerances.yaml has about 2,000)."""


class YamlLimitError(ComposerError):
    """A document beyond ``MAX_DEPTH`` or ``MAX_NODES``."""


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting limit and an alias-expansion budget (see the module docstring)."""

    max_depth = MAX_DEPTH
    max_nodes = MAX_NODES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                event = self.peek_event()
                raise YamlLimitError(None, None, f"nested more than {self.max_depth} levels deep",
                                     event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            total = _expanded_size(node, self.max_nodes)
            if total > self.max_nodes:
                raise YamlLimitError(None, None, f"more than {self.max_nodes:,} values once aliases are expanded "
                                     "(an alias bomb, or an alias to an enclosing value?)", node.start_mark)
        return node


def _expanded_size(root: Node, budget: int) -> int:
    """Number of nodes in ``root`` with every alias expanded, computed without expanding (memoised per node); stops
    counting once past ``budget``. Iterative: the composer already bounded the depth, but a loop costs nothing."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in visiting:
            return budget + 1  # an alias to an enclosing node: a recursive structure, infinite once expanded
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            visiting.discard(id(node))
            sizes[id(node)] = min(budget + 1, 1 + sum(sizes.get(id(c), 1) for c in children))
        else:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within the limits of ``BoundedSafeLoader``."""
    return yaml.load(text, Loader=BoundedSafeLoader)  # a SafeLoader subclass: no object tags
