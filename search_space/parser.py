"""Parse the printer's syntax back into an expression: a hand-written tokenizer and a recursive-descent parser.

No `eval`, `exec` or sympy is involved, so any text is safe to parse. The grammar is Python's for the few
constructs it has, so printed expressions read like Python and parse back to the same tree:

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | power
    power      := atom ["**" unary]                     # right-associative, x**-2 allowed, -x**2 is -(x**2)
    atom       := NUMBER | "x" | "eps" | "beta" | "beta1" ... | NAME "(" expression ("," expression)* ")"
                | "(" expression ")"
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from search_space.expr import BinOp, Call, Const, Eps, Expr, Neg, Param, Var
from search_space.functions import FUNCTIONS

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "ParseError", "parse"]

MAX_LENGTH = 1000  # characters; candidates of the 3-unit paper space print in well under 300
MAX_DEPTH = 64  # nesting of the parsed tree and of the parser's own recursion

_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/(),])"
)
_PARAM = re.compile(r"beta([1-9][0-9]*)?\Z")


class ParseError(ValueError):
    """Raised for text that is not an expression; the message shows the position with a caret under the text."""

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position  # 0-based index into text
        super().__init__(self._render())

    def one_line(self) -> str:
        """Return the error as a single line (for command lines and logs)."""
        return f"cannot parse {self.text[:80]!r} at column {self.position + 1}: {self.reason}"

    def _render(self) -> str:
        start = max(0, self.position - 60)
        window = self.text[start : start + 100].replace("\n", " ").replace("\t", " ")
        caret = " " * (self.position - start) + "^"
        return f"column {self.position + 1}: {self.reason}\n  {window}\n  {caret}"


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ParseError(f"unexpected character {text[position]!r}", text, position)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _known_names() -> list[str]:
    return ["x", "eps", "beta", *FUNCTIONS]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.nesting = 0

    # ----- token helpers -----
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, reason: str, token: _Token | None = None) -> ParseError:
        token = token or self.peek()
        return ParseError(reason, self.text, token.position)

    def expect(self, op: str) -> None:
        token = self.peek()
        if token.kind != "op" or token.text != op:
            found = "end of input" if token.kind == "end" else repr(token.text)
            raise self.fail(f"expected {op!r}, found {found}", token)
        self.take()

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels")

    def is_op(self, *ops: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text in ops

    # ----- grammar -----
    def whole(self) -> Expr:
        expr = self.expression()
        token = self.peek()
        if token.kind != "end":
            raise self.fail(f"unexpected {token.text!r} after a complete expression", token)
        return expr

    def expression(self) -> Expr:
        left = self.term()
        while self.is_op("+", "-"):
            op = self.take().text
            left = BinOp(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.is_op("*", "/"):
            op = self.take().text
            left = BinOp(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.is_op("-"):
            self.take()
            self.enter()
            operand = self.unary()
            self.nesting -= 1
            return Neg(operand)
        return self.power()

    def power(self) -> Expr:
        base = self.atom()
        if not self.is_op("**"):
            return base
        self.take()
        self.enter()
        exponent = self.unary()
        self.nesting -= 1
        return BinOp("**", base, exponent)

    def atom(self) -> Expr:
        token = self.peek()
        if token.kind == "number":
            self.take()
            value = float(token.text)
            if value == float("inf"):
                raise self.fail(f"number {token.text} is too large", token)
            return Const(value)
        if token.kind == "name":
            return self.name()
        if self.is_op("("):
            self.take()
            self.enter()
            inner = self.expression()
            self.expect(")")
            self.nesting -= 1
            return inner
        found = "end of input" if token.kind == "end" else repr(token.text)
        raise self.fail(f"expected a number, a name or '(', found {found}", token)

    def name(self) -> Expr:
        token = self.take()
        name = token.text
        called = self.is_op("(")
        if name in FUNCTIONS:
            if not called:
                raise self.fail(f"{name!r} is a function: write {name}(...)", token)
            return self.call(token)
        if name == "x" or name == "eps" or _PARAM.match(name):
            if called:
                raise self.fail(f"{name!r} is not a function and cannot be called", self.peek())
            if name == "x":
                return Var()
            return Eps() if name == "eps" else Param(name)
        if name.startswith("beta"):
            raise self.fail(f"unknown name {name!r}; parameters are named beta, beta1, beta2, ...", token)
        close = difflib.get_close_matches(name, _known_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known names: {', '.join(_known_names())}"
        raise self.fail(f"unknown name {name!r}{hint}", token)

    def call(self, token: _Token) -> Expr:
        self.take()  # "("
        self.enter()
        args = [self.expression()]
        while self.is_op(","):
            self.take()
            args.append(self.expression())
        self.expect(")")
        self.nesting -= 1
        arity = FUNCTIONS[token.text].arity
        if len(args) != arity:
            raise self.fail(f"{token.text}() takes {arity} argument(s), got {len(args)}", token)
        return Call(token.text, tuple(args))


def parse(text: str) -> Expr:
    """Return the expression that `text` denotes; raise `ParseError` (a ValueError) with the position otherwise.

    >>> expr = parse("x * sigmoid(beta*x)")
    >>> str(expr)
    'x * sigmoid(beta * x)'
    >>> parse(str(expr)) == expr
    True
    >>> parse("x * sigmod(x)")
    Traceback (most recent call last):
    ...
    search_space.parser.ParseError: column 5: unknown name 'sigmod'; did you mean 'sigmoid'?
      x * sigmod(x)
          ^
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression is {len(text)} characters long, the limit is {MAX_LENGTH}", text, MAX_LENGTH)
    expr = _Parser(text).whole()
    if expr.depth > MAX_DEPTH:
        raise ParseError(f"expression tree is deeper than {MAX_DEPTH} levels", text, 0)
    return expr
