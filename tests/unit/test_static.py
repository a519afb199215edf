"""The tree read by pyflakes, without running it: a name used but never defined (a helper renamed or removed
while one caller still used it) fails here at once instead of as an endless retry in a running relay.

Only the classes of finding that are always bugs fail the test; an import kept for its side effect
(`shared.green`) or a pytest fixture imported into a test module is left alone."""
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
