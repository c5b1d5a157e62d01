// Site conversion rules: wouldFire against the server's would_fire (tests/fixtures/conversion_rule_cases.json,
// written by tests/fixtures/make_conversion_rule_cases.py), then when watchRules fires each rule.
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import casesText from "../../tests/fixtures/conversion_rule_cases.json?raw";
import { type Emit, pagePath, watchRules, wouldFire } from "../src/modules/track/rules";
import type { ConversionRule, ConversionStep } from "../src/core/types";
import { MemoryStorage } from "./fakes";

interface Case {
  step: ConversionStep;
  url: string;
  fires: boolean;
}

const cases = JSON.parse(casesText) as Case[];
const SHOP = "https://shop.example.com";

describe("wouldFire gives the server's answer", () => {
  it.each(cases.map((c) => [c.step.method, c.step.value, c.url, c.fires] as const))(
    "%s %j on %j → %s",
    (method, value, url, fires) => {
      expect(wouldFire({ method, value }, url)).toBe(fires);
    },
  );

  it("pagePath gives the path a page_url step compares", () => {
    expect(pagePath("https://shop.example.com/thank-you/?order=1#x")).toBe("/thank-you");
    expect(pagePath("/caf%C3%A9")).toBe("/café");
    expect(pagePath("http://[::1/x")).toBeNull();
  });
});

function rule(id: string, steps: ConversionStep[], event_type: ConversionRule["event_type"] = "conversion"): ConversionRule {
  return { id, name: `Rule ${id}`, event_type, steps };
}

// the page's cookies as document.cookie reads them (rules only read them)
const document = { cookie: "" } as Document;

describe("watchRules", () => {
  let storage: MemoryStorage; // localStorage: the site's, shared by its tabs
  let session: MemoryStorage; // sessionStorage: one tab's, kept across its page loads
  let emit: Mock<Emit>;
  const stops: (() => void)[] = [];

  function watch(
    rules: ConversionRule[],
    store: MemoryStorage | null = storage,
    tab: MemoryStorage | null = session,
    events: Mock<Emit> = emit,
  ) {
    const watcher = watchRules(document, store, rules, events, tab);
    stops.push(watcher.stop);
    return watcher;
  }

  beforeEach(() => {
    vi.useFakeTimers();
    storage = new MemoryStorage();
    session = new MemoryStorage();
    emit = vi.fn<Emit>();
    document.cookie = "";
  });
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
    vi.useRealTimers();
  });

  it("fires a page_url rule with its event type, id and name when the visitor lands on the path", () => {
    const w = watch([rule("signup", [{ method: "page_url", value: "/welcome" }], "registration")]);
    w.check(`${SHOP}/pricing`);
    expect(emit).not.toHaveBeenCalled();
    w.check(`${SHOP}/welcome/?from=mail`);
    expect(emit).toHaveBeenCalledExactlyOnceWith("registration", { rule_id: "signup", rule_name: "Rule signup" });
  });

  it("does not fire again when the thank-you page is reloaded, but does on a later visit", () => {
    const rules = [rule("order", [{ method: "page_url", value: "/thank-you" }])];
    watch(rules).check(`${SHOP}/thank-you`);
    watch(rules).check(`${SHOP}/thank-you`); // the next page load, same storage
    expect(emit).toHaveBeenCalledTimes(1);
    const later = watch(rules);
    later.check(`${SHOP}/shop`);
    later.check(`${SHOP}/thank-you`);
    expect(emit).toHaveBeenCalledTimes(2);
  });

  it("fires a url_param rule again when the parameter's value changes", () => {
    const w = watch([rule("paid", [{ method: "url_param", value: "payment_intent" }])]);
    w.check(`${SHOP}/done?payment_intent=pi_1`);
    w.check(`${SHOP}/done?payment_intent=pi_1`);
    w.check(`${SHOP}/done?payment_intent=pi_2`);
    expect(emit).toHaveBeenCalledTimes(2);
  });

  it("notices a localStorage key the page writes later, within a second", () => {
    const w = watch([rule("ls", [{ method: "local_storage", value: "orderComplete" }])]);
    w.check(`${SHOP}/checkout`);
    expect(emit).not.toHaveBeenCalled();
    storage.setItem("orderComplete", "yes");
    vi.advanceTimersByTime(1000);
    expect(emit).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(5000); // still set: nothing more
    expect(emit).toHaveBeenCalledOnce();
    storage.setItem("orderComplete", "again"); // a new order
    vi.advanceTimersByTime(1000);
    expect(emit).toHaveBeenCalledTimes(2);
  });

  it("reads a property path of a JSON cookie and fires only when it is truthy", () => {
    const w = watch([
      rule("cart", [{ method: "cookie", value: "cart", parse_json: true, property_path: "cart.items.length" }]),
    ]);
    document.cookie = `theme=dark; cart=${encodeURIComponent(JSON.stringify({ cart: { items: [] } }))}`;
    w.check(`${SHOP}/`);
    expect(emit).not.toHaveBeenCalled();
    document.cookie = "theme=dark; cart=not json";
    vi.advanceTimersByTime(1000);
    expect(emit).not.toHaveBeenCalled();
    document.cookie = `theme=dark; cart=${encodeURIComponent(JSON.stringify({ cart: { items: ["sku-1"] } }))}`;
    vi.advanceTimersByTime(1000);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { rule_id: "cart", rule_name: "Rule cart" });
  });

  it("fires on a cookie's existence without a property path, JSON or not", () => {
    const w = watch([rule("done", [{ method: "cookie", value: "order_completed", parse_json: true }])]);
    w.check(`${SHOP}/`);
    document.cookie = "order_completed=1";
    w.check(`${SHOP}/next`);
    expect(emit).toHaveBeenCalledOnce();
  });

  it("fires a multi-step rule only when the steps happen in order, across page loads", () => {
    const rules = [
      rule("flow", [
        { method: "page_url", value: "/register" },
        { method: "local_storage", value: "userId" },
        { method: "page_url", value: "/welcome" },
      ]),
    ];
    storage.setItem("userId", "u1");
    watch(rules).check(`${SHOP}/welcome`); // last step first: no
    expect(emit).not.toHaveBeenCalled();
    watch(rules).check(`${SHOP}/register`); // steps 1 and 2 hold
    expect(emit).not.toHaveBeenCalled();
    watch(rules).check(`${SHOP}/welcome`);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { rule_id: "flow", rule_name: "Rule flow" });
    watch(rules).check(`${SHOP}/welcome`); // done: the sequence starts over
    expect(emit).toHaveBeenCalledOnce();
  });

  it("keeps a multi-step rule's progress for the page when storage is unusable", () => {
    const w = watch(
      [
        rule("two", [
          { method: "page_url", value: "/a" },
          { method: "page_url", value: "/b" },
        ]),
      ],
      null,
      null,
    );
    w.check(`${SHOP}/a`);
    w.check(`${SHOP}/b`);
    expect(emit).toHaveBeenCalledOnce();
  });

  it("a thank-you page open in one tab converts once, while another tab of the site stays open elsewhere", () => {
    const rules = [
      rule("order", [{ method: "page_url", value: "/thank-you" }]),
      rule("login", [{ method: "cookie", value: "logged_in" }], "login"), // polled every second
    ];
    const other = vi.fn<Emit>();
    watch(rules).check(`${SHOP}/thank-you`);
    watch(rules, storage, new MemoryStorage(), other).check(`${SHOP}/products`); // the second tab
    vi.advanceTimersByTime(10_000);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { rule_id: "order", rule_name: "Rule order" });
    expect(other).not.toHaveBeenCalled();
  });

  it("a rule ending on a page converts once in its tab, whatever another tab browses or polls", () => {
    document.cookie = "cart=1";
    const rules = [
      rule("order", [
        { method: "cookie", value: "cart" },
        { method: "page_url", value: "/thank-you" },
      ]),
    ];
    watch(rules).check(`${SHOP}/thank-you`);
    const other = watch(rules, storage, new MemoryStorage(), vi.fn<Emit>());
    other.check(`${SHOP}/products`);
    vi.advanceTimersByTime(3000);
    other.check(`${SHOP}/about`);
    vi.advanceTimersByTime(3000);
    watch(rules).check(`${SHOP}/thank-you`); // the thank-you tab reloaded
    vi.advanceTimersByTime(3000);
    expect(emit).toHaveBeenCalledOnce();
  });

  it("a second order in another tab converts, while the first order's thank-you tab stays open", () => {
    document.cookie = "cart=1";
    const rules = [
      rule("order", [
        { method: "page_url", value: "/cart" },
        { method: "cookie", value: "cart" },
        { method: "page_url", value: "/thank-you" },
      ]),
    ];
    const first = watch(rules);
    first.check(`${SHOP}/cart`);
    first.check(`${SHOP}/thank-you`);
    const second = vi.fn<Emit>();
    const tab = watch(rules, storage, new MemoryStorage(), second);
    tab.check(`${SHOP}/cart`);
    tab.check(`${SHOP}/shipping`);
    vi.advanceTimersByTime(1000); // the first tab, still on its thank-you page, checks again
    tab.check(`${SHOP}/thank-you`);
    expect(emit).toHaveBeenCalledOnce();
    expect(second).toHaveBeenCalledExactlyOnceWith("conversion", { rule_id: "order", rule_name: "Rule order" });
  });

  it("stops polling after stop()", () => {
    const w = watch([rule("ls", [{ method: "local_storage", value: "k" }])]);
    w.check(`${SHOP}/`);
    w.stop();
    storage.setItem("k", "v");
    vi.advanceTimersByTime(3000);
    expect(emit).not.toHaveBeenCalled();
  });
});
