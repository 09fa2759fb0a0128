"""moto's DynamoDB for ``make run``, made cheaper without changing one answer.

Why: moto 5.2.5 spends most of its CPU per pipeline event answering the store's three
writes (``inqueue.status``): about 9.4 ms for a claim, 6 ms for a completion and 1.9 ms
for the ingress's ``PutItem``, where an SQS call costs about 2.5 ms. The claim's update
expression has 13 actions, and for each request moto:

* parses the update expression twice (the handler, then the backend) and the condition
  expression twice, the same texts every time;
* deep-copies the parsed tree before validating it (``copy.deepcopy`` over some 120
  nodes, costlier than parsing it);
* walks the tree once per validation step, ten steps, each node checked with
  ``isinstance`` against abstract classes and each step's dispatch table rebuilt at every
  node; the first step alone counts the SET/REMOVE clauses again under every nested
  action, about 60 times per claim.

What changes here (``speed_up``), each keeping moto's own code doing the work:

* an update expression is parsed once per text and the tree kept (the callers only read
  it; the validator copies it before changing anything); the validator's copy of that
  tree is a pickle round trip of it, which copies the same objects as ``deepcopy`` does
  (no class in the tree defines its own copy) at a tenth of the cost;
* the three validation steps that depend only on the expression's text, its attribute
  names and the table's key (clause counts, overlapping paths, no key update) are skipped
  once that combination has passed them; a combination that failed is checked again
  every time, so it fails with moto's own error;
* the tree walk dispatches on the node's class through a cache (same first match in the
  same order as moto's ``process``) and calls the child hook only where a step defines it;
* a condition expression is tokenised once per text, and the second parse of the same
  condition, names and values in one request (handler, then backend) reuses the first
  one's result (the parsed conditions keep no state of their own).

``tests/local/test_moto_dynamodb.py`` sends the store's real requests (claims that take,
that are refused with ``ReturnValuesOnConditionCheckFailure``, completions, failures,
dead letters, the history kept within its bound) to moto with and without these changes
and compares every answer and every stored item, and checks moto's errors for invalid
expressions are the same.
"""

from __future__ import annotations

import pickle
import threading
from collections import deque
from copy import deepcopy
from typing import Any

from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb import comparisons
from moto.dynamodb.parsing import ast_nodes, validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser

# moto's own, kept before any change (the tests compare against them)
MOTO_MAKE: Any = UpdateExpressionParser.__dict__["make"]  # the classmethod itself
MOTO_VALIDATOR_INIT: Any = validators.UpdateExpressionValidator.__init__
MOTO_VALIDATE: Any = validators.UpdateExpressionValidator.validate
MOTO_TRAVERSE: Any = ast_nodes.DepthFirstTraverser.traverse_node_recursively
MOTO_CONDITION_PARSE: Any = comparisons.ConditionExpressionParser.parse
MOTO_LEX: Any = comparisons.ConditionExpressionParser._lex_condition_expression
MOTO_SERIALIZE_STRUCTURE: Any = BaseJSONSerializer._serialize_type_structure

CACHE_MAX = 1024  # distinct expression texts kept; the store sends about a dozen
# The validation steps whose outcome depends only on the expression, its names and the table's key.
STATIC_STEPS = (
    validators.ActionCountValidator,
    validators.OverlappingPathsValidator,
    validators.UpdateHashRangeKeyValidator,
)

_lock = threading.Lock()
_applied = False
_trees: dict[str, Any] = {}  # update expression text -> its parsed tree (never changed: callers copy it)
_texts: dict[int, str] = {}  # id(tree) -> its text; the trees stay referenced by _trees, so ids stay theirs
_pickled: dict[int, bytes | None] = {}  # id(tree) -> the tree pickled (None: not picklable, deepcopy it)
_passed: set[tuple[Any, ...]] = set()  # (text, names, key attributes) that passed the static steps
_tokens: dict[str, tuple[Any, ...]] = {}  # condition expression text -> its lexed nodes
_conditions: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}  # recent condition parses


def make(cls: Any, expression_str: str) -> Any:
    """``UpdateExpressionParser.make``, once per text: the same tree for the same text."""
    tree = _trees.get(expression_str)
    if tree is None:
        tree = MOTO_MAKE.__func__(cls, expression_str)  # a syntax error raises here, every time, and nothing is kept
        with _lock:
            if len(_trees) < CACHE_MAX and expression_str not in _trees:
                _trees[expression_str] = tree
                _texts[id(tree)] = expression_str
            tree = _trees.get(expression_str, tree)
    return tree


def copy_tree(value: Any, memo: Any = None) -> Any:
    """``deepcopy`` for the validators module: a kept tree is copied by unpickling it, anything else by deepcopy."""
    key = id(value)
    if memo is None and key in _texts:
        data = _pickled.get(key, b"")
        if data == b"":
            try:
                data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - a tree that does not pickle is deep-copied, as moto does
                data = None
            _pickled[key] = data
        if data is not None:
            return pickle.loads(data)  # noqa: S301 - our own bytes, made just above from moto's tree
    return deepcopy(value, memo)


def validator_init(  # noqa: PLR0917 - moto's own signature
    self: Any,
    expression: Any,
    expression_attribute_names: dict[str, str],
    expression_attribute_values: dict[str, dict[str, Any]],
    item: Any,
    table: Any,
) -> None:
    MOTO_VALIDATOR_INIT(self, expression, expression_attribute_names, expression_attribute_values, item, table)
    text = _texts.get(id(expression))
    self._inqueue_static = (
        None
        if text is None
        else (text, tuple(sorted((expression_attribute_names or {}).items())), tuple(table.table_key_attrs))
    )


def validate(self: Any) -> Any:
    """moto's validation, less the static steps when this expression, names and key already passed them."""
    key = getattr(self, "_inqueue_static", None)
    known = key is not None and key in _passed
    node = self.node_to_validate
    for processor in self.processors:
        if known and isinstance(processor, STATIC_STEPS):
            continue
        node = processor.traverse(node)
    if key is not None and not known:
        with _lock:
            if len(_passed) < CACHE_MAX:
                _passed.add(key)
    return node


_is_node: dict[type, bool] = {}
_first_match: dict[tuple[type, tuple[type, ...], type], int] = {}
_HOOK = ast_nodes.DepthFirstTraverser.pre_processing_of_child


def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
    """moto's depth-first walk, with the class checks cached (``isinstance`` against ABCs is the cost)."""
    kind = type(node)
    is_node = _is_node.get(kind)
    if is_node is None:
        is_node = _is_node[kind] = isinstance(node, ast_nodes.Node)
    if not is_node:
        return node
    steps = self.__dict__.get("_inqueue_steps")
    if steps is None:
        table = self._processing_map()
        steps = self.__dict__["_inqueue_steps"] = (
            tuple(table),
            tuple(table.values()),
            type(self).pre_processing_of_child is not _HOOK,
        )
    classes, processors, hook = steps
    parent_node = node.parent
    if node.children is not None:
        for i, child_node in enumerate(node.children):
            if hook:
                self.pre_processing_of_child(node, i)
            traverse_node_recursively(self, child_node, i)
    index = _first_match.get((type(self), classes, kind))
    if index is None:
        index = next((n for n, cls in enumerate(classes) if isinstance(node, cls)), -1)
        _first_match[(type(self), classes, kind)] = index
    if index >= 0:
        node = processors[index](node)
        node.parent = parent_node
        if parent_node:
            parent_node.children[child_id] = node
    return node


def lex_condition_expression(self: Any) -> deque[Any]:
    """moto's tokens for a condition expression, once per text (each node with a list of its own, as moto's)."""
    text = self.condition_expression
    cached = _tokens.get(text)
    if cached is None:
        nodes = MOTO_LEX(self)
        if len(_tokens) < CACHE_MAX:
            _tokens[text] = tuple(nodes)
        return nodes
    make_node = tuple.__new__
    return deque(make_node(type(node), (*node[:4], list(node.children))) for node in cached)


def condition_parse(self: Any) -> Any:
    """moto's parse, reused for the same condition, names and values (the handler and the backend both parse)."""
    key = (self.condition_expression, repr(self.expression_attribute_names), repr(self.expression_attribute_values))
    hit = _conditions.get(key)
    if hit is None:
        names_before, values_before = len(self.expr_attr_names_found), len(self.expr_attr_values_found)
        op = MOTO_CONDITION_PARSE(self)
        hit = (op, self.expr_attr_names_found[names_before:], self.expr_attr_values_found[values_before:])
        with _lock:
            if len(_conditions) >= CACHE_MAX:
                _conditions.clear()  # only the last few matter: the second parse follows the first at once
            _conditions[key] = hit
        return op
    op, names, values = hit
    self.expr_attr_names_found.extend(names)
    self.expr_attr_values_found.extend(values)
    return op


# An attribute value's wire form, as moto's serializer writes it for each member (see ``_wire``).
_MEMBERS = {
    "S": ("string", None),
    "N": ("string", None),
    "B": ("blob", None),
    "SS": ("list", "StringAttributeValue"),
    "NS": ("list", "NumberAttributeValue"),
    "BS": ("list", "BinaryAttributeValue"),
    "M": ("map", "AttributeValue"),
    "L": ("list", "AttributeValue"),
    "NULL": ("boolean", None),
    "BOOL": ("boolean", None),
}
_plain_shapes: dict[int, bool] = {}


def _is_plain_attribute_value(shape: Any) -> bool:
    """Whether ``shape`` is DynamoDB's AttributeValue as ``_wire`` knows it: these members, no renamed member."""
    known = _plain_shapes.get(id(shape))
    if known is None:
        members = getattr(shape, "members", {})
        known = (
            shape.type_name == "structure"
            and "name" not in shape.serialization
            and set(members) == set(_MEMBERS)
            and all(
                members[name].type_name == kind
                and "name" not in members[name].serialization
                and (inner is None or _inner(members[name]).name == inner)
                for name, (kind, inner) in _MEMBERS.items()
            )
        )
        _plain_shapes[id(shape)] = known
    return known


def _inner(shape: Any) -> Any:
    return shape.value if shape.type_name == "map" else shape.member


def _wire(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """The serialized form of one attribute value that moto stores in wire shape, or None to let moto's
    serializer do it (anything but one key of S, N, BOOL, NULL, SS, NS, M, L with plain values).

    moto's serializer picks each member by name (the value is a dict, so only ``S`` is ``S``), writes
    strings as they are (``str`` of a ``str``), booleans as they are, lists and maps member by member.
    """
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, item),) = value.items()
    if kind in ("S", "N"):
        return {kind: item} if type(item) is str else None
    if kind in ("BOOL", "NULL"):
        return {kind: item} if type(item) is bool else None
    if kind in ("SS", "NS"):
        return {kind: list(item)} if type(item) is list and all(type(x) is str for x in item) else None
    if kind == "M" and type(item) is dict:
        members = {}
        for name, member in item.items():
            wire = _wire(member)
            if wire is None or type(name) is not str:
                return None
            members[name] = wire
        return {"M": members}
    if kind == "L" and type(item) is list:
        elements = []
        for element in item:
            wire = _wire(element)
            if wire is None:
                return None
            elements.append(wire)
        return {"L": elements}
    return None


def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """moto's JSON structure serializer, with DynamoDB's attribute values written directly (same output)."""
    if key and shape.name == "AttributeValue" and _is_plain_attribute_value(shape):
        wire = _wire(value)
        if wire is not None:
            serialized[key] = wire
            return
    MOTO_SERIALIZE_STRUCTURE(self, serialized, value, shape, key)


# (owner, attribute, moto's own, ours): what ``speed_up`` replaces.
CHANGES: list[tuple[Any, str, Any, Any]] = [
    (UpdateExpressionParser, "make", MOTO_MAKE, classmethod(make)),
    (validators, "deepcopy", deepcopy, copy_tree),
    (validators.UpdateExpressionValidator, "__init__", MOTO_VALIDATOR_INIT, validator_init),
    (validators.UpdateExpressionValidator, "validate", MOTO_VALIDATE, validate),
    (ast_nodes.DepthFirstTraverser, "traverse_node_recursively", MOTO_TRAVERSE, traverse_node_recursively),
    (comparisons.ConditionExpressionParser, "_lex_condition_expression", MOTO_LEX, lex_condition_expression),
    (comparisons.ConditionExpressionParser, "parse", MOTO_CONDITION_PARSE, condition_parse),
    (BaseJSONSerializer, "_serialize_type_structure", MOTO_SERIALIZE_STRUCTURE, serialize_structure),
]


def clear() -> None:
    """Forget every cached tree, token list, parse and passed check (the tests start from nothing)."""
    with _lock:
        for cache in (_trees, _texts, _pickled, _passed, _tokens, _conditions):
            cache.clear()


def speed_up() -> None:
    """Apply the changes to moto in this process (idempotent)."""
    global _applied  # noqa: PLW0603 - once per process
    if _applied:
        return
    for owner, name, _moto, ours in CHANGES:
        setattr(owner, name, ours)
    _applied = True
