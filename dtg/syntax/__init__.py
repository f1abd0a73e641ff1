"""The front end: the grammar, the cached parser, the AST and the printer."""

from . import ast
from .parser import lark_parser, parse
from .printer import expr_to_source, to_source

__all__ = ["ast", "parse", "lark_parser", "to_source", "expr_to_source"]
