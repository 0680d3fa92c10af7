"""Is a configured `review_session_secret` strong enough? A pure check, so that the UI refuses
to start on `"x"`, `"changeme"` or the README's example instead of keying CSRF tokens with it."""

from __future__ import annotations

import math
import re
from collections import Counter

MIN_LENGTH = 32
MIN_BITS = 100  # estimated from the characters' own frequencies (32 random hex digits hold ~115)
# Values people copy from documentation or type as placeholders (compared lower-cased, with
# spaces, `-` and `_` removed), the README's example among them.
KNOWN_EXAMPLES = frozenset(
    re.sub(r"[\s_-]+", "", value)
    for value in (
        "a long random string",
        "along random string",
        "changeme",
        "change me",
        "secret",
        "session secret",
        "review session secret",
        "test session secret",
        "password",
        "example",
        "your secret here",
        "replace me",
        "x",
    )
)
ADVICE = (
    "use at least 32 random characters, "
    "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)


def _bits(value: str) -> float:
    """Shannon entropy of the value's characters times its length: what a random string of
    that alphabet and length would hold; repeated or patterned text scores low."""
    counts = Counter(value)
    n = len(value)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n


def _repeats_a_unit(value: str) -> bool:
    """`abcabcabc…`: the whole value is one short unit over and over."""
    return re.fullmatch(r"(.{1,16}?)\1+", value, flags=re.DOTALL) is not None


def weak_secret_reason(secret: str) -> str | None:
    """Why `secret` is too weak to key sessions, or None if it will do."""
    normal = re.sub(r"[\s_-]+", "", secret.lower())
    copied_advice = "token_urlsafe" in secret or normal.startswith("paste")  # the README's
    if copied_advice or normal in KNOWN_EXAMPLES or normal.startswith(("changeme", "alongrandom")):
        return "it is an example or placeholder value"
    if len(secret) < MIN_LENGTH:
        return f"it has {len(secret)} characters (at least {MIN_LENGTH} needed)"
    if _repeats_a_unit(secret) or _bits(secret) < MIN_BITS:
        return "it is not random enough (repeated or patterned characters)"
    return None


def secret_problem(secret: str) -> str | None:
    """The one-line message refusing `secret`, or None."""
    reason = weak_secret_reason(secret)
    return None if reason is None else f"review_session_secret is too weak: {reason}; {ADVICE}"
