"""The tree read without running it.

pyflakes: a name used but never defined (a helper renamed or removed while one caller still used it)
fails here at once instead of as an endless retry in a running relay. Only the classes of finding that
are always bugs fail the test; an import kept for its side effect (`shared.green`) or a pytest fixture
imported into a test module is left alone.

Publishing: a message published without waiting for the broker's confirm may be lost as its connection
closes (tests/conftest.py `publish_confirmed`); no code, test or bench publishes on a connection opened
without confirms."""
import ast
from pathlib import Path

import pytest
from pyflakes import api, messages, reporter

ROOT = Path(__file__).resolve().parents[2]
TREES = ["linli", "shared", "services", "tests", "bench", "deploy"]
ALWAYS_BUGS = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport,
               messages.DuplicateArgument, messages.MultiValueRepeatedKeyLiteral, messages.FStringMissingPlaceholders,
               messages.ImportShadowedByLoopVar, messages.ReturnOutsideFunction, messages.YieldOutsideFunction,
               messages.DefaultExceptNotLast, messages.IsLiteral, messages.PercentFormatInvalidFormat,
               messages.StringDotFormatInvalidFormat, messages.TooManyExpressionsInStarredAssignment)


class Collect(reporter.Reporter):
    def __init__(self):
        self.found = []

    def flake(self, message):
        if isinstance(message, ALWAYS_BUGS):
            self.found.append(f"{Path(message.filename).relative_to(ROOT)}:{message.lineno}: "
                              f"{message.message % message.message_args}")

    def syntaxError(self, filename, msg, lineno, offset, text):
        self.found.append(f"{filename}:{lineno}: {msg}")

    def unexpectedError(self, filename, msg):
        self.found.append(f"{filename}: {msg}")


@pytest.mark.parametrize("tree", TREES)
def test_no_name_is_used_that_is_not_defined(tree):
    found = Collect()
    for path in sorted((ROOT / tree).rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        api.checkPath(str(path), found)
    assert found.found == [], "\n".join(found.found)


def _name(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _publishes(nodes):
    return any(isinstance(n, ast.Call) and _name(n) in ("Producer", "basic_publish")
               for node in nodes for n in ast.walk(node))


def _confirms(call):
    """The connection is opened with `confirm_publish` (kombu) given in its transport options."""
    return any(kw.arg == "transport_options" and "confirm_publish" in ast.unparse(kw.value) for kw in call.keywords)


def unconfirmed_publishers(source, filename="<string>"):
    """Lines of `with Connection(...)` blocks that publish on a connection opened without confirms."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.With) and _publishes(node.body):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _name(call) == "Connection" and not _confirms(call):
                    found.append(node.lineno)
    return found


def test_the_publisher_check_finds_an_unconfirmed_publish():
    assert unconfirmed_publishers("with Connection(uri) as c:\n    Producer(c.default_channel).publish(b)\n") == [1]
    assert unconfirmed_publishers("with Connection(uri) as c:\n    c.Producer().publish(b)\n") == [1]
    assert unconfirmed_publishers("with Connection(uri, transport_options={'confirm_publish': True}) as c:\n"
                                  "    Producer(c.default_channel).publish(b)\n") == []
    assert unconfirmed_publishers("with Connection(uri) as c:\n    c.default_channel.queue_declare('q')\n") == []


@pytest.mark.parametrize("tree", TREES)
def test_nothing_publishes_without_the_brokers_confirm(tree):
    found = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / tree).rglob("*.py"))
             if "node_modules" not in path.parts
             for line in unconfirmed_publishers(path.read_text(encoding="utf-8"), str(path))]
    assert found == [], "published without waiting for confirms (tests/conftest.py publish_confirmed):\n" \
        + "\n".join(found)
