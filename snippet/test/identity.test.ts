import { describe, expect, test } from "vitest";
import {
  adoption,
  CROSS_DOMAIN_PARAM,
  type IdentityOptions,
  crossDomainParam,
  cookieDomain,
  decorateLink,
  documentCookieJar,
  isOptedOut,
  loadIdentity,
  readCookie,
  resetIdentity,
  setOptOut,
} from "../src/core/identity";
import { FakeCookieJar, MemoryStorage } from "./fakes";

const VID = "0193a1c2-5e4f-4a6b-9c8d-1234567890ab";
const NOW = Date.UTC(2026, 0, 2);

/** the cookie domains a config serves for a site on example.com with example.net and example.co.uk listed */
const DOMAINS = ["example.com", "example.net", "example.co.uk"];

function page(host: string, jar = new FakeCookieJar(host), secure = true): IdentityOptions & { _jar: FakeCookieJar } {
  return { _jar: jar, _hostname: host, _secure: secure, _now: () => NOW, _domains: DOMAINS };
}

describe("visitor cookies", () => {
  test("a first visit gets a visitor id and the first-visit cookie, for a year, on the site's domain", () => {
    const p = page("www.shop.example.com");
    const id = loadIdentity(p);
    expect(id._isReturning).toBe(false);
    expect(isOptedOut(p._jar)).toBe(false);
    expect(id._domain).toBe("example.com");
    expect(readCookie(p._jar, "seg_visitor_id")).toBe(id._visitorId);
    expect(readCookie(p._jar, "_seg_visitor")).toBe(String(NOW));
    const written = p._jar.written.find((c) => c.startsWith("seg_visitor_id="))!;
    expect(written).toBe(
      `seg_visitor_id=${id._visitorId}; path=/; max-age=31536000; domain=.example.com; SameSite=Lax; Secure`,
    );
  });

  test("the next page load is the same visitor, now returning, and the cookies are renewed", () => {
    const p = page("example.com");
    const first = loadIdentity(p);
    const before = p._jar.written.length;
    const again = loadIdentity({ ...p, _now: () => NOW + 86_400_000 });
    expect(again._visitorId).toBe(first._visitorId);
    expect(again._isReturning).toBe(true);
    expect(readCookie(p._jar, "_seg_visitor")).toBe(String(NOW)); // the first visit's time is kept
    expect(p._jar.written.slice(before).some((c) => c.startsWith("seg_visitor_id="))).toBe(true);
  });

  test("with storage, the cookies are renewed once a day: later page loads write no cookie", () => {
    const p = { ...page("www.example.com"), _storage: new MemoryStorage() };
    const first = loadIdentity(p);
    const afterFirst = p._jar.written.length;
    const later = loadIdentity({ ...p, _now: () => NOW + 3_600_000 });
    expect(later).toMatchObject({ _visitorId: first._visitorId, _isReturning: true, _domain: "example.com" });
    expect(p._jar.written.length).toBe(afterFirst); // no renewal
    const tomorrow = loadIdentity({ ...p, _now: () => NOW + 86_400_000 });
    expect(tomorrow._visitorId).toBe(first._visitorId);
    expect(p._jar.written.slice(afterFirst).some((c) => c.startsWith("seg_visitor_id="))).toBe(true);
    // cookies cleared but storage kept: a new visitor, whose cookies are written at once
    const cleared = page("www.example.com");
    const fresh = loadIdentity({ ...cleared, _storage: p._storage, _now: () => NOW + 86_400_000 });
    expect(readCookie(cleared._jar, "seg_visitor_id")).toBe(fresh._visitorId);
  });

  test("the page's jar reads document.cookie once per task; a cookie we wrote is read again", async () => {
    let reads = 0;
    let value = "a=1";
    const doc = {
      get cookie() {
        reads++;
        return value;
      },
      set cookie(c: string) {
        value += "; " + c.split(";")[0];
      },
    } as unknown as Document;
    const jar = documentCookieJar(doc, true);
    expect([jar.get("a"), jar.get("a")]).toEqual(["a=1", "a=1"]);
    expect(reads).toBe(1);
    jar.set("b=2; path=/");
    expect(jar.get("a")).toBe("a=1"); // not written since the read: the read stands
    expect(reads).toBe(1);
    expect(jar.get("b")).toBe("a=1; b=2");
    expect(reads).toBe(2);
    expect(jar.get("a")).toBe("a=1; b=2");
    expect(reads).toBe(2);
    value = "c=3"; // the page's own write, seen from the next task on
    await Promise.resolve();
    expect(jar.get("c")).toBe("c=3");
    const plain = documentCookieJar(doc);
    plain.get("c");
    plain.get("c");
    expect(reads).toBe(5);
  });

  test("a first visit writes its two cookies and reads the jar once, on the domain and its subdomains", () => {
    for (const [host, reads, writes] of [
      ["example.com", 1, 2],
      ["www.example.com", 1, 2], // the config names the domain: nothing is probed
    ] as const) {
      let count = 0;
      const fake = new FakeCookieJar(host);
      const doc = {
        get cookie() {
          count++;
          return fake.get();
        },
        set cookie(c: string) {
          fake.set(c);
        },
      } as unknown as Document;
      const jar = documentCookieJar(doc, true);
      const id = loadIdentity({ _jar: jar, _hostname: host, _secure: true, _now: () => NOW, _domains: DOMAINS });
      expect(isOptedOut(jar)).toBe(false); // after our writes: still the one read
      expect([count, fake.written.length]).toEqual([reads, writes]);
      expect(id._domain).toBe("example.com");
      expect(readCookie(fake, "seg_visitor_id")).toBe(id._visitorId);
    }
  });

  test("subdomains of one site share the visitor", () => {
    const p = page("www.example.co.uk");
    const first = loadIdentity(p);
    expect(first._domain).toBe("example.co.uk");
    const shop = page("shop.example.co.uk", p._jar.visit("shop.example.co.uk"));
    expect(loadIdentity(shop)._visitorId).toBe(first._visitorId);
  });

  test("the cookie domain is the config's entry the host is or lies under; none is host-only", () => {
    expect(cookieDomain("WWW.Example.COM.", DOMAINS)).toBe("example.com");
    expect(cookieDomain("a.b.example.net", DOMAINS)).toBe("example.net");
    expect(cookieDomain("example.co.uk", DOMAINS)).toBe("example.co.uk");
    expect(cookieDomain("notexample.com", DOMAINS)).toBeNull(); // a suffix of the name is not a subdomain
    expect(cookieDomain("www.example.org", DOMAINS)).toBeNull(); // not the site's: host-only
    expect(cookieDomain("www.example.com", [])).toBeNull(); // no config (yet)
  });

  test("a domain the config no longer serves is renewed on the host the same day", () => {
    const p = { ...page("www.example.com"), _storage: new MemoryStorage() };
    const first = loadIdentity(p);
    const moved = loadIdentity({ ...p, _domains: [], _now: () => NOW + 3_600_000 });
    expect(moved).toMatchObject({ _visitorId: first._visitorId, _domain: null });
    expect(p._jar.written[p._jar.written.length - 1]).not.toContain("domain=");
  });

  test("reset() on a domain is not undone by a host-only cookie from a page that had no config", () => {
    const p = { ...page("www.example.com"), _storage: new MemoryStorage() };
    const first = loadIdentity({ ...p, _domains: [] }); // the config failed: host-only cookies
    const later = loadIdentity({ ...p, _now: () => NOW + 3_600_000 }); // the config names example.com
    expect(later).toMatchObject({ _visitorId: first._visitorId, _domain: "example.com" });
    const reset = resetIdentity(p, later);
    expect(loadIdentity({ ...p, _now: () => NOW + 7_200_000 })._visitorId).toBe(reset._visitorId);
    const shop = page("shop.example.com", p._jar.visit("shop.example.com"));
    expect(loadIdentity(shop)._visitorId).toBe(reset._visitorId);
  });

  test("localhost and IP addresses get host-only cookies, and http pages no Secure flag", () => {
    for (const host of ["localhost", "127.0.0.1"]) {
      const p = page(host, new FakeCookieJar(host), false);
      const id = loadIdentity(p);
      expect(id._domain).toBeNull();
      expect(cookieDomain(host, DOMAINS)).toBeNull();
      const written = p._jar.written.find((c) => c.startsWith("seg_visitor_id="))!;
      expect(written).not.toContain("domain=");
      expect(written).not.toContain("Secure");
      expect(loadIdentity(p)._visitorId).toBe(id._visitorId);
    }
  });

  test("a tampered visitor cookie is replaced, not trusted", () => {
    const p = page("example.com");
    p._jar.set("seg_visitor_id=%3Cscript%3E; path=/");
    const id = loadIdentity(p);
    expect(id._visitorId).not.toBe("<script>");
    expect(id._visitorId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("reset() gives a new visitor id and keeps the browser returning", () => {
    const p = page("example.com");
    const first = loadIdentity(p);
    const after = resetIdentity(p, first);
    expect(after._visitorId).not.toBe(first._visitorId);
    expect(readCookie(p._jar, "seg_visitor_id")).toBe(after._visitorId);
    expect(readCookie(p._jar, "_seg_visitor")).toBe(String(NOW));
    expect(loadIdentity(p)._visitorId).toBe(after._visitorId);
  });
});

describe("opt-out", () => {
  test("segmently_opt_out=true: no cookie is written, not by reset() either", () => {
    const p = page("example.com");
    p._jar.set("segmently_opt_out=true; path=/");
    const id = loadIdentity(p);
    expect(isOptedOut(p._jar)).toBe(true);
    expect(readCookie(p._jar, "seg_visitor_id")).toBeNull();
    expect(readCookie(p._jar, "_seg_visitor")).toBeNull();
    resetIdentity(p, id);
    expect(readCookie(p._jar, "seg_visitor_id")).toBeNull();
  });

  test("only the value true opts out; the helper sets and clears it", () => {
    const p = page("www.example.com");
    p._jar.set("segmently_opt_out=false; path=/");
    expect(isOptedOut(p._jar)).toBe(false);
    setOptOut(p, true);
    expect(isOptedOut(p._jar)).toBe(true);
    setOptOut(p, false);
    expect(isOptedOut(p._jar)).toBe(false);
    p._jar.set("segmently_opt_out=TRUE; path=/");
    expect(isOptedOut(p._jar)).toBe(true);
    setOptOut(p, false); // also clears a host-only cookie the site set itself
    expect(isOptedOut(p._jar)).toBe(false);
  });
});

describe("cross-domain _sgmt_vid", () => {
  const domains = ["store.example.com", "Checkout.Example.NET."];

  test("links to listed domains are decorated, others are left alone", () => {
    const here = "store.example.com";
    expect(decorateLink("https://checkout.example.net/pay", VID, domains, here)).toBe(
      `https://checkout.example.net/pay?_sgmt_vid=${VID}`,
    );
    expect(decorateLink("https://CHECKOUT.example.net:8443/pay?a=1&b=x%20y#top", VID, domains, here)).toBe(
      `https://CHECKOUT.example.net:8443/pay?a=1&b=x%20y&_sgmt_vid=${VID}#top`,
    );
    for (const href of [
      "https://evil.example.org/?next=checkout.example.net",
      "https://example.net/",
      "https://sub.checkout.example.net/", // exact hosts only
      "https://store.example.com/cart", // the current host keeps its cookie
      "/relative/path",
      "mailto:someone@checkout.example.net",
      "javascript:void(0)",
    ]) {
      expect(decorateLink(href, VID, domains, here), href).toBeNull();
    }
  });

  test("an old _sgmt_vid on a link is replaced, never repeated", () => {
    const href = "https://checkout.example.net/?_sgmt_vid=old-visitor-id&x=1";
    expect(decorateLink(href, VID, domains, "store.example.com")).toBe(
      `https://checkout.example.net/?x=1&_sgmt_vid=${VID}`,
    );
  });

  test("the landing domain adopts the id and the URL is cleaned", () => {
    const p = page("checkout.example.net");
    const [adopted, clean] = adoption(`https://checkout.example.net/pay?step=2&_sgmt_vid=${VID}#card`, "checkout.example.net", domains);
    expect([adopted, clean]).toEqual([VID, "https://checkout.example.net/pay?step=2#card"]);
    const id = loadIdentity(p, adopted);
    expect(id._visitorId).toBe(VID);
    expect(readCookie(p._jar, "seg_visitor_id")).toBe(VID);
  });

  test("a domain that is not listed does not adopt a shared link's id, but still cleans the URL", () => {
    expect(adoption(`https://blog.example.org/?_sgmt_vid=${VID}`, "blog.example.org", domains)).toEqual([null, "https://blog.example.org/"]);
    expect(adoption("https://blog.example.org/?q=1", "blog.example.org", domains)).toEqual([null, null]);
  });

  test("an invalid id is ignored", () => {
    const p = page("checkout.example.net");
    const [adopted] = adoption("https://checkout.example.net/?_sgmt_vid=%3Cimg%3E", "checkout.example.net", domains);
    expect(adopted).toBe("<img>");
    const id = loadIdentity(p, adopted);
    expect(id._visitorId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("reading and cleaning keep every other parameter byte for byte", () => {
    const read = (href: string) => crossDomainParam(href)[0];
    const clean = (href: string) => crossDomainParam(href)[1];
    expect(read(`https://a.com/?q=a+b&${CROSS_DOMAIN_PARAM}=${VID}`)).toBe(VID);
    expect(read("https://a.com/?q=1")).toBeNull();
    expect(read("https://a.com/#_sgmt_vid=x")).toBeNull();
    expect(read("https://a.com/?%5Fsgmt%5Fvid=a+b%2B")).toBe("a b+"); // names and values are decoded
    expect(crossDomainParam("https://a.com/?_sgmt_vid=%E0%A4&q=1")).toEqual([null, "https://a.com/?q=1"]);
    expect(clean("https://a.com/?q=1")).toBeNull();
    expect(clean("https://a.com/")).toBeNull();
    expect(clean(`https://a.com/p?_sgmt_vid=${VID}`)).toBe("https://a.com/p");
    expect(clean(`https://a.com/p?q=a+b&_sgmt_vid=${VID}&r=%2F&_sgmt_vid=x#h`)).toBe("https://a.com/p?q=a+b&r=%2F#h");
  });
});
