"""Small helpers for key ranges shared by the SQL backends."""

from __future__ import annotations

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix`.

    With it, "starts with" becomes a key range an index can serve:
    ``prefix <= key < upper``. None when there is no such bound.

    >>> prefix_upper_bound("Order-")
    'Order.'
    >>> prefix_upper_bound("") is None
    True
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code <= _MAX_CODE_POINT:
            return "".join(chars) + chr(code)
    return None
