"""Assignment: hashing, bucket ranges, experiment evaluation, feature flags and MVT cells.

Identical in Python and in the snippet's TypeScript, and byte-for-byte compatible with GrowthBook
(``growthbook`` 4.0.0 is the oracle in the tests; ``tests/fixtures/hash_vectors.json`` carries the same
vectors to the snippet's tests):

* ``fnv1a32`` walks the UTF-16 code units of a string (JavaScript's ``charCodeAt``), not its UTF-8
  bytes; ``hash_v2(seed, id) = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000``;
* an experiment puts a visitor at ``n = hash_v2(hash_seed, visitor_id)`` and variant ``i`` covers
  ``[cum_i, cum_i + coverage * w_i)`` with ``w_i = weight_i / 100`` and ``coverage = traffic / 100``,
  so raising traffic keeps existing visitors in their variant;
* a flag is on for a visitor when it is active and ``hash_v2(flag_key, visitor_id) < rollout / 100``.

Everything here is a pure function of its arguments (the caches only remember derived values).
Stickiness (a stored first assignment wins) is the caller's business.
"""

from __future__ import annotations

import array
import functools
import itertools
import math
import operator
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

import msgspec

from segmently.targeting import (
    AttributeRule,
    Device,
    ReferralSource,
    UrlRule,
    UrlView,
    VisitorType,
    attributes_match,
    classify_referral,
    device_for_width,
    normalize_country,
    url_matcher,
    url_patterns,
    visitor_type_matches,
)

__all__ = [
    "Decision",
    "ExperimentRules",
    "FlagSet",
    "Hasher",
    "MvtCell",
    "Reason",
    "VisitorContext",
    "WeightedVariant",
    "bucket_ranges",
    "choose_variant",
    "evaluate",
    "flag_enabled",
    "flags_enabled",
    "fnv1a32",
    "hash_v2",
    "mvt_cells",
    "snippet_rules",
]

Reason = Literal["url", "device", "country", "visitor_type", "attributes", "referral", "traffic"]

FNV_OFFSET: Final = 0x811C9DC5
FNV_PRIME: Final = 0x01000193
# a weight vector whose sum falls outside these bounds is replaced by equal weights (as GrowthBook)
WEIGHT_SUM_MIN: Final = 0.99
WEIGHT_SUM_MAX: Final = 1.01
MVT_CELL_PREFIX: Final = "mvt-cell-"
_UTF16_NATIVE: Final = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"

# --- hashing -------------------------------------------------------------------------------------


def _code_units(s: str) -> Iterable[int]:
    """The UTF-16 code units of ``s``; lone surrogates pass through as themselves, like ``charCodeAt``."""
    if s.isascii():
        return s.encode("ascii")
    return memoryview(s.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")


def _fnv1a32_from(state: int, units: Iterable[int]) -> int:
    for u in units:
        state = ((state ^ u) * FNV_PRIME) & 0xFFFFFFFF
    return state


def fnv1a32(s: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units of ``s``."""
    return _fnv1a32_from(FNV_OFFSET, _code_units(s))


def _decimal_prefix_table(size: int) -> array.array[int]:
    """``table[q] == fnv1a32(str(q))`` for ``1 <= q < size``, each from its parent ``q // 10``."""
    table = array.array("I", bytes(4 * size))
    for q in range(1, size):
        parent = table[q // 10] if q >= 10 else FNV_OFFSET
        table[q] = ((parent ^ (0x30 + q % 10)) * FNV_PRIME) & 0xFFFFFFFF
    return table


# str(h) of a 32-bit h >= 10**6 is str(h // 10**6) + six digits: 4,295 prefixes (17 KiB, built in ~1 ms)
_DECIMAL_PREFIX: Final = _decimal_prefix_table(2**32 // 1_000_000 + 1)


class Hasher:
    """``hash_v2(seed, ·)`` with the FNV state after the seed precomputed, for hashing many ids.

    ``Hasher(seed)(visitor_id) == hash_v2(seed, visitor_id)``; only the id's own code units and the
    last six digits of the second round are hashed per call.
    """

    __slots__ = ("_state", "seed")

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._state = _fnv1a32_from(FNV_OFFSET, _code_units(seed))

    def __repr__(self) -> str:
        return f"Hasher({self.seed!r})"

    def __call__(self, value: str) -> float:
        """The bucket of ``value`` in [0, 1), a multiple of 1/10000."""
        h = self._state
        # the hot path: literals instead of globals, the loops written out
        for u in value.encode("ascii") if value.isascii() else _code_units(value):
            h = ((h ^ u) * 16777619) & 0xFFFFFFFF
        # second round over str(h): the leading digits come from a table, only the last six are hashed
        if h >= 1000000:
            q, r = divmod(h, 1000000)
            g = _DECIMAL_PREFIX[q]
            digits = b"%06d" % r
        else:
            g = 0x811C9DC5
            digits = b"%d" % h
        for u in digits:
            g = ((g ^ u) * 16777619) & 0xFFFFFFFF
        return (g % 10000) / 10000


_hasher = functools.lru_cache(maxsize=1024)(Hasher)


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook's hash version 2: ``(fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000``."""
    return _hasher(seed)(value)


# --- bucket ranges -------------------------------------------------------------------------------


def _valid_weights(weights: Sequence[float], num_variants: int) -> bool:
    """One finite, non-negative number per variant (no booleans), summing to within [0.99, 1.01]."""
    if len(weights) != num_variants:
        return False
    try:
        total = 0.0
        for w in weights:
            if not isinstance(w, int | float) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
                return False
            total += w  # left to right like JavaScript (sum() compensates from Python 3.12)
        return WEIGHT_SUM_MIN <= total <= WEIGHT_SUM_MAX
    except OverflowError:  # an int too large for a float
        return False


def bucket_ranges(
    weights: Sequence[float], coverage: float = 1.0, *, num_variants: int | None = None
) -> list[tuple[float, float]]:
    """The ``[start, end)`` range of each variant, exactly as GrowthBook's ``getBucketRanges``.

    Args:
        weights: fractions of traffic per variant, summing to 1 (within 0.99–1.01).
        coverage: the fraction of visitors in the experiment, clamped to [0, 1].
        num_variants: the number of variants, ``len(weights)`` by default; when the weights do not
            fit it (another length, a negative or non-finite weight, a sum outside 0.99–1.01) every
            variant gets ``1 / num_variants`` instead.

    Returns:
        ``[(cum_i, cum_i + coverage * w_i)]``; ``cum_i`` adds up the earlier weights in order.
    """
    n = len(weights) if num_variants is None else num_variants
    if coverage < 0:
        coverage = 0
    if coverage > 1:
        coverage = 1
    if not _valid_weights(weights, n):
        weights = [1 / n for _ in range(n)] if n >= 1 else []
    cumulative: float = 0
    ranges = []
    for w in weights:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variant(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the first range with ``start <= n < end``, or -1 (not in the experiment)."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


# --- experiments ---------------------------------------------------------------------------------


class WeightedVariant(msgspec.Struct, frozen=True):
    """A variant as assignment sees it: its id, its key and its weight in percent."""

    id: str
    key: str
    weight: float


class ExperimentRules(msgspec.Struct, frozen=True, dict=True, kw_only=True):
    """What :func:`evaluate` needs of an experiment, independent of how the server stores it.

    Empty ``url_rules``, ``devices``, ``countries``, ``attribute_rules`` or ``referral_sources`` mean
    no restriction. Immutable, so the prepared form (hasher, ranges, compiled rules) is kept with it.
    """

    hash_seed: str
    variants: tuple[WeightedVariant, ...]
    traffic_percentage: float = 100.0
    url_rules: tuple[UrlRule, ...] = ()
    devices: tuple[Device, ...] = ()
    countries: tuple[str, ...] = ()
    visitor_type: VisitorType = "all"
    attribute_rules: tuple[AttributeRule, ...] = ()
    referral_sources: tuple[ReferralSource, ...] = ()

    @functools.cached_property
    def _prepared(self) -> _Prepared:
        return _Prepared(self)


class _Prepared:
    """The derived form of an :class:`ExperimentRules`, built on its first evaluation."""

    __slots__ = ("attribute_rules", "countries", "devices", "hasher", "ranges", "referral", "url", "variants")

    def __init__(self, e: ExperimentRules) -> None:
        self.variants = tuple(e.variants)
        self.hasher = _hasher(e.hash_seed)
        self.ranges = bucket_ranges([v.weight / 100 for v in e.variants], e.traffic_percentage / 100)
        self.url = tuple(url_matcher(r) for r in e.url_rules) or None
        self.devices = frozenset(e.devices) if e.devices and len(set(e.devices)) < 3 else None
        self.countries = frozenset(c.upper() for c in e.countries) or None
        self.attribute_rules = tuple(e.attribute_rules)
        self.referral = frozenset(e.referral_sources) or None


def snippet_rules(experiment: ExperimentRules) -> dict[str, Any]:
    """What the snippet's config carries of ``experiment`` so the browser needs no rule logic of its own.

    ``url``: one regular expression per URL rule (:func:`segmently.targeting.url_pattern`);
    ``ranges``: the bucket ranges of the weights and traffic percentage; ``countries``: upper-cased;
    ``devices``: none when all three are listed (every device, even an unknown one). The snippet
    then evaluates with ``RegExp.test``, a range lookup and ``includes``.
    """
    p = experiment._prepared
    return {
        "url": url_patterns(experiment.url_rules),
        "ranges": [list(r) for r in p.ranges],
        "countries": sorted(p.countries or ()),
        "devices": sorted(p.devices or ()),
    }


class VisitorContext(msgspec.Struct, frozen=True, dict=True, kw_only=True):
    """What :func:`evaluate` needs of a visitor on a page.

    Attributes:
        visitor_id: the hashed id (``seg_visitor_id``).
        url: the page URL (``location.href``); None when unknown, which fails any URL rule.
        device: the device type if known; otherwise derived from ``viewport_width``; unknown fails
            device targeting that excludes any device.
        viewport_width: the viewport width in CSS pixels.
        country: ISO 3166-1 alpha-2; None, ``""`` or ``XX`` (not detected) passes country targeting.
        is_returning: whether the ``_seg_visitor`` cookie was already present.
        attributes: what ``Segmently.setAttributes()`` received.
        referrer: ``document.referrer``.
        url_params: the page's query parameters; None to read them from ``url``.
    """

    visitor_id: str
    url: str | None = None
    device: Device | None = None
    viewport_width: float | None = None
    country: str | None = None
    is_returning: bool = False
    attributes: dict[str, Any] = {}
    referrer: str | None = None
    url_params: dict[str, str] | None = None

    @functools.cached_property
    def device_type(self) -> Device | None:
        """The given device, else the one of the viewport width, else None."""
        if self.device is not None:
            return self.device
        return None if self.viewport_width is None else device_for_width(self.viewport_width)

    @functools.cached_property
    def referral_source(self) -> ReferralSource:
        """The visit's traffic source (see :func:`segmently.targeting.classify_referral`)."""
        params: Mapping[str, str] = self.url_params or {}
        own_host = None
        if self.url is not None:
            try:
                parts = urlsplit(self.url)
                own_host = parts.hostname
            except ValueError:  # e.g. an unclosed IPv6 bracket
                return classify_referral(params, self.referrer, None)
            if self.url_params is None:
                first: dict[str, str] = {}
                for k, v in parse_qsl(parts.query, keep_blank_values=True):
                    first.setdefault(k, v)  # the first value, as URLSearchParams.get
                params = first
        return classify_referral(params, self.referrer, own_host)

    @functools.cached_property
    def _url_view(self) -> UrlView | None:
        return None if self.url is None else UrlView(self.url)

    @functools.cached_property
    def _country(self) -> str | None:
        return normalize_country(self.country)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`evaluate`.

    ``variant_index`` is the position in ``ExperimentRules.variants`` (-1 when not in), ``bucket``
    the visitor's hash, and ``reason`` the first check that excluded the visitor (None when in):
    url, device, country, visitor_type, attributes, referral, traffic (outside every bucket range).
    """

    in_experiment: bool
    variant_index: int = -1
    variant_id: str | None = None
    variant_key: str | None = None
    bucket: float | None = None
    reason: Reason | None = None


_EXCLUDED: Final[dict[Reason, Decision]] = {
    r: Decision(in_experiment=False, reason=r) for r in get_args(Reason)
}


def evaluate(experiment: ExperimentRules, visitor: VisitorContext) -> Decision:
    """Whether the visitor is in the experiment and in which variant, or why not.

    Checks in the spec's order: URL (any rule), device, country, visitor type, attribute rules,
    referral source gate, then the traffic percentage through the bucket ranges.
    """
    p = experiment._prepared
    if p.url is not None:
        view = visitor._url_view
        if view is None:
            return _EXCLUDED["url"]
        for match in p.url:
            if match(view):
                break
        else:
            return _EXCLUDED["url"]
    if p.devices is not None and visitor.device_type not in p.devices:
        return _EXCLUDED["device"]
    if p.countries is not None:
        country = visitor._country
        if country is not None and country not in p.countries:
            return _EXCLUDED["country"]
    if experiment.visitor_type != "all" and not visitor_type_matches(
        experiment.visitor_type, visitor.is_returning
    ):
        return _EXCLUDED["visitor_type"]
    if p.attribute_rules and not attributes_match(p.attribute_rules, visitor.attributes):
        return _EXCLUDED["attributes"]
    if p.referral is not None and visitor.referral_source not in p.referral:
        return _EXCLUDED["referral"]
    n = p.hasher(visitor.visitor_id)
    i = choose_variant(n, p.ranges)
    if i < 0:
        return _EXCLUDED["traffic"]
    v = p.variants[i]
    return Decision(in_experiment=True, variant_index=i, variant_id=v.id, variant_key=v.key, bucket=n)


# --- feature flags -------------------------------------------------------------------------------


def flag_enabled(flag_key: str, rollout_percentage: float, visitor_id: str, active: bool) -> bool:
    """Whether a flag is on for a visitor: ``active and hash_v2(flag_key, visitor_id) < rollout / 100``."""
    return active and _hasher(flag_key)(visitor_id) < rollout_percentage / 100


def _rollout_threshold(rollout_percentage: float) -> int:
    """How many buckets ``b`` in 0..9999 have ``b / 10000 < rollout_percentage / 100``.

    Those buckets are a prefix (``b / 10000`` grows with ``b``), so a flag is on exactly when the
    visitor's bucket ``hash_v2 * 10000`` is below the result; found with the same float comparison
    as :func:`flag_enabled` (a NaN rollout gives 0: off for everyone).
    """
    limit = rollout_percentage / 100
    lo, hi = 0, 10000
    while lo < hi:
        mid = (lo + hi) // 2
        if mid / 10000 < limit:
            lo = mid + 1
        else:
            hi = mid
    return lo


# one 64-bit lane per flag in a big integer: 32-bit FNV states times the 25-bit prime stay below 2**57
_LANE_BITS: Final = 64
_BYTE_ORDER: Final = sys.byteorder  # lanes are read back as native unsigned 64-bit ints ("Q")
_PREFIX_BYTES: Final = [int(h).to_bytes(8, _BYTE_ORDER) for h in _DECIMAL_PREFIX]
# floor(x / 15625) == (x * _DIV_15625) >> 40 for x < 2**26 and floor(x / 10) == (x * _DIV_10) >> 24
# for x < 2**20 (Granlund-Montgomery: 0 <= m * d - 2**(N + l) <= 2**l with d <= 2**l)
_DIV_15625: Final = 70368745
_DIV_10: Final = 1677722
_TEN_THOUSANDS: Final = itertools.repeat(10000)  # endless: map() stops at its other argument's end


class _UnitLanes(dict[int, int]):
    """A code unit copied into every lane, computed on first use (an id uses few distinct units)."""

    __slots__ = ("ones",)

    def __init__(self, ones: int) -> None:
        super().__init__()
        self.ones = ones

    def __missing__(self, unit: int) -> int:
        lanes = self[unit] = unit * self.ones
        return lanes


class FlagSet:
    """A site's flags prepared once, to evaluate all of them for one visitor at once.

    ``FlagSet(flags)(visitor_id)`` is ``{key: flag_enabled(key, rollout, visitor_id, active) for key,
    rollout, active in flags}``, exactly (a key listed twice: the last one wins, as in that dict).

    Inactive flags and rollouts that include no bucket or every bucket are constants. The others
    are hashed together (a single one alone, as :func:`flag_enabled`: that is faster for one): each
    flag's FNV state after its key sits in its own 64-bit lane of one big integer, so one XOR, one
    multiplication and one mask per code unit of the id advance every flag at once. The second
    round, over the decimal digits of each state, runs in the lanes too: the leading digits (all but
    the last six) come from the same table as :class:`Hasher`, the last six from divisions by
    multiplication with a reciprocal. A state below 10**6 (fewer digits, about one lane in 4,300) is
    redone on its own. Per flag this costs about a fifth of :func:`flag_enabled` with 20 flags and
    less with more; with two hashed flags it is as fast as one :func:`flag_enabled` per flag.
    """

    __slots__ = (
        "_below_million",
        "_code_unit_lanes",
        "_constant",
        "_digit_lanes",
        "_high_bits",
        "_keys",
        "_low20",
        "_low26",
        "_mask",
        "_ones",
        "_single",
        "_size",
        "_start",
        "_thresholds",
        "flags",
    )

    def __init__(self, flags: Iterable[tuple[str, float, bool]]) -> None:
        self.flags = tuple(flags)
        last = {key: (rollout, active) for key, rollout, active in self.flags}
        self._constant: dict[str, bool] = {}
        hashed: list[tuple[str, int]] = []
        self._single: tuple[str, Hasher, float] | None = None
        for key, (rollout, active) in last.items():
            threshold = _rollout_threshold(rollout) if active else 0
            self._constant[key] = threshold >= 10000
            if 0 < threshold < 10000:
                hashed.append((key, threshold))
                self._single = (key, _hasher(key), rollout / 100)
        if len(hashed) != 1:  # one flag alone: the scalar hash is faster than one lane
            self._single = None
        self._keys = tuple(key for key, _ in hashed)
        self._thresholds = tuple(t for _, t in hashed)
        self._size = 8 * len(hashed)
        ones = sum(1 << (_LANE_BITS * i) for i in range(len(hashed)))
        self._ones = ones
        self._mask = 0xFFFFFFFF * ones
        self._low26 = ((1 << 26) - 1) * ones
        self._low20 = ((1 << 20) - 1) * ones
        self._digit_lanes = 0x30 * ones  # "0"
        self._high_bits = (1 << 63) * ones
        self._below_million = ((1 << 63) - 1_000_000) * ones  # sets a lane's top bit if it is >= 10**6
        self._start = sum(
            _fnv1a32_from(FNV_OFFSET, _code_units(key)) << (_LANE_BITS * i)
            for i, key in enumerate(self._keys)
        )
        self._code_unit_lanes = _UnitLanes(ones)

    def __repr__(self) -> str:
        return f"FlagSet({list(self.flags)!r})"

    def __call__(self, visitor_id: str) -> dict[str, bool]:
        """Every flag, on or off for ``visitor_id``."""
        out = self._constant.copy()
        if self._single is not None:
            key, hasher, limit = self._single
            out[key] = hasher(visitor_id) < limit
            return out
        if not self._keys:
            return out
        mask, prime, order, size = self._mask, 16777619, _BYTE_ORDER, self._size
        # first round: the id's code units, every lane at once
        h = self._start
        if visitor_id.isascii():
            lanes = self._code_unit_lanes
            for u in visitor_id.encode("ascii"):
                h = ((h ^ lanes[u]) * prime) & mask
        else:  # not remembered: up to 65,536 units
            ones = self._ones
            for u in _code_units(visitor_id):
                h = ((h ^ (u * ones)) * prime) & mask
        # second round over str(h): q = h // 10**6 picks the leading digits' state from the table ...
        q = ((((h >> 6) & self._low26) * _DIV_15625) >> 40) & self._low20
        quotients = memoryview(q.to_bytes(size, order)).cast("Q")
        g = int.from_bytes(b"".join(map(_PREFIX_BYTES.__getitem__, quotients)), order)
        # ... and the last six digits of r = h % 10**6 are hashed, the most significant first
        r = h - q * 1_000_000
        digits = []
        for _ in range(5):
            q = ((r * _DIV_10) >> 24) & self._low20
            digits.append(r - q * 10)
            r = q
        zero = self._digit_lanes
        g = ((g ^ zero ^ r) * prime) & mask
        for d in reversed(digits):
            g = ((g ^ zero ^ d) * prime) & mask
        states = memoryview(g.to_bytes(size, order)).cast("Q")
        out.update(
            zip(
                self._keys,
                map(operator.lt, map(operator.mod, states, _TEN_THOUSANDS), self._thresholds),
                strict=True,
            )
        )
        if (h + self._below_million) & self._high_bits != self._high_bits:  # a lane with fewer digits
            firsts = memoryview(h.to_bytes(size, order)).cast("Q")
            for i, state in enumerate(firsts):
                if state < 1_000_000:
                    bucket = _fnv1a32_from(FNV_OFFSET, b"%d" % state) % 10000
                    out[self._keys[i]] = bucket < self._thresholds[i]
        return out


_flag_set = functools.lru_cache(maxsize=64)(FlagSet)


def flags_enabled(flags: Sequence[tuple[str, float, bool]], visitor_id: str) -> dict[str, bool]:
    """Every flag ``(key, rollout_percentage, active)`` on or off for a visitor, as :func:`flag_enabled`.

    The same as ``{key: flag_enabled(key, rollout, visitor_id, active) for key, rollout, active in
    flags}``, several times faster per flag: the flags are hashed together (see :class:`FlagSet`,
    prepared once per distinct ``flags`` and cached; keep a :class:`FlagSet` to skip the lookup).
    """
    return _flag_set(tuple(flags))(visitor_id)


# --- multivariate tests --------------------------------------------------------------------------


class MvtCell(msgspec.Struct, frozen=True):
    """One generated MVT variant: ``mvt-cell-N``, one variation key per section, its weight in percent."""

    key: str
    combination: tuple[str, ...]
    weight: float


def mvt_cells(sections: Sequence[Sequence[str]]) -> list[MvtCell]:
    """Every combination of the sections' variations, as equally weighted cells.

    Cells follow the cartesian product with the first section varying slowest, so ``mvt-cell-1``
    combines every section's first variation (its control). Weights are whole hundredths of a
    percent: each cell gets ``floor(10000 / cells)`` hundredths and the first ``10000 % cells`` cells
    one more, so they sum to exactly 100.00 (3 cells: 33.34, 33.33, 33.33).

    Raises:
        ValueError: more than 10,000 cells (a cell could not get 0.01 %).
    """
    if not sections:
        return []
    combos = list(itertools.product(*sections))
    count = len(combos)
    if count > 10000:
        raise ValueError(f"{count} MVT cells are too many (at most 10000)")
    if count == 0:
        return []
    base, extra = divmod(10000, count)
    return [
        MvtCell(f"{MVT_CELL_PREFIX}{i + 1}", tuple(combo), (base + (i < extra)) / 100)
        for i, combo in enumerate(combos)
    ]
