"""Targeting predicates: URL rules, device, country, visitor type, attribute rules, referral source.

Pure functions on plain values, shared by :func:`segmently.assignment.evaluate`, the server's assign
endpoint and the Python SDK; the snippet implements the same rules in TypeScript, so every choice the
spec leaves open is written down here.

URL rules (OR logic) look at the visitor URL as the browser reports it (``location.href``):

* ``exact`` compares scheme and host case-insensitively and the path case-sensitively, ignoring the
  fragment and trailing slashes (``https://a.com/x/`` equals ``https://a.com/x``); the query string
  counts only if the rule has one (so ``?utm_source=…`` on the visitor URL does not break an exact
  rule), and a rule without scheme and host (``/pricing``) compares the path alone;
* ``contains``, ``starts_with`` and ``regex`` (Python :func:`re.search`) see the whole URL, case-sensitive;
  write regexes in the syntax JavaScript shares (no ``(?P<…>)``); an invalid one never matches;
* ``ends_with`` sees the URL without the parts the rule does not name: without fragment and query,
  unless the rule contains ``?`` (then the query counts) or ``#`` (then the whole URL).
"""

from __future__ import annotations

import decimal
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

UrlRuleType = Literal["exact", "contains", "starts_with", "ends_with", "regex"]
Device = Literal["desktop", "tablet", "mobile"]
VisitorType = Literal["all", "new", "returning"]
AttributeOperator = Literal[
    "equals", "not_equals", "contains", "greater_than", "less_than", "exists", "not_exists"
]
ReferralSource = Literal["organic", "paid", "social", "email", "direct", "other"]
AttributeValue = str | int | float | bool | None

URL_RULE_TYPES: Final = frozenset({"exact", "contains", "starts_with", "ends_with", "regex"})
ATTRIBUTE_OPERATORS: Final = frozenset(
    {"equals", "not_equals", "contains", "greater_than", "less_than", "exists", "not_exists"}
)
MAX_ATTRIBUTE_RULES: Final = 10
#: ``setAttributes()`` silently drops these keys, so a rule never sees them.
RESERVED_ATTRIBUTE_KEYS: Final = frozenset({"__proto__", "constructor", "prototype"})
DESKTOP_MIN_WIDTH: Final = 1024
TABLET_MIN_WIDTH: Final = 768
#: Country values that mean "not detected" (Cloudflare sends ``XX``): such visitors are let through.
UNKNOWN_COUNTRIES: Final = frozenset({"", "XX"})
UTM_KEYS: Final = ("utm_source", "utm_medium", "utm_campaign")
PAID_MEDIUMS: Final = frozenset({"cpc", "ppc", "paid", "paid_search", "paidsocial"})
EMAIL_SOURCES: Final = frozenset({"email", "newsletter"})
SEARCH_ENGINES: Final = ("google.com", "bing.com", "yahoo.com", "duckduckgo.com", "baidu.com", "yandex.com")
SOCIAL_SITES: Final = (
    "facebook.com", "twitter.com", "x.com", "instagram.com", "linkedin.com",
    "pinterest.com", "tiktok.com", "reddit.com", "youtube.com",
)  # fmt: skip


class UrlRule(msgspec.Struct, frozen=True):
    """One URL rule of the Targeting tab; an experiment runs where any of its rules matches."""

    type: UrlRuleType
    value: str


class AttributeRule(msgspec.Struct, frozen=True):
    """One attribute rule of the Audience tab; all of an experiment's rules must pass.

    ``value`` is unused by ``exists`` and ``not_exists``; the other operators fail without one.
    """

    key: str
    operator: AttributeOperator
    value: AttributeValue = None


# --- URL rules -------------------------------------------------------------------------------------

_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class UrlView:
    """The parts of one visitor URL the rule types compare, computed once per URL."""

    __slots__ = ("base", "exact_path", "exact_query", "full", "origin", "without_fragment")

    def __init__(self, url: str) -> None:
        self.full = url
        self.without_fragment = url.partition("#")[0]
        self.base, _, query = self.without_fragment.partition("?")
        self.origin, self.exact_path = _split_origin(self.base)
        self.exact_query = query


def _split_origin(base: str) -> tuple[str | None, str]:
    """``(lower-cased scheme://host or None, path without trailing slashes)`` of a URL without query."""
    m = _ORIGIN.match(base)
    if m is None:
        return None, base.rstrip("/")
    return m.group().lower(), base[m.end() :].rstrip("/")


@functools.lru_cache(maxsize=4096)
def url_matcher(rule: UrlRule) -> Callable[[UrlView], bool]:
    """A predicate for one rule, with its regex compiled and its exact parts split once (cached)."""
    value = rule.value
    if rule.type not in URL_RULE_TYPES:  # not a Literal at run time when built without validation
        return lambda u: False
    match rule.type:
        case "exact":
            base, has_query, query = value.partition("#")[0].partition("?")
            origin, path = _split_origin(base)

            def exact(u: UrlView) -> bool:
                return (
                    u.exact_path == path
                    and (origin is None or u.origin == origin)
                    and (not has_query or u.exact_query == query)
                )

            return exact
        case "contains":
            return lambda u: value in u.full
        case "starts_with":
            return lambda u: u.full.startswith(value)
        case "ends_with":
            if "#" in value:
                return lambda u: u.full.endswith(value)
            if "?" in value:
                return lambda u: u.without_fragment.endswith(value)
            return lambda u: u.base.endswith(value)
        case "regex":
            try:
                search = re.compile(value).search
            except (re.error, RecursionError, OverflowError):
                return lambda u: False
            return lambda u: search(u.full) is not None


def url_rule_matches(rule: UrlRule, url: str) -> bool:
    """Whether one URL rule matches ``url`` (see the module docstring for each type)."""
    return url_matcher(rule)(UrlView(url))


def url_matches(rules: Sequence[UrlRule], url: str | None) -> bool:
    """Whether any rule matches ``url``; no rules match every URL, an unknown URL matches no rule."""
    if not rules:
        return True
    if url is None:
        return False
    view = UrlView(url)
    return any(url_matcher(rule)(view) for rule in rules)


# --- URL rules as the snippet runs them ------------------------------------------------------------
#
# The config the snippet loads carries each experiment's rules as regular expressions
# (``url_patterns``), so the browser needs no URL rule logic of its own: one ``RegExp.test`` per
# rule. The patterns use only syntax JavaScript's RegExp and Python's ``re`` read alike (``(?:``,
# ``(?=``, ``(?!``, character classes and escaped punctuation; no ``$``, which Python also matches
# before a final newline), so the tests check them with ``re`` against :func:`url_rule_matches` and
# the snippet's tests run them as RegExp against the same answers.

_SPECIAL = frozenset("\\^$.|?*+()[]{}/")
_PATTERN_ORIGIN = "[A-Za-z][A-Za-z0-9+.-]*://"
_NEVER = "(?!)"


def _literal(text: str) -> str:
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _caseless(text: str) -> str:
    """``text`` matched with ASCII letters in either case (a browser's host is ASCII: punycode)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else _literal(c) for c in text)


@functools.lru_cache(maxsize=4096)
def url_pattern(rule: UrlRule) -> str:
    """A regular expression that matches exactly the URLs ``rule`` matches (see the module docstring).

    An ``exact`` rule becomes: the URL's own origin (or, for a rule that names one, that origin in
    any case), the path, any trailing slashes, then the end of the path: the query the rule names
    (an empty one also matches none), or ``?``, ``#`` or the end. A ``regex`` rule is its own
    pattern; an unknown type never matches.
    """
    value = rule.value
    if rule.type not in URL_RULE_TYPES:  # not a Literal at run time when built without validation
        return _NEVER
    match rule.type:
        case "exact":
            base, has_query, query = value.partition("#")[0].partition("?")
            origin, path = _split_origin(base)
            # the URL's origin is taken whole (never a shorter host, whose rest a path could match);
            # a rule's own origin needs no such guard: a path starts with "/" or is followed by the end
            own = f"(?:{_PATTERN_ORIGIN}[^/?#]*(?![^/?#])|(?!{_PATTERN_ORIGIN}))"
            head = own if origin is None else _caseless(origin)
            if not has_query:
                end = "(?![^?#])"
            elif query:
                end = "\\?" + _literal(query) + "(?![^#])"
            else:
                end = "\\??(?![^#])"
            return "^" + head + _literal(path) + "/*" + end
        case "contains":
            return _literal(value)
        case "starts_with":
            return "^" + _literal(value)
        case "ends_with":
            if "#" in value:
                return _literal(value) + "(?![\\s\\S])"
            if "?" in value:
                return "^[^#]*" + _literal(value) + "(?![^#])"
            return "^[^?#]*" + _literal(value) + "(?![^?#])"
        case "regex":
            return value


def url_patterns(rules: Sequence[UrlRule]) -> list[str]:
    """:func:`url_pattern` of each rule, for the snippet's config (no rules: every URL)."""
    return [url_pattern(rule) for rule in rules]


# escapes and character classes are consumed first so that what they contain is not mistaken for
# syntax JavaScript's RegExp lacks: (?P…) groups, comments, atomic groups, inline flags, possessive
# quantifiers, and \A / \Z (literal letters to JavaScript)
_PYTHON_ONLY = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]|\(\?(?:P|#|>|[aiLmsux-]+[):])|[*+?}]\+")


def validate_url_rule(rule: UrlRule) -> None:
    """Refuse a rule the API must not store.

    Raises:
        ValueError: the type is unknown, the value is empty, or a regex does not compile or uses
            syntax JavaScript's RegExp does not share.
    """
    if rule.type not in URL_RULE_TYPES:
        raise ValueError(
            f"unknown URL rule type {rule.type!r}; use one of {', '.join(sorted(URL_RULE_TYPES))}"
        )
    if not rule.value:
        raise ValueError("a URL rule needs a value")
    if rule.type == "regex":
        try:
            re.compile(rule.value)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"invalid regular expression {rule.value!r}: {exc}") from exc
        for m in _PYTHON_ONLY.finditer(rule.value):
            token = m.group()
            if token[0] not in "\\[" or token in ("\\A", "\\Z"):
                raise ValueError(
                    f"{token!r} in {rule.value!r} is Python-only regex syntax; the snippet runs the "
                    "pattern as a JavaScript RegExp"
                )


# --- device, country, visitor type ---------------------------------------------------------------


def device_for_width(viewport_width: float) -> Device:
    """The device type of a viewport: desktop ≥ 1024 px, tablet 768–1023 px, mobile < 768 px."""
    if viewport_width >= DESKTOP_MIN_WIDTH:
        return "desktop"
    if viewport_width >= TABLET_MIN_WIDTH:
        return "tablet"
    return "mobile"


def device_matches(devices: Sequence[Device], device: Device | None) -> bool:
    """Whether ``device`` is targeted; no devices (or all three) is every device, even an unknown one."""
    if not devices or len(set(devices)) >= 3:
        return True
    return device in devices


def normalize_country(country: str | None) -> str | None:
    """Upper-cased ISO 3166-1 alpha-2 code, or None when the country was not detected."""
    if country is None:
        return None
    code = country.strip().upper()
    return None if code in UNKNOWN_COUNTRIES else code


def country_matches(countries: Sequence[str], country: str | None) -> bool:
    """Whether the visitor's country is targeted; no countries, or an undetected one, lets through."""
    code = normalize_country(country)
    if not countries or code is None:
        return True
    return code in {c.upper() for c in countries}


def visitor_type_matches(visitor_type: VisitorType, is_returning: bool) -> bool:
    """``all`` takes everyone, ``new`` only first visits, ``returning`` only visitors seen before."""
    if visitor_type == "new":
        return not is_returning
    if visitor_type == "returning":
        return is_returning
    return True


# --- attribute rules -----------------------------------------------------------------------------

# JavaScript's StrWhiteSpaceChar, which parseFloat skips (Python's str.isspace differs)
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript computes it, for the JSON values attributes can hold."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return _js_number(value)
    if isinstance(value, list | tuple):
        return ",".join("" if v is None else js_string(v) for v in value)
    return "[object Object]"


def _js_number(value: float) -> str:
    """ECMAScript Number::toString: shortest round-trip digits, exponent form beyond 1e21 and 1e-7."""
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _js_number(-x)
    sign_digits_exp = decimal.Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, sign_digits_exp.digits)).lstrip("0")
    exp = int(sign_digits_exp.exponent)
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    k, n = len(stripped), len(stripped) + exp  # x = 0.<stripped> * 10**n
    if k <= n <= 21:
        return stripped + "0" * (n - k)
    if 0 < n <= 21:
        return stripped[:n] + "." + stripped[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + stripped
    mantissa = stripped[0] + ("." + stripped[1:] if k > 1 else "")
    return f"{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"


def js_parse_float(value: Any) -> float | None:
    """``parseFloat(value)`` as JavaScript computes it, or None where it gives NaN."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            x = float(value)
        except OverflowError:
            x = math.inf if value > 0 else -math.inf
        return None if math.isnan(x) else x
    m = _JS_FLOAT.match(js_string(value).lstrip(_JS_SPACE))
    return None if m is None else float(m.group())


def attribute_rule_passes(rule: AttributeRule, attributes: Mapping[str, Any]) -> bool:
    """Whether one rule passes for the visitor's attributes (keys are case-sensitive).

    Reserved keys (``__proto__``, ``constructor``, ``prototype``) and null values count as absent.
    ``equals``, ``not_equals`` and ``contains`` compare ``String()`` of both sides, case-sensitively; an
    absent attribute fails ``equals`` and ``contains`` and passes ``not_equals``. ``greater_than`` and
    ``less_than`` compare ``parseFloat()`` of both sides and fail when either is not a number. Every
    operator but ``exists`` and ``not_exists`` fails when the rule has no value.
    """
    actual = None if rule.key in RESERVED_ATTRIBUTE_KEYS else attributes.get(rule.key)
    op = rule.operator
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if rule.value is None:
        return False
    if op in ("greater_than", "less_than"):
        a, b = js_parse_float(actual), js_parse_float(rule.value)
        if a is None or b is None:
            return False
        return a > b if op == "greater_than" else a < b
    if actual is None:
        return op == "not_equals"
    if op == "equals":
        return js_string(actual) == js_string(rule.value)
    if op == "not_equals":
        return js_string(actual) != js_string(rule.value)
    if op == "contains":
        return js_string(rule.value) in js_string(actual)
    return False


def attributes_match(rules: Sequence[AttributeRule], attributes: Mapping[str, Any]) -> bool:
    """Whether every rule passes (AND); no rules always pass."""
    return all(attribute_rule_passes(rule, attributes) for rule in rules)


def validate_attribute_rules(rules: Sequence[AttributeRule]) -> None:
    """Refuse a rule set the API must not store.

    Raises:
        ValueError: more than 10 rules, an unknown operator, an empty or reserved key, or a missing value.
    """
    if len(rules) > MAX_ATTRIBUTE_RULES:
        raise ValueError(f"at most {MAX_ATTRIBUTE_RULES} attribute rules per experiment")
    for rule in rules:
        if rule.operator not in ATTRIBUTE_OPERATORS:
            raise ValueError(f"unknown attribute operator {rule.operator!r}")
        if not rule.key:
            raise ValueError("an attribute rule needs a key")
        if rule.key in RESERVED_ATTRIBUTE_KEYS:
            raise ValueError(f"{rule.key!r} is a reserved name and is never set")
        if rule.operator not in ("exists", "not_exists") and rule.value is None:
            raise ValueError(f"the {rule.operator} operator needs a value")


# --- referral source -----------------------------------------------------------------------------


def _on_domain(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _bare_host(host: str) -> str:
    """``Shop.example.com:8080`` → ``shop.example.com``; ``www.`` is dropped on both sides."""
    host = host.strip().lower()
    if not host.startswith("["):
        host = host.partition(":")[0]
    return host.removeprefix("www.")


def classify_referral(
    url_params: Mapping[str, str], referrer: str | None, own_host: str | None
) -> ReferralSource:
    """The traffic source of a visit, for the referral source gate.

    UTM parameters (``utm_source``, ``utm_medium``, ``utm_campaign`` with a non-empty value) take
    precedence; their values compare case-insensitively, the medium before the source:
    medium cpc/ppc/paid/paid_search/paidsocial → paid; medium email → email; medium social → social;
    source email/newsletter → email; source google → paid; any other UTM → other. The spec's testing
    tip "utm_source=google without a medium simulates organic" contradicts both its Organic ("no UTM
    parameters present") and its Paid ("utm_source is google with any UTM present") definitions; the
    definitions win.

    Without UTM: no referrer, or a referrer on ``own_host`` (ignoring ``www.`` and the port; a page
    of the same site), → direct; a search engine (google.com, bing.com, yahoo.com, duckduckgo.com,
    baidu.com, yandex.com or a subdomain) → organic; a social platform (facebook.com, twitter.com,
    x.com, instagram.com, linkedin.com, pinterest.com, tiktok.com, reddit.com, youtube.com or a
    subdomain) → social; anything else, including an unparsable referrer → other.

    Args:
        url_params: the query parameters of the current page URL (first value of each name).
        referrer: ``document.referrer``; None or ``""`` when there is none.
        own_host: the host of the current page, so navigation within the site counts as direct.

    Returns:
        One of organic, paid, social, email, direct, other.
    """
    utm = {k: url_params.get(k, "").strip().lower() for k in UTM_KEYS}
    if any(utm.values()):
        medium, source = utm["utm_medium"], utm["utm_source"]
        if medium in PAID_MEDIUMS:
            return "paid"
        if medium == "email":
            return "email"
        if medium == "social":
            return "social"
        if source in EMAIL_SOURCES:
            return "email"
        if source == "google":
            return "paid"
        return "other"
    if not referrer:
        return "direct"
    try:
        host = (urlsplit(referrer.strip()).hostname or "").removeprefix("www.")
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "other"
    if not host:
        return "other"
    if own_host and host == _bare_host(own_host):
        return "direct"
    if _on_domain(host, SEARCH_ENGINES):
        return "organic"
    if _on_domain(host, SOCIAL_SITES):
        return "social"
    return "other"


def referral_matches(sources: Sequence[ReferralSource], source: ReferralSource) -> bool:
    """Whether the visit's source passes the gate; no sources selected means no gate."""
    return not sources or source in sources
