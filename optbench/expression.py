"""A user's formula as a surface, `expr:x**2+10*y**2`, read without `eval`.

The text is parsed by Python's `ast` (parsing runs nothing) and walked node by node into a tree of
torch operations; only these nodes are accepted, anything else is refused with one line naming it:
numbers (int or float literals), the variables x, y, z, the constants pi and e, the operators
+ - * / ** and unary minus/plus, and calls of one argument to sin, cos, tan, exp, log, sqrt, abs,
tanh, sinh, cosh. So no attribute access, subscripts, strings, other names or calls, lambdas,
comprehensions or keywords. Numbers are computed as float tensors, never as Python integers, so no
expression can hang the process; besides, a literal exponent beyond ±MAX_EXPONENT and a power inside an
exponent (`x**10**10**10`) are refused as the mistakes they are. Gradients come from autograd.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import torch

from .errors import OptbenchError

VARIABLES = ("x", "y", "z")
CONSTANTS = {"pi": math.pi, "e": math.e}
FUNCTIONS = {
    name: getattr(torch, name)
    for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh")
}
OPERATORS = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
}
MAX_EXPONENT = 100
MAX_LENGTH = 1000
ALLOWED = "numbers, x, y, z, pi, e, + - * / **, " + ", ".join(f"{f}()" for f in FUNCTIONS)

Node = Callable[[dict], torch.Tensor]


def parse_expression(text: str) -> tuple[int, Node]:
    """`text` -> (dim, f): f maps {'x': tensor, ...} to a tensor. dim counts the variables up to the
    last one used (x alone gives 2: surfaces are at least 2-D). Raises OptbenchError naming what is
    not allowed."""
    text = str(text).strip()
    if not text:
        raise OptbenchError(f"empty expression: write one in {', '.join(VARIABLES)}, e.g. expr:x**2+10*y**2")
    if len(text) > MAX_LENGTH:
        raise OptbenchError(f"expression is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        reason = error.msg if isinstance(error, SyntaxError) else type(error).__name__
        raise OptbenchError(f"cannot read expression '{text}': {reason}") from None
    used = set()
    try:
        function = _compile(tree.body, text, used)
    except RecursionError:
        raise OptbenchError(f"expression '{text}' is nested too deeply") from None
    if not used:
        raise OptbenchError(f"expression '{text}' uses no variable ({', '.join(VARIABLES)})")
    return max(2, 1 + max(VARIABLES.index(name) for name in used)), function


def _refuse(text: str, what: str) -> OptbenchError:
    return OptbenchError(f"expression '{text}': {what} is not allowed (allowed: {ALLOWED})")


def _compile(node: ast.AST, text: str, used: set) -> Node:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise _refuse(text, f"the constant {node.value!r}")
        value = float(node.value)
        return lambda env: torch.tensor(value, dtype=torch.float64)
    if isinstance(node, ast.Name):
        if node.id in VARIABLES:
            used.add(node.id)
            return lambda env: env[node.id]
        if node.id in CONSTANTS:
            value = CONSTANTS[node.id]
            return lambda env: torch.tensor(value, dtype=torch.float64)
        raise _refuse(text, f"the name '{node.id}'")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _compile(node.operand, text, used)
        return (lambda env: -operand(env)) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        if isinstance(node.op, ast.Pow):
            _check_exponent(node.right, text)
        left, right, operation = (
            _compile(node.left, text, used),
            _compile(node.right, text, used),
            OPERATORS[type(node.op)],
        )
        return lambda env: operation(left(env), right(env))
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise _refuse(text, f"calling {ast.unparse(node.func)}")
        if node.keywords or len(node.args) != 1:
            raise _refuse(text, f"{name}() with other than one plain argument")
        argument, function = _compile(node.args[0], text, used), FUNCTIONS[name]
        return lambda env: function(argument(env))
    raise _refuse(text, _describe(node))


def _check_exponent(node: ast.AST, text: str) -> None:
    """Refuse a literal exponent beyond ±MAX_EXPONENT and a power inside an exponent."""
    if any(isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Pow) for inner in ast.walk(node)):
        raise OptbenchError(
            f"expression '{text}': a power inside an exponent ({ast.unparse(node)}) is not allowed"
        )
    literal = node.operand if isinstance(node, ast.UnaryOp) else node
    if isinstance(literal, ast.Constant) and type(literal.value) in (int, float):
        if not abs(float(literal.value)) <= MAX_EXPONENT:
            raise OptbenchError(
                f"expression '{text}': exponent {ast.unparse(node)} is beyond ±{MAX_EXPONENT}"
            )


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscripting",
        ast.Lambda: "a lambda",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
        ast.IfExp: "a conditional",
    }
    for kind, description in kinds.items():
        if isinstance(node, kind):
            return f"{description} ({ast.unparse(node)})"
    return f"{type(node).__name__} ({ast.unparse(node)})"
