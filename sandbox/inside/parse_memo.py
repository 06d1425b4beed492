"""One parse per source text when pytest formats failures, instead of two per failure.

To show the failing statement, pytest parses the whole test module again for every traceback
entry it formats (its own AST cache lives in one formatter, and each failure gets a new one), so
a run with 75 failures in a 1,000-line module spends 0.6 s of a 1 s session in ``ast.parse``.
The memo is keyed by the exact source text, so what it returns is what parsing would; it lives
for one pytest process. Both the cold and the warm path load it (``vtforge_report`` installs it).
"""

import inspect

MAX_TREES = 64


def install():
    """Memoize the parse in ``getstatementrange_ast``; False when this pytest has none to memoize."""
    try:
        from _pytest._code import code, source
    except ImportError:
        return False
    original = getattr(source, "getstatementrange_ast", None)
    if original is None or getattr(original, "__module__", None) == __name__:
        return False  # installed already
    if list(inspect.signature(original).parameters) != ["lineno", "source", "assertion", "astnode"]:
        return False
    trees = {}

    def getstatementrange_ast(lineno, source, assertion=False, astnode=None):
        if astnode is None:
            text = str(source)
            astnode = trees.get(text)
            if astnode is None:
                found = original(lineno, source, assertion, None)
                if len(trees) >= MAX_TREES:
                    trees.clear()
                trees[text] = found[0]
                return found
        return original(lineno, source, assertion, astnode)

    source.getstatementrange_ast = getstatementrange_ast
    if getattr(code, "getstatementrange_ast", None) is original:
        code.getstatementrange_ast = getstatementrange_ast  # pyright: ignore[reportPrivateImportUsage]
    return True
