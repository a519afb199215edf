"""State machines as tables: {status: {statuses it may move to}}, and the refusal a caller reads."""


def refusal(moves, noun, status, to):
    """None if `noun` may move from `status` to `to`, else why not, in words."""
    if to in moves.get(status, ()):
        return None
    if status == to:
        return f"the {noun} is already {status}"
    return f"{article(status)} {noun} cannot become {to}"


def article(word):
    return ("an " if word[:1] in "aeiou" else "a ") + word
