"""Targeting predicates: every URL rule type, device widths, countries, visitor type, the 7 attribute
operators and the referral source classification."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest

from segmently.targeting import (
    AttributeRule,
    ReferralSource,
    UrlRule,
    attribute_rule_passes,
    attributes_match,
    classify_referral,
    country_matches,
    device_for_width,
    device_matches,
    js_parse_float,
    js_string,
    referral_matches,
    url_matches,
    url_pattern,
    url_rule_matches,
    validate_attribute_rules,
    validate_url_rule,
    visitor_type_matches,
)

# --- URL rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "url", "matches"),
    [
        # exact: scheme/host case-insensitive, path case-sensitive, fragment and trailing slash ignored
        (UrlRule("exact", "https://example.com/pricing"), "https://example.com/pricing", True),
        (UrlRule("exact", "https://example.com/pricing"), "https://example.com/pricing/", True),
        (UrlRule("exact", "https://example.com/pricing/"), "https://example.com/pricing", True),
        (UrlRule("exact", "https://example.com/pricing"), "https://EXAMPLE.com/pricing#plans", True),
        (UrlRule("exact", "HTTPS://Example.COM/pricing"), "https://example.com/pricing", True),
        (UrlRule("exact", "https://example.com/pricing"), "https://example.com/Pricing", False),
        (UrlRule("exact", "https://example.com/pricing"), "https://example.com/pricing/team", False),
        (UrlRule("exact", "https://example.com/pricing"), "http://example.com/pricing", False),
        (UrlRule("exact", "https://example.com/pricing"), "https://shop.example.com/pricing", False),
        (UrlRule("exact", "https://example.com"), "https://example.com/", True),
        # the visitor's query counts only when the rule has one
        (UrlRule("exact", "https://example.com/pricing"), "https://example.com/pricing?utm_source=x", True),
        (UrlRule("exact", "https://example.com/p?plan=pro"), "https://example.com/p?plan=pro", True),
        (UrlRule("exact", "https://example.com/p?plan=pro"), "https://example.com/p?plan=free", False),
        (UrlRule("exact", "https://example.com/p?plan=pro"), "https://example.com/p", False),
        # a rule without scheme and host compares the path
        (UrlRule("exact", "/pricing"), "https://any.example.org/pricing/?a=1", True),
        (UrlRule("exact", "/pricing"), "https://any.example.org/en/pricing", False),
        # contains / starts_with: the whole URL, case-sensitive
        (UrlRule("contains", "/product/"), "https://example.com/product/12", True),
        (UrlRule("contains", "/product/"), "https://example.com/Product/12", False),
        (UrlRule("contains", "utm_source=news"), "https://example.com/?utm_source=news", True),
        (UrlRule("starts_with", "https://example.com/blog/"), "https://example.com/blog/post-1", True),
        (UrlRule("starts_with", "https://example.com/blog/"), "https://example.com/blog", False),
        (UrlRule("starts_with", "https://example.com/blog/"), "http://example.com/blog/post-1", False),
        # ends_with: without query and fragment unless the rule names them
        (UrlRule("ends_with", "/checkout"), "https://example.com/checkout", True),
        (UrlRule("ends_with", "/checkout"), "https://example.com/eu/checkout?step=2#top", True),
        (UrlRule("ends_with", "/checkout"), "https://example.com/checkout/done", False),
        (UrlRule("ends_with", ".html"), "https://example.com/a/b.html?x=1", True),
        (UrlRule("ends_with", "?step=2"), "https://example.com/checkout?step=2#top", True),
        (UrlRule("ends_with", "?step=2"), "https://example.com/checkout?step=3", False),
        (UrlRule("ends_with", "#top"), "https://example.com/checkout?step=2#top", True),
        # regex: re.search over the whole URL
        (UrlRule("regex", r"^https://example\.com/product/[0-9]+$"), "https://example.com/product/42", True),
        (
            UrlRule("regex", r"^https://example\.com/product/[0-9]+$"),
            "https://example.com/product/42?x",
            False,
        ),
        (UrlRule("regex", r"/product/[0-9]+"), "https://example.com/de/product/42?x", True),
        (UrlRule("regex", r"[unclosed"), "https://example.com/[unclosed", False),  # invalid: never matches
    ],
)
def test_url_rule(rule: UrlRule, url: str, matches: bool) -> None:
    assert url_rule_matches(rule, url) is matches
    assert url_matches([rule], url) is matches


def _pattern_matches(rule: UrlRule, url: str) -> bool:
    try:
        return re.search(url_pattern(rule), url) is not None
    except re.error:  # an invalid regex rule: the snippet's RegExp throws and the rule never matches
        return False


def test_url_patterns_match_exactly_what_the_rules_match() -> None:
    """The snippet runs each rule as the pattern of its config: every case of test_url_rule, then
    random rules and URLs built of the characters the rule types treat specially (scheme, host
    case, slashes, ``?``, ``#``, an empty query, a newline), must answer as the rule itself."""
    for args in test_url_rule.pytestmark[0].args[1]:  # type: ignore[attr-defined]
        rule, url, matches = args
        assert _pattern_matches(rule, url) is matches, (rule, url, url_pattern(rule))
    rng = random.Random(7)
    starts = [
        "https://Shop.Example.com", "http://shop.example.com:8443", "HTTPS://SHOP.EXAMPLE.COM",
        "ftp://a", "", "x:/", "https://",
    ]  # fmt: skip
    chars = "aB//??##:.%=\n+*("

    def text() -> str:
        return rng.choice(starts) + "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))

    wrong = []
    for _ in range(100_000):
        rule, url = UrlRule(rng.choice(["exact", "contains", "starts_with", "ends_with"]), text()), text()
        if _pattern_matches(rule, url) is not url_rule_matches(rule, url):
            wrong.append((rule, url, url_pattern(rule)))
    assert wrong == []


def test_url_rules_combine_with_or() -> None:
    rules = [UrlRule("ends_with", "/checkout"), UrlRule("ends_with", "/cart")]
    assert url_matches(rules, "https://example.com/cart")
    assert url_matches(rules, "https://example.com/checkout")
    assert not url_matches(rules, "https://example.com/pricing")


def test_no_url_rules_match_everywhere_and_an_unknown_url_matches_no_rule() -> None:
    assert url_matches([], "https://example.com/anything")
    assert url_matches([], None)
    assert not url_matches([UrlRule("contains", "/")], None)


def test_unknown_rule_type_never_matches() -> None:
    rule = UrlRule("glob", "*")
    assert not url_rule_matches(rule, "https://example.com/")
    with pytest.raises(ValueError, match="unknown URL rule type"):
        validate_url_rule(rule)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (UrlRule("regex", "[a-"), "invalid regular expression"),
        (UrlRule("regex", "(?P<x"), "invalid regular expression"),
        (UrlRule("regex", "a{2,1}"), "invalid regular expression"),
        (UrlRule("contains", ""), "needs a value"),
        # Python-only syntax: the snippet runs the same pattern as a JavaScript RegExp
        (UrlRule("regex", "(?P<id>[0-9]+)"), "Python-only"),
        (UrlRule("regex", "(?i)/product/"), "Python-only"),
        (UrlRule("regex", "(?i:/product/)"), "Python-only"),
        (UrlRule("regex", "/product/(?#id)"), "Python-only"),
        (UrlRule("regex", "(?>a+)b"), "Python-only"),
        (UrlRule("regex", "a++"), "Python-only"),
        (UrlRule("regex", "a{2}+"), "Python-only"),
        (UrlRule("regex", "\\A/product"), "Python-only"),
        (UrlRule("regex", "/product\\Z"), "Python-only"),
    ],
)
def test_validate_url_rule_refuses(rule: UrlRule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_url_rule(rule)


def test_validate_url_rule_accepts_valid_rules() -> None:
    for rule in [
        UrlRule("regex", r"^https://example\.com/product/[0-9]+$"),
        UrlRule("regex", r"/(?:cart|checkout)(?=/|$)(?!x)(?<=t)(?<!y)"),
        UrlRule("regex", r"[*+?]+\+\\A[(?i)]\(\?P"),  # escaped or in a class: plain characters
        UrlRule("regex", r"a+?b*?c{1,2}?"),  # lazy quantifiers are shared
        UrlRule("exact", "https://example.com/pricing"),
        UrlRule("contains", "/product/"),
        UrlRule("starts_with", "https://example.com/blog/"),
        UrlRule("ends_with", "/checkout"),
    ]:
        validate_url_rule(rule)


# --- device, country, visitor type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "device"),
    [(0, "mobile"), (375, "mobile"), (767, "mobile"), (767.5, "mobile"), (768, "tablet"), (1023, "tablet"),
     (1024, "desktop"), (2560, "desktop")],
)  # fmt: skip
def test_device_from_viewport_width(width: float, device: str) -> None:
    assert device_for_width(width) == device


def test_device_targeting() -> None:
    assert device_matches([], "mobile")
    assert device_matches([], None)
    assert device_matches(["desktop", "tablet", "mobile"], None)
    assert device_matches(["desktop"], "desktop")
    assert device_matches(["mobile", "tablet"], "tablet")
    assert not device_matches(["desktop"], "mobile")
    assert not device_matches(["desktop"], None)


def test_country_targeting() -> None:
    assert country_matches([], "US")
    assert country_matches(["US", "GB"], "GB")
    assert country_matches(["us"], "US")
    assert country_matches(["US"], "us")
    assert not country_matches(["US", "GB"], "DE")
    # visitors whose country cannot be detected are always allowed through
    assert country_matches(["US"], None)
    assert country_matches(["US"], "")
    assert country_matches(["US"], "XX")


def test_visitor_type() -> None:
    assert visitor_type_matches("all", True) and visitor_type_matches("all", False)
    assert visitor_type_matches("new", False) and not visitor_type_matches("new", True)
    assert visitor_type_matches("returning", True) and not visitor_type_matches("returning", False)


# --- attribute rules -----------------------------------------------------------------------------

ATTRS: dict[str, Any] = {
    "plan": "pro",
    "loginCount": 8,
    "cartValue": 149.99,
    "email": "ann@company.com",
    "userId": 0,
    "score": "42abc",
    "flag": True,
    "empty": "",
    "nothing": None,
    "ratio": 1.0,
    "constructor": "x",
    "prototype": "y",
}


@pytest.mark.parametrize(
    ("key", "operator", "value", "passes"),
    [
        # equals / not_equals: String() of both sides, case-sensitive
        ("plan", "equals", "pro", True),
        ("plan", "equals", "Pro", False),
        ("Plan", "equals", "pro", False),  # keys are case-sensitive
        ("loginCount", "equals", "8", True),
        ("loginCount", "equals", 8, True),
        ("ratio", "equals", "1", True),  # String(1.0) is "1" in JavaScript
        ("ratio", "equals", "1.0", False),
        ("cartValue", "equals", "149.99", True),
        ("flag", "equals", "true", True),
        ("flag", "equals", "True", False),
        ("empty", "equals", "", True),
        ("missing", "equals", "pro", False),
        ("nothing", "equals", "null", False),  # null counts as absent
        ("plan", "not_equals", "free", True),
        ("plan", "not_equals", "pro", False),
        ("missing", "not_equals", "admin", True),
        ("nothing", "not_equals", "admin", True),
        # contains: case-sensitive substring of String()
        ("email", "contains", "@company.com", True),
        ("email", "contains", "@Company.com", False),
        ("loginCount", "contains", "8", True),
        ("plan", "contains", "", True),
        ("missing", "contains", "x", False),
        # greater_than / less_than: parseFloat() of both sides; not a number fails
        ("loginCount", "greater_than", "5", True),
        ("loginCount", "greater_than", "8", False),
        ("loginCount", "greater_than", 7.5, True),
        ("cartValue", "greater_than", "100", True),
        ("cartValue", "less_than", "50", False),
        ("cartValue", "less_than", "150", True),
        ("score", "greater_than", "41", True),  # parseFloat("42abc") is 42
        ("plan", "greater_than", "1", False),
        ("plan", "less_than", "1", False),
        ("loginCount", "greater_than", "many", False),
        ("flag", "greater_than", "0", False),  # parseFloat("true") is NaN
        ("empty", "less_than", "1", False),
        ("missing", "less_than", "1", False),
        ("nothing", "greater_than", "-1", False),
        ("userId", "less_than", "1", True),
        # exists / not_exists: present and not null
        ("userId", "exists", None, True),  # 0 is a value
        ("empty", "exists", None, True),
        ("nothing", "exists", None, False),
        ("missing", "exists", None, False),
        ("missing", "not_exists", None, True),
        ("nothing", "not_exists", None, True),
        ("plan", "not_exists", None, False),
        # reserved keys are never set by setAttributes()
        ("constructor", "exists", None, False),
        ("constructor", "equals", "x", False),
        ("prototype", "not_exists", None, True),
        ("__proto__", "not_exists", None, True),
        # value operators without a value fail
        ("plan", "equals", None, False),
        ("plan", "not_equals", None, False),
        ("plan", "contains", None, False),
        ("loginCount", "greater_than", None, False),
    ],
)
def test_attribute_operator(key: str, operator: str, value: Any, passes: bool) -> None:
    rule = AttributeRule(key, operator, value)
    assert attribute_rule_passes(rule, ATTRS) is passes


def test_attribute_rules_are_and_gated() -> None:
    rules = [AttributeRule("plan", "equals", "pro"), AttributeRule("loginCount", "greater_than", "5")]
    assert attributes_match(rules, {"plan": "pro", "loginCount": 12})
    assert not attributes_match(rules, {"plan": "pro", "loginCount": 3})
    assert not attributes_match(rules, {"plan": "free", "loginCount": 12})
    assert attributes_match([], {})


def test_unknown_operator_fails() -> None:
    assert not attribute_rule_passes(AttributeRule("plan", "matches", "pro"), ATTRS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"), (True, "true"), (False, "false"), (None, "null"), (0, "0"), (-0.0, "0"),
        (1.0, "1"), (149.99, "149.99"), (-2.5, "-2.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"), (1.5e-7, "1.5e-7"), (1e-6, "0.000001"),
        (0.1 + 0.2, "0.30000000000000004"), (2**53, "9007199254740992"), (10**400, "Infinity"),
        (math.inf, "Infinity"), (-math.inf, "-Infinity"), (math.nan, "NaN"), ([1, "a", None], "1,a,"),
        ({"a": 1}, "[object Object]"),
    ],
)  # fmt: skip
def test_js_string(value: Any, expected: str) -> None:
    assert js_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42.0), ("  12.5kg", 12.5), ("\u00a0\ufeff7", 7.0), ("-3", -3.0), ("+.5", 0.5),
        ("1.e3", 1000.0), ("1e", 1.0), ("2E-2x", 0.02), ("Infinity", math.inf), ("-Infinity", -math.inf),
        ("0x10", 0.0),
        ("", None), ("abc", None), (".", None), ("-", None), ("e5", None), ("NaN", None), ("inf", None),
        ("\u00851", None), (None, None), (True, None), (7, 7.0), (2.5, 2.5), (math.nan, None), ([5], 5.0),
        ("１２", None),  # full-width digits are not digits to parseFloat
    ],
)  # fmt: skip
def test_js_parse_float(value: Any, expected: float | None) -> None:
    assert js_parse_float(value) == expected


def test_validate_attribute_rules() -> None:
    validate_attribute_rules([AttributeRule("plan", "equals", "pro")] * 10 + [])
    validate_attribute_rules([AttributeRule("userId", "exists")])
    with pytest.raises(ValueError, match="at most 10"):
        validate_attribute_rules([AttributeRule("plan", "equals", "pro")] * 11)
    with pytest.raises(ValueError, match="reserved"):
        validate_attribute_rules([AttributeRule("constructor", "exists")])
    with pytest.raises(ValueError, match="needs a value"):
        validate_attribute_rules([AttributeRule("plan", "equals")])
    with pytest.raises(ValueError, match="unknown attribute operator"):
        validate_attribute_rules([AttributeRule("plan", "like", "x")])
    with pytest.raises(ValueError, match="needs a key"):
        validate_attribute_rules([AttributeRule("", "exists")])


# --- referral source -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "referrer", "source"),
    [
        # UTM first: the medium, then the source
        ({"utm_medium": "cpc"}, None, "paid"),
        ({"utm_medium": "ppc"}, None, "paid"),
        ({"utm_medium": "paid"}, None, "paid"),
        ({"utm_medium": "paid_search"}, None, "paid"),
        ({"utm_medium": "paidsocial", "utm_source": "facebook"}, None, "paid"),
        ({"utm_medium": "CPC"}, None, "paid"),  # values compare case-insensitively
        ({"utm_source": "google"}, None, "paid"),  # "utm_source is google with any UTM present"
        ({"utm_source": "google", "utm_campaign": "spring"}, None, "paid"),
        ({"utm_source": "google", "utm_medium": "email"}, None, "email"),  # the medium wins
        ({"utm_medium": "email"}, None, "email"),
        ({"utm_source": "email"}, None, "email"),
        ({"utm_source": "newsletter", "utm_campaign": "nov"}, None, "email"),
        ({"utm_medium": "social"}, None, "social"),
        ({"utm_medium": "social"}, "https://www.google.com/", "social"),  # referrer ignored under UTM
        ({"utm_medium": "partner"}, None, "other"),
        ({"utm_campaign": "launch"}, "https://www.facebook.com/", "other"),
        ({"utm_source": "facebook"}, None, "other"),
        # no UTM (empty values do not count): the referrer
        ({}, None, "direct"),
        ({}, "", "direct"),
        ({"utm_source": "", "utm_medium": " "}, None, "direct"),
        ({"ref": "x"}, None, "direct"),
        ({}, "https://www.google.com/", "organic"),
        ({}, "https://google.com/search?q=x", "organic"),
        ({}, "https://www.bing.com/", "organic"),
        ({}, "https://search.yahoo.com/", "organic"),
        ({}, "https://duckduckgo.com/", "organic"),
        ({}, "https://www.baidu.com/s?wd=x", "organic"),
        ({}, "https://yandex.com/", "organic"),
        ({}, "https://www.facebook.com/", "social"),
        ({}, "https://l.facebook.com/l.php?u=x", "social"),
        ({}, "https://twitter.com/", "social"),
        ({}, "https://x.com/someone", "social"),
        ({}, "https://www.instagram.com/", "social"),
        ({}, "https://www.linkedin.com/feed/", "social"),
        ({}, "https://pinterest.com/", "social"),
        ({}, "https://www.tiktok.com/", "social"),
        ({}, "https://old.reddit.com/r/x", "social"),
        ({}, "https://www.youtube.com/watch?v=1", "social"),
        ({}, "https://GOOGLE.COM:443/", "organic"),
        ({}, "https://notgoogle.com/", "other"),  # a suffix is not a subdomain
        ({}, "https://google.com.evil.example/", "other"),
        ({}, "https://partner.example.org/deals", "other"),
        ({}, "https://shop.example.com/cart", "direct"),  # a page of the same site
        ({}, "https://www.shop.example.com/cart", "direct"),
        ({}, "https://blog.example.com/post", "other"),  # another domain of the owner
        ({}, "http://[::1", "other"),  # unparsable
        ({}, "not a url", "other"),
    ],
)
def test_classify_referral(params: dict[str, str], referrer: str | None, source: ReferralSource) -> None:
    assert classify_referral(params, referrer, "shop.example.com") == source


def test_classify_referral_without_own_host() -> None:
    assert classify_referral({}, "https://shop.example.com/cart", None) == "other"
    assert classify_referral({}, "https://shop.example.com/cart", "SHOP.example.com:8443") == "direct"


def test_referral_gate() -> None:
    assert referral_matches([], "other")
    assert referral_matches(["paid", "email"], "email")
    assert not referral_matches(["paid"], "organic")
