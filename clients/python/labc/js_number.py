"""Floats written as JavaScript writes them: what makes a frame's JSON and a path in a refusal
the same text on both sides. Here, not in frames.py, because values_out.py needs it too and
frames.py imports that."""

from __future__ import annotations


def js_number(x: float) -> str:
    """A finite float as JavaScript's Number#toString writes it (1 not 1.0, 1e-7 not 1e-07,
    1e+21, 100000000000000000000 below 1e21)."""
    if x.is_integer() and -9007199254740992.0 < x < 9007199254740992.0:
        return str(int(x))
    r = repr(x)
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    mantissa, exp = r.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "")
    point = int(exp) + (mantissa.lstrip("-").find(".") if "." in mantissa else len(digits))
    digits = digits.rstrip("0") or "0"
    if digits != "0" and digits[0] == "0":  # never for repr's mantissa, kept safe
        lead = len(digits) - len(digits.lstrip("0"))
        digits, point = digits[lead:], point - lead
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    e = point - 1
    body = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{body}e{'+' if e > 0 else '-'}{abs(e)}"
