// @vitest-environment happy-dom
// The snippet on a page: each test opens pages in fresh happy-dom windows (a returning visitor's
// page gets the cookies and storage of the previous one) against a fake server.
import { Window } from "happy-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type SegmentlyApi, boot } from "../src/runtime";
import type { ModuleHost } from "../src/core/host";
import { referralSourceOf } from "../src/modules/referral";
import { startTrack } from "../src/modules/track";
import type { ExperimentConfig, SiteConfig, VariantConfig } from "../src/core/types";

const KEY = "seg_live_test";
const BASE = "https://ab.example.net";

interface Sent {
  url: string;
  init: RequestInit;
}

interface Page {
  win: Window & { Segmently?: SegmentlyApi; gtag?: unknown; mixpanel?: unknown; __segmentlyHost?: unknown };
  doc: Document;
  api: SegmentlyApi;
  requests: Sent[];
  /** every event the page sent so far (after letting the queue's timer run) */
  events(): Promise<Record<string, unknown>[]>;
}

/** The server: the config it serves (with an ETag) and the config requests it saw. */
/** `failConfig`: the config request fails (a network error), or is aborted (`window.stop()`, an extension) */
let server: { config: SiteConfig; etag: string; configRequests: string[]; failConfig: boolean | "abort" };

/** The config's experiment; `variantB` overrides the variant every visitor gets (styles, scripts). */
function experiment(overrides: Partial<ExperimentConfig> = {}, variantB: Partial<VariantConfig> = {}): ExperimentConfig {
  return {
    id: "exp-1",
    slug: "hero",
    name: "Hero test",
    seed: "exp-1",
    type: "ab",
    status: "live",
    preview: false,
    delay: 0,
    targeting: {},
    // as the server serves them: URL rules as patterns, bucket ranges of weights 0/100 and 100 % traffic
    url: [],
    ranges: [
      [0, 0],
      [0, 1],
    ],
    audience: {},
    goals: [],
    funnels: [],
    cross_domain: [],
    ga4: false,
    mixpanel: false,
    variants: [
      { id: "var-a", key: "control", name: "Control", weight: 0, elements: [], styles: [], scripts: [] },
      {
        id: "var-b",
        key: "variant_b",
        name: "Variant B",
        weight: 100,
        elements: [{ type: "text", selector: "h1", text: "New headline" }],
        styles: [],
        scripts: [],
        ...variantB,
      },
    ],
    ...overrides,
  };
}

function site(overrides: Partial<SiteConfig> = {}): SiteConfig {
  return {
    site: { id: "site-1", url: "https://shop.example.com" },
    country: "US",
    plan: "business",
    badge: false,
    experiments: [experiment()],
    flags: [],
    conversion_rules: [],
    settings: { cross_domain: [], cookie_domains: ["example.com"], activation_delay_ms: 0, anti_flicker_timeout_ms: 5000 },
    modules: [],
    ...overrides,
  };
}

/** The config as the server answers `url`: with `?preview=slug:variant`, that experiment's `forced` variant. */
function previewed(config: SiteConfig, url: string): SiteConfig {
  const asked = new URL(url).searchParams.get("preview");
  if (!asked) return config;
  const [slug, key] = [asked.slice(0, asked.indexOf(":")), asked.slice(asked.indexOf(":") + 1)];
  const forced = (e: ExperimentConfig) => {
    const i = e.variants.findIndex((v) => v.key === key || v.id === key);
    return i < 0 ? null : i;
  };
  return { ...config, experiments: config.experiments.map((e) => (e.slug === slug ? { ...e, forced: forced(e) } : e)) };
}

function serve(config: SiteConfig): void {
  server.config = config;
  server.etag = `"v${Math.random()}"`;
}

/** Lets promises and timers run (the queue sends after 1 s). */
async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

interface OpenOptions {
  /** the previous page of the same browser: its cookies, localStorage and sessionStorage carry over */
  from?: Page;
  cookies?: string[];
  inline?: SiteConfig;
  before?: (win: Page["win"]) => void;
}

const referred = new WeakSet<object>();

function open(url: string, options: OpenOptions = {}): Page {
  // chunk scripts are not fetched; they "load" (this file starts them), they do not fail
  const settings = { disableJavaScriptFileLoading: true, handleDisabledFileLoadingAsSuccess: true };
  const win = new Window({ url, width: 1280, height: 800, settings }) as unknown as Page["win"];
  const doc = win.document as unknown as Document;
  doc.body.innerHTML = '<h1>Old headline</h1><a id="out" href="https://checkout.example.org/cart?x=1">cart</a>';
  if (options.from) {
    const prev = options.from.win;
    for (const part of prev.document.cookie.split("; ").filter(Boolean)) doc.cookie = `${part}; path=/`;
    for (const [s, t] of [
      [prev.localStorage, win.localStorage],
      [prev.sessionStorage, win.sessionStorage],
    ] as const) {
      for (let i = 0; i < s.length; i++) t.setItem(s.key(i)!, s.getItem(s.key(i)!)!);
    }
  }
  for (const c of options.cookies ?? []) doc.cookie = c;
  const requests: Sent[] = [];
  (win as unknown as { fetch: unknown }).fetch = vi.fn(async (input: string, init: RequestInit = {}) => {
    requests.push({ url: input, init });
    if (input.includes("/api/v1/sdk/config")) {
      server.configRequests.push(input);
      if (server.failConfig) throw new TypeError("network down");
      const headers = new Headers(init.headers);
      if (headers.get("If-None-Match") === server.etag) return new Response(null, { status: 304 });
      return new Response(JSON.stringify(previewed(server.config, input)), { status: 200, headers: { ETag: server.etag } });
    }
    return new Response(JSON.stringify({ accepted: 1 }), { status: 202 });
  });
  // the config comes through an XMLHttpRequest: the same fake server answers it
  const answer = (win as unknown as { fetch: (url: string, init: RequestInit) => Promise<Response> }).fetch;
  (win as unknown as { XMLHttpRequest: unknown }).XMLHttpRequest = class {
    status = 0;
    responseText = "";
    withCredentials = false; // cross-origin: no cookies (fetch's credentials "omit")
    // what a browser's XMLHttpRequest calls: `load`, `error` or `abort`, then always `loadend`
    onload: (() => void) | null = null;
    onerror: ((error: unknown) => void) | null = null;
    onabort: (() => void) | null = null;
    onloadend: (() => void) | null = null;
    private url = "";
    private sent: Record<string, string> = {};
    private got = new Headers();
    open(_method: string, url: string) {
      this.url = url;
    }
    setRequestHeader(name: string, value: string) {
      this.sent[name] = value;
    }
    getResponseHeader(name: string) {
      return this.got.get(name);
    }
    send() {
      if (server.failConfig === "abort") {
        server.configRequests.push(this.url);
        setTimeout(() => (this.onabort?.(), this.onloadend?.()), 10);
        return;
      }
      answer(this.url, { headers: this.sent, credentials: this.withCredentials ? "include" : "omit" }).then(
        async (res) => {
          [this.status, this.got, this.responseText] = [res.status, res.headers, await res.text()];
          this.onload?.();
          this.onloadend?.();
        },
        (error) => (this.onerror?.(error), this.onloadend?.()),
      );
    }
  };
  const script = doc.createElement("script");
  if (options.inline) {
    // what the server's /s/{api_key}.js puts before the core (no base: the script's own address gives it)
    (win as unknown as Record<string, unknown>).__segmentlyConfig = { config: options.inline, etag: '"inline"', apiKey: KEY };
    script.src = `${BASE}/s/${KEY}.js`;
  } else {
    script.src = `${BASE}/segmently.js`;
    script.setAttribute("data-api-key", KEY);
  }
  options.before?.(win);
  // the track and referral chunks' <script>s run as in a browser: once inserted, after the core's task
  new win.MutationObserver(() => {
    const host = (win as unknown as { __segmentlyHost?: ModuleHost }).__segmentlyHost;
    const loaded = (name: string) => doc.querySelector(`script[src="${BASE}/snippet/${name}.js"]`);
    if (host && loaded("track")) startTrack(host, win as unknown as globalThis.Window);
    if (host && loaded("referral") && !referred.has(win)) {
      referred.add(win);
      host.register("referral", { source: referralSourceOf });
    }
  }).observe(win.document.head, { childList: true });
  doc.head.appendChild(script);
  boot(win as unknown as globalThis.Window, script);
  const page: Page = {
    win,
    doc,
    api: win.Segmently!,
    requests,
    async events() {
      await settle(2000);
      return requests
        .filter((r) => r.url.includes("/api/v1/events/batch"))
        .flatMap((r) => (JSON.parse(String(r.init.body)) as { events: Record<string, unknown>[] }).events);
    },
  };
  return page;
}

/** Opens the page and lets the first config request answer. */
async function visit(url: string, options: OpenOptions = {}): Promise<Page> {
  const page = open(url, options);
  await settle();
  return page;
}

const named = (events: Record<string, unknown>[], name: string) => events.filter((e) => e.event_name === name);
const headline = (page: Page) => page.doc.querySelector("h1")!.textContent;
const curtainDrawn = (page: Page) => page.doc.getElementById("segmently-curtain") !== null;

let errors: ReturnType<typeof vi.spyOn>;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date", "performance"] });
  server = { config: site(), etag: '"v1"', configRequests: [], failConfig: false };
  errors = vi.spyOn(console, "error").mockImplementation(() => {});
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("loading", () => {
  it("reads the key and the base from its script tag, fetches the config there and applies the variant", async () => {
    const page = open("https://shop.example.com/");
    await settle();
    expect(server.configRequests).toEqual([`${BASE}/api/v1/sdk/config?api_key=${KEY}`]);
    expect(headline(page)).toBe("New headline");
    expect(page.requests[0]!.init.credentials).toBe("omit");
  });

  it("takes the key, base and config from /s/{key}.js without any config request", async () => {
    const page = open("https://shop.example.com/", { inline: site() });
    expect(headline(page)).toBe("New headline"); // synchronously, before any network answer
    await settle();
    expect(server.configRequests).toEqual([]);
    expect((await page.events()).length).toBeGreaterThan(0);
    expect(page.requests.every((r) => r.url.startsWith(`${BASE}/api/v1/`))).toBe(true);
  });

  it("keeps the first instance when the script is included twice", async () => {
    const page = await visit("https://shop.example.com/");
    const first = page.api;
    const script = page.doc.createElement("script");
    script.src = `${BASE}/segmently.js`;
    script.setAttribute("data-api-key", "seg_live_other");
    boot(page.win as unknown as globalThis.Window, script);
    expect(page.win.Segmently).toBe(first);
    expect(server.configRequests).toHaveLength(1);
  });

  it("a returning visitor gets the stored config at once; a changed config applies from the next page", async () => {
    const first = await visit("https://shop.example.com/");
    serve(site({ experiments: [] })); // the experiment was stopped meanwhile
    const second = open("https://shop.example.com/", { from: first });
    expect(headline(second)).toBe("New headline"); // stored config, applied before the answer
    await settle();
    expect(headline(second)).toBe("New headline"); // not undone mid-page
    const third = await visit("https://shop.example.com/", { from: second });
    expect(headline(third)).toBe("Old headline");
  });

  it("configs stored in older shapes are removed once the page is shown; the current one stays", async () => {
    const first = await visit("https://shop.example.com/");
    for (const old of ["seg_config:", "seg_config2:"]) first.win.localStorage.setItem(old + KEY, '{"etag":"\\"1\\"","config":{}}');
    const next = open("https://shop.example.com/", { from: first });
    expect(next.win.localStorage.getItem(`seg_config:${KEY}`)).not.toBeNull(); // not in the page's start
    await settle();
    const kept = Object.keys({ ...next.win.localStorage }).filter((k) => k.startsWith("seg_config"));
    expect(kept).toEqual([`seg_config3:${KEY}`]);
  });

  it("posts segmently-snippet-ready once the config is known", async () => {
    vi.useRealTimers(); // happy-dom delivers messages on its own (real) timers
    const seen: unknown[] = [];
    const page = open("https://shop.example.com/", {
      before: (win) => win.addEventListener("message", (e) => seen.push((e as unknown as MessageEvent).data)),
    });
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    expect(seen).toContainEqual({ type: "segmently-snippet-ready", version: page.api.version });
  });
});

describe("assignment", () => {
  it("sends the assignment event once per visitor and experiment, with the config's ids", async () => {
    const first = await visit("https://shop.example.com/");
    const events = await first.events();
    expect(named(events, "assignment")).toEqual([
      expect.objectContaining({ experiment_id: "exp-1", variant_id: "var-b", visitor_id: first.api.getVisitorId() }),
    ]);
    const second = await visit("https://shop.example.com/", { from: first });
    expect(named(await second.events(), "assignment")).toEqual([]);
    expect(second.api.getVisitorId()).toBe(first.api.getVisitorId());
  });

  it("keeps the visitor's first variant when the weights change later", async () => {
    const first = await visit("https://shop.example.com/");
    expect(first.api.getVariant("hero")).toBe("variant_b");
    const flipped = experiment({
      ranges: [
        [0, 1],
        [1, 1],
      ],
    });
    flipped.variants[0]!.weight = 100;
    flipped.variants[1]!.weight = 0;
    serve(site({ experiments: [flipped] }));
    const second = await visit("https://shop.example.com/", { from: first });
    const third = await visit("https://shop.example.com/", { from: second }); // the new config is stored now
    expect(third.api.getVariant("hero")).toBe("variant_b");
    expect(headline(third)).toBe("New headline");
    const stranger = await visit("https://shop.example.com/");
    expect(stranger.api.getVariant("hero")).toBe("control");
  });

  it("applies an experiment only where its URL rules match", async () => {
    serve(site({ experiments: [experiment({ url: ["\\/pricing"] })] }));
    const home = await visit("https://shop.example.com/");
    expect(headline(home)).toBe("Old headline");
    expect(home.api.getAllAssignments()).toEqual({});
    const pricing = await visit("https://shop.example.com/pricing", { from: home });
    expect(headline(pricing)).toBe("New headline");
  });

  it("leaves out visitors outside the device targeting (from the viewport width)", async () => {
    serve(site({ experiments: [experiment({ targeting: { devices: ["mobile"] } })] }));
    const page = await visit("https://shop.example.com/");
    expect(headline(page)).toBe("Old headline");
    expect(named(await page.events(), "assignment")).toEqual([]);
  });

  it("forwards the impression to GA4 and Mixpanel when the experiment has them and the page loaded them", async () => {
    serve(site({ experiments: [experiment({ ga4: true, mixpanel: true })] }));
    const gtag = vi.fn();
    const track = vi.fn();
    await visit("https://shop.example.com/", {
      before: (win) => {
        win.gtag = gtag;
        win.mixpanel = { track };
      },
    });
    expect(gtag).toHaveBeenCalledExactlyOnceWith("event", "experiment_impression", {
      experiment_id: "hero",
      experiment_name: "Hero test",
      variant_id: "var-b",
      variant_name: "Variant B",
    });
    expect(track).toHaveBeenCalledExactlyOnceWith("$experiment_started", {
      "Experiment name": "Hero test",
      "Experiment ID": "hero",
      "Variant name": "Variant B",
      "Variant ID": "var-b",
    });
  });

  it("waits for a behavioral trigger before assigning, without hiding the page", async () => {
    serve(site({ experiments: [experiment({ audience: { triggers: { time_seconds: 3 } } })] }));
    const page = open("https://shop.example.com/", { inline: site({ experiments: server.config.experiments }) });
    expect(curtainDrawn(page)).toBe(false);
    await settle(2000);
    expect(headline(page)).toBe("Old headline");
    expect(page.api.getVariant("hero")).toBeNull();
    await settle(1500);
    expect(headline(page)).toBe("New headline");
    expect(named(await page.events(), "assignment")).toHaveLength(1);
    // assigned before: the next page applies it at load, under the curtain
    const next = open("https://shop.example.com/", { from: page, inline: site({ experiments: server.config.experiments }) });
    expect(headline(next)).toBe("New headline");
  });
});

describe("referral sources", () => {
  it("the curtain waits for the referral chunk where a referral experiment is evaluated", async () => {
    const exp = experiment({ audience: { referral_sources: ["paid"] } });
    const page = open("https://shop.example.com/?utm_medium=cpc", { inline: site({ experiments: [exp] }) });
    expect(curtainDrawn(page)).toBe(true);
    expect(headline(page)).toBe("Old headline");
    await settle();
    expect(curtainDrawn(page)).toBe(false);
    expect(headline(page)).toBe("New headline");
    const other = open("https://shop.example.com/", { inline: site({ experiments: [exp] }) });
    await settle();
    expect(headline(other)).toBe("Old headline"); // direct: left out
  });

  it("without the chunk (it failed to load) the gate is not passed and the page is shown", async () => {
    const exp = experiment({ audience: { referral_sources: ["paid"] } });
    const page = open("https://shop.example.com/?utm_medium=cpc", {
      inline: site({ experiments: [exp] }),
      before: (win) => referred.add(win),
    });
    expect(curtainDrawn(page)).toBe(true);
    await settle(); // chunks are asked for a task after the start
    const script = page.doc.querySelector(`script[src="${BASE}/snippet/referral.js"]`)!;
    script.dispatchEvent(new (page.win as unknown as typeof globalThis).Event("error"));
    expect(curtainDrawn(page)).toBe(false);
    expect(headline(page)).toBe("Old headline");
  });

  it("a route the app moved to while a first visit's config loaded waits for the chunk where its experiment needs it", async () => {
    serve(site({ experiments: [experiment({ url: ["\\/pricing"], audience: { referral_sources: ["paid"] } })] }));
    const page = open("https://shop.example.com/?utm_medium=cpc");
    page.win.history.replaceState({}, "", "/pricing?utm_medium=cpc"); // the router's redirect
    await settle();
    expect(headline(page)).toBe("New headline");
  });
});

describe("anti-flicker", () => {
  it("a first visit stores its new assignments and their events once each, at the end of the start's task", async () => {
    const experiments = [1, 2, 3].map((n) => experiment({ id: `exp-${n}`, slug: `hero-${n}`, seed: `exp-${n}` }));
    const writes: string[] = [];
    const page = open("https://shop.example.com/", {
      inline: site({ experiments }),
      before: (win) => {
        // a Storage takes property writes as items: the prototype's method is wrapped instead
        const proto = Object.getPrototypeOf(win.localStorage) as { setItem(k: string, v: string): void };
        const setItem = proto.setItem;
        vi.spyOn(proto, "setItem").mockImplementation(function (this: unknown, k: string, v: string) {
          writes.push(k);
          setItem.call(this, k, v);
        });
      },
    });
    const kept = () => writes.filter((k) => k === "seg_assignments" || k.startsWith("seg_events:"));
    expect(kept()).toEqual([]); // not during the start itself
    await Promise.resolve();
    expect(kept()).toEqual([
      "seg_assignments",
      `seg_events:${KEY}`,
    ]);
    const stored = JSON.parse(page.win.localStorage.getItem("seg_assignments")!) as { variants: Record<string, string> };
    expect(Object.keys(stored.variants).sort()).toEqual(["exp-1", "exp-2", "exp-3"]);
    expect(named(await page.events(), "assignment")).toHaveLength(3);
    vi.restoreAllMocks();
  });

  it("hides a first visit's page while the config loads and shows it after the changes, with hidden_ms", async () => {
    const page = open("https://shop.example.com/");
    expect(curtainDrawn(page)).toBe(true);
    await settle(120);
    expect(curtainDrawn(page)).toBe(false);
    expect(headline(page)).toBe("New headline");
    const [view] = named(await page.events(), "page_view");
    expect(view).toMatchObject({ url: "https://shop.example.com/", event_data: { hidden_ms: expect.any(Number) } });
  });

  it("does not hide the page when the known config has nothing for this URL", async () => {
    const config = site({ experiments: [experiment({ url: ["\\/pricing"] })] });
    const page = open("https://shop.example.com/", { inline: config });
    expect(curtainDrawn(page)).toBe(false);
    const [view] = named(await page.events(), "page_view");
    expect(view).not.toHaveProperty("event_data");
  });

  it("reveals after the activation delay while the page is still parsed, later elements changed as they come", async () => {
    const config = site({ experiments: [experiment({ delay: 500 })] });
    let state = "loading";
    const page = open("https://shop.example.com/", {
      inline: config,
      before: (win) => Object.defineProperty(win.document, "readyState", { get: () => state }),
    });
    expect(curtainDrawn(page)).toBe(true);
    await settle(400);
    expect(curtainDrawn(page)).toBe(true);
    await settle(100);
    expect(curtainDrawn(page)).toBe(false);
    // the page's event, the chunks and the revalidation wait for the parse: the parser goes first
    await settle(50);
    expect(page.doc.querySelectorAll('script[src*="/snippet/"]')).toHaveLength(0);
    expect(server.configRequests).toEqual([]);
    state = "interactive";
    page.doc.dispatchEvent(new (page.win as unknown as typeof globalThis).Event("DOMContentLoaded"));
    const [view] = named(await page.events(), "page_view");
    expect(view!.event_data).toEqual({ hidden_ms: 500 });
  });

  it("waits for DOMContentLoaded and the delay when the variant runs JavaScript, never past the failsafe", async () => {
    const scripted = experiment({ delay: 500 }, { scripts: [["custom JS 1", "document.body.dataset.ran = '1'"]] });
    const config = site({ experiments: [scripted] });
    let state = "loading";
    const page = open("https://shop.example.com/", {
      inline: config,
      before: (win) => Object.defineProperty(win.document, "readyState", { get: () => state }),
    });
    expect(curtainDrawn(page)).toBe(true);
    await settle(1000);
    expect(curtainDrawn(page)).toBe(true); // the DOM is still being parsed: the script has not run
    state = "interactive";
    page.doc.dispatchEvent(new Event("DOMContentLoaded"));
    await settle(400);
    expect(curtainDrawn(page)).toBe(true);
    await settle(100);
    expect(curtainDrawn(page)).toBe(false);
    const [view] = named(await page.events(), "page_view");
    expect(view!.event_data).toEqual({ hidden_ms: 1500 });

    const stuck = open("https://shop.example.com/", {
      inline: config,
      before: (win) => Object.defineProperty(win.document, "readyState", { get: () => "loading" }),
    });
    await settle(5000);
    expect(curtainDrawn(stuck)).toBe(false);
  });

  it("shows the page when the config cannot be loaded and reports it once", async () => {
    server.failConfig = true;
    const page = await visit("https://shop.example.com/");
    expect(curtainDrawn(page)).toBe(false);
    expect(headline(page)).toBe("Old headline");
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]![0])).toMatch(/^Segmently: /);
  });

  it("shows the page at once when the config request is aborted (window.stop(), an extension), and reports it once", async () => {
    server.failConfig = "abort";
    const page = await visit("https://shop.example.com/");
    expect(curtainDrawn(page)).toBe(true); // a first visit waits for its config
    await settle(50);
    expect(server.configRequests).toHaveLength(1);
    expect(curtainDrawn(page)).toBe(false); // not after the 5 s failsafe
    expect(headline(page)).toBe("Old headline");
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]![0])).toBe("Segmently: config failed (network error)");
  });

  it("reveals the page and reports when a broken config makes applying fail", async () => {
    serve({ ...site(), experiments: [{ ...experiment(), targeting: null } as unknown as ExperimentConfig] });
    const page = await visit("https://shop.example.com/");
    expect(curtainDrawn(page)).toBe(false);
    expect(errors).toHaveBeenCalled();
    expect(String(errors.mock.calls[0]![0])).toMatch(/^Segmently: /);
  });
});

describe("preview", () => {
  const draft = () =>
    experiment({
      status: "draft",
      preview: true,
      ranges: [
        [0, 0],
        [0, 0],
      ],
    }); // 0 % traffic

  it("forces the variant of a draft, sends no event for it and loads the preview panel", async () => {
    serve(site({ experiments: [draft()] }));
    const page = await visit("https://shop.example.com/?segmently_preview=hero:variant_b");
    expect(server.configRequests[0]).toBe(`${BASE}/api/v1/sdk/config?api_key=${KEY}&preview=hero%3Avariant_b`);
    expect(headline(page)).toBe("New headline");
    expect(page.api.getVariant("hero")).toBe("variant_b");
    const events = await page.events();
    expect(events.filter((e) => e.experiment_id === "exp-1")).toEqual([]);
    const scripts = [...page.doc.querySelectorAll("script[src]")].map((s) => (s as HTMLScriptElement).src);
    expect(scripts).toContain(`${BASE}/snippet/preview.js`);
    // a variant the experiment does not have: nothing forced, the draft not shown (the panel says why)
    const unknown = await visit("https://shop.example.com/?segmently_preview=hero:nope");
    expect(headline(unknown)).toBe("Old headline");
  });

  it("keeps the preview on the next pages of the session, and never caches the draft's config", async () => {
    serve(site({ experiments: [draft()] }));
    const first = await visit("https://shop.example.com/?segmently_preview=hero:variant_b");
    // remembered in a session cookie (no max-age), read with the others
    expect(first.doc.cookie).toContain("segmently_preview=hero%3Avariant_b");
    const next = await visit("https://shop.example.com/about", { from: first });
    expect(server.configRequests[1]).toContain("&preview=hero%3Avariant_b");
    expect(headline(next)).toBe("New headline");
    expect(Object.keys({ ...next.win.localStorage }).filter((k) => k.startsWith("seg_config"))).toEqual([]);
    serve(site({ experiments: [] }));
    const ended = await visit("https://shop.example.com/?segmently_preview=", { from: next });
    expect(server.configRequests[2]).not.toContain("preview");
    expect(headline(ended)).toBe("Old headline");
    expect(ended.doc.cookie).not.toContain("segmently_preview=hero"); // max-age=0 (happy-dom keeps it empty)
    const after = await visit("https://shop.example.com/about", { from: ended });
    expect(server.configRequests[3]).not.toContain("preview");
    expect(headline(after)).toBe("Old headline");
  });

  it("a page without a preview never opens sessionStorage (each first use is a request to the browser process)", async () => {
    let opened = 0;
    const page = await visit("https://shop.example.com/", {
      before: (win) =>
        Object.defineProperty(win, "sessionStorage", {
          get: () => {
            opened++;
            throw new Error("no sessionStorage here");
          },
        }),
    });
    expect(headline(page)).toBe("New headline");
    expect(page.api.getVisitorId()).toMatch(/^[0-9a-f-]{36}$/);
    expect(opened).toBe(0);
  });
});

describe("window.Segmently", () => {
  it("track and trackConversion queue events with their data; a bad call is refused with a console error", async () => {
    const page = await visit("https://shop.example.com/");
    page.api.track("cta_click", { section: "hero" });
    page.api.trackConversion({ value: 99.99 });
    page.api.track("" as string);
    page.api.track("x", "not an object" as unknown as Record<string, unknown>);
    const events = await page.events();
    expect(named(events, "cta_click")).toEqual([
      expect.objectContaining({ event_data: { section: "hero" }, url: "https://shop.example.com/", device_type: "desktop" }),
    ]);
    expect(named(events, "conversion")).toEqual([expect.objectContaining({ event_data: { value: 99.99 } })]);
    expect(named(events, "x")).toEqual([]);
    expect(errors).toHaveBeenCalledTimes(2);
  });

  it("data JSON cannot carry is refused at the call; the page's other events still go, the chunk still runs", async () => {
    const goals = [{ id: "g-1", type: "click" as const, name: "Headline", selector: "h1" }];
    const page = open("https://shop.example.com/", { inline: site({ experiments: [experiment({ goals })] }) });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    page.api.track("cyclic", cyclic); // before the track chunk ran, in the start's task (an inline script)
    page.api.track("big", { n: BigInt(1) });
    const fine: Record<string, unknown> = { b: 2 };
    page.api.track("fine", fine);
    fine.self = fine; // the event keeps the data as it was at the call
    await settle(10);
    page.doc.querySelector("h1")!.dispatchEvent(new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true }));
    const events = await page.events();
    expect(events.map((e) => e.event_name)).toEqual(["assignment", "page_view", "fine", "conversion"]);
    expect(named(events, "fine")[0]!.event_data).toEqual({ b: 2 });
    expect(errors.mock.calls.map((c: unknown[]) => c[0])).toEqual(["Segmently: track(): the data must be a JSON object"]);
  });

  it("an event tracked right after the start (an inline script) comes after the load's page_view", async () => {
    const page = open("https://shop.example.com/", { inline: site() });
    page.api.track("signup"); // same task as the start: the page view is still waiting for its task
    const names = (await page.events()).map((e) => e.event_name).filter((n) => n !== "assignment");
    expect(names).toEqual(["page_view", "signup"]);
  });

  it("getVisitorId is the seg_visitor_id cookie; getAllAssignments maps slugs to variant keys", async () => {
    const page = await visit("https://shop.example.com/");
    expect(page.doc.cookie).toContain(`seg_visitor_id=${page.api.getVisitorId()}`);
    expect(page.api.getAllAssignments()).toEqual({ hero: "variant_b" });
    expect(page.api.getVariant("unknown")).toBeNull();
  });

  it("setAttributes feeds attribute targeting on the next page view and is kept; reserved keys are ignored", async () => {
    serve(site({ experiments: [experiment({ audience: { attribute_rules: [{ key: "plan", operator: "equals", value: "pro" }] } })] }));
    const first = await visit("https://shop.example.com/");
    expect(headline(first)).toBe("Old headline");
    first.api.setAttributes(JSON.parse('{"plan": "pro", "__proto__": {"polluted": true}}'));
    const second = await visit("https://shop.example.com/", { from: first });
    expect(headline(second)).toBe("New headline");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("reset gives a new visitor id and forgets assignments and attributes", async () => {
    const page = await visit("https://shop.example.com/");
    await page.events(); // sent: the next page only sends its own
    const before = page.api.getVisitorId();
    page.api.setAttributes({ plan: "pro" });
    page.api.reset();
    expect(page.api.getVisitorId()).not.toBe(before);
    expect(page.doc.cookie).toContain(`seg_visitor_id=${page.api.getVisitorId()}`);
    expect(page.api.getAllAssignments()).toEqual({});
    const next = await visit("https://shop.example.com/", { from: page });
    expect(next.api.getVisitorId()).toBe(page.api.getVisitorId());
    expect(named(await next.events(), "assignment")).toHaveLength(1); // the new visitor is assigned anew
    expect(next.win.localStorage.getItem("seg_attributes")).toBeNull();
  });

  it("reset() before a first visit's config arrived: the page runs as the new visitor, kept on the site's cookie domain", async () => {
    const old = "0b8e4b1c-5b5f-4e43-9a47-2f64bd1d0a11";
    // the visitor came from another subdomain of the site: its cookie is on .example.com
    const page = open("https://shop.example.com/", { cookies: [`seg_visitor_id=${old}; path=/; domain=.example.com`] });
    page.api.reset(); // a logout page calls it at once, before the config request answered
    await settle();
    const fresh = page.api.getVisitorId();
    expect(fresh).not.toBeNull();
    expect(fresh).not.toBe(old);
    // (happy-dom keeps a cookie expired with max-age=0 under fake timers as an empty value)
    const ids = page.doc.cookie.split("; ").filter((c) => c.startsWith("seg_visitor_id=") && c != "seg_visitor_id=");
    expect(ids).toEqual([`seg_visitor_id=${fresh}`]); // one cookie: no host-only copy shadowing the domain's
    const events = await page.events();
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.visitor_id === fresh)).toBe(true);
  });

  it("getVariant and getAllAssignments keep answering the variant the page shows after the config was revalidated", async () => {
    const first = await visit("https://shop.example.com/");
    serve(site({ experiments: [] })); // the experiment was paused meanwhile
    const second = open("https://shop.example.com/", { from: first });
    expect(second.api.getVariant("hero")).toBe("variant_b");
    await settle(); // the stored config's revalidation answers with the new one
    expect(headline(second)).toBe("New headline"); // not undone mid-page
    expect(second.api.getVariant("hero")).toBe("variant_b");
    expect(second.api.getAllAssignments()).toEqual({ hero: "variant_b" });
    const third = await visit("https://shop.example.com/", { from: second });
    expect(third.api.getAllAssignments()).toEqual({}); // the next page view follows the new config
  });

  it("a page URL longer than the server takes is cut to 2,048 characters, so its events are not refused", async () => {
    const long = `https://shop.example.com/search?q=${"a".repeat(2100)}`;
    const page = await visit(long);
    const events = await page.events();
    expect(named(events, "assignment")).toHaveLength(1);
    expect(named(events, "page_view").map((e) => e.url)).toEqual([long.slice(0, 2048)]);
  });

  it("isEnabled and getAllFlags answer from the config's rollouts, after a first visit's config arrives", async () => {
    serve(site({ flags: [{ key: "on", rollout: 100 }, { key: "off", rollout: 0 }] }));
    const page = open("https://shop.example.com/");
    const enabled = page.api.isEnabled("on");
    await settle();
    await expect(enabled).resolves.toBe(true);
    await expect(page.api.isEnabled("off")).resolves.toBe(false);
    await expect(page.api.isEnabled("missing")).resolves.toBe(false);
    await expect(page.api.getAllFlags()).resolves.toEqual({ on: true, off: false });
  });

  it("flags answer even when a broken config stops the start", async () => {
    const broken = { ...site(), flags: [{ key: "on", rollout: 100 }], experiments: [null] } as unknown as SiteConfig;
    const page = open("https://shop.example.com/", { inline: broken });
    await expect(page.api.getAllFlags()).resolves.toEqual({ on: true });
  });

  it("never throws into the page", async () => {
    const page = await visit("https://shop.example.com/");
    expect(() => page.api.setAttributes(null as unknown as Record<string, unknown>)).not.toThrow();
    expect(() => page.api.getVariant(undefined as unknown as string)).not.toThrow();
    expect(Object.isFrozen(page.api)).toBe(true);
  });
});

describe("goals and engagement", () => {
  it("a click on the experiment's goal element sends a conversion attributed to the variant", async () => {
    serve(site({ experiments: [experiment({ goals: [{ id: "g-1", type: "click", name: "Headline", selector: "h1" }] })] }));
    const page = await visit("https://shop.example.com/");
    page.doc.querySelector("h1")!.dispatchEvent(new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true }));
    expect(named(await page.events(), "conversion")).toEqual([
      expect.objectContaining({ experiment_id: "exp-1", variant_id: "var-b", event_data: { goal_id: "g-1", goal_name: "Headline" } }),
    ]);
  });

  it("a goal clicked before the track chunk loaded still counts: the core keeps the click for it", async () => {
    const exp = experiment({ goals: [{ id: "g-1", type: "click", name: "Headline", selector: "h1" }] });
    const page = open("https://shop.example.com/", { inline: site({ experiments: [exp] }) });
    expect(page.win.__segmentlyHost).toBeDefined();
    expect((page.win as unknown as { __segmentlyTrack?: unknown }).__segmentlyTrack).toBeUndefined();
    page.doc.querySelector("h1")!.dispatchEvent(new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true }));
    expect(named(await page.events(), "conversion")).toEqual([
      expect.objectContaining({ experiment_id: "exp-1", variant_id: "var-b", event_data: { goal_id: "g-1", goal_name: "Headline" } }),
    ]);
  });

  it("a goal clicked on a page left before the track chunk ran goes with the beacon, once", async () => {
    const beacons: string[] = [];
    const goals = [
      { id: "g-1", type: "click" as const, name: "Headline", selector: "h1" },
      { id: "g-2", type: "click" as const, name: "Cart link", selector: "#out" },
      { id: "g-3", type: "form_submit" as const, name: "Any form", selector: "form" },
    ];
    const page = open("https://shop.example.com/", {
      inline: site({ experiments: [experiment({ goals })] }),
      before: (win) => {
        win.navigator.sendBeacon = (url: string, body: unknown) => beacons.push(String(body)) > 0;
      },
    });
    expect((page.win as unknown as { __segmentlyTrack?: unknown }).__segmentlyTrack).toBeUndefined();
    const click = () => new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true });
    page.doc.querySelector("h1")!.dispatchEvent(click());
    page.doc.querySelector("h1")!.dispatchEvent(click()); // twice: still one conversion
    (page.win as unknown as EventTarget).dispatchEvent(new (page.win as unknown as typeof globalThis).Event("pagehide"));
    expect(beacons).toHaveLength(1);
    const sent = (JSON.parse(beacons[0]!) as { events: Record<string, unknown>[] }).events;
    expect(named(sent, "conversion")).toEqual([
      expect.objectContaining({ experiment_id: "exp-1", variant_id: "var-b", event_data: { goal_id: "g-1", goal_name: "Headline" } }),
    ]);
    expect(named(await page.events(), "conversion")).toEqual([]); // the chunk, loaded since, does not count it again
  });

  it("on pagehide: time on page, then everything unsent goes by sendBeacon", async () => {
    const beacons: string[] = [];
    const page = await visit("https://shop.example.com/", {
      before: (win) => {
        win.navigator.sendBeacon = (url: string, body: unknown) => beacons.push(`${url} ${String(body)}`) > 0;
      },
    });
    await settle(3000);
    (page.win as unknown as EventTarget).dispatchEvent(new (page.win as unknown as typeof globalThis).Event("pagehide"));
    expect(beacons).toHaveLength(1);
    expect(beacons[0]).toContain(`${BASE}/api/v1/events/batch?api_key=${KEY} `);
    const sent = (JSON.parse(beacons[0]!.split(" ").slice(1).join(" ")) as { events: Record<string, unknown>[] }).events;
    expect(sent.map((e) => e.event_name)).toEqual(["time_on_page", "bounce"]);
  });

  it("a page left before the track chunk loaded beacons its events; a refused beacon leaves them to the next page", async () => {
    const beacons: string[] = [];
    const page = open("https://shop.example.com/", {
      inline: site(),
      before: (win) => {
        win.navigator.sendBeacon = (url: string, body: unknown) => beacons.push(`${url} ${String(body)}`) > 0;
      },
    });
    expect((page.win as unknown as { __segmentlyTrack?: unknown }).__segmentlyTrack).toBeUndefined();
    (page.win as unknown as EventTarget).dispatchEvent(new (page.win as unknown as typeof globalThis).Event("pagehide"));
    expect(beacons).toHaveLength(1);
    const sent = (JSON.parse(beacons[0]!.split(" ").slice(1).join(" ")) as { events: Record<string, unknown>[] }).events;
    // its engagement too, as the chunk would have sent it: left at once without interacting, a bounce
    expect(sent.map((e) => e.event_name)).toEqual(["assignment", "page_view", "time_on_page", "bounce"]);
    expect(sent[2]!.event_data).toEqual({ seconds: expect.any(Number) });
    expect((sent[2]!.event_data as { seconds: number }).seconds).toBeLessThan(5);
    const later = await page.events(); // the track chunk's queue, loaded since, does not send them again
    expect(later).toEqual([]);

    const refused = open("https://shop.example.com/", {
      inline: site(),
      before: (win) => {
        win.navigator.sendBeacon = () => false;
      },
    });
    (refused.win as unknown as EventTarget).dispatchEvent(new (refused.win as unknown as typeof globalThis).Event("pagehide"));
    await Promise.resolve(); // the task ends (its stores are written at its end) before the next page opens
    const next = await visit("https://shop.example.com/", { from: refused });
    const events = await next.events();
    expect(named(events, "page_view")).toHaveLength(2);
    expect(named(events, "assignment")).toHaveLength(1);
    expect(named(events, "bounce")).toHaveLength(1); // the first page's, kept with its other events
  });

  /** A page whose sendBeacon keeps the events it is given (`sent()`), opened at 10:00:00; `leave()` fires pagehide. */
  function beaconed() {
    vi.setSystemTime(Date.parse("2026-11-26T10:00:00Z"));
    const beacons: string[] = [];
    const page = open("https://shop.example.com/", {
      inline: site(),
      before: (win) => {
        win.navigator.sendBeacon = (url: string, body: unknown) => beacons.push(String(body)) > 0;
      },
    });
    const sent = () => beacons.flatMap((b) => (JSON.parse(b) as { events: Record<string, unknown>[] }).events);
    const leave = () => (page.win as unknown as EventTarget).dispatchEvent(new (page.win as unknown as typeof globalThis).Event("pagehide"));
    const click = () => page.doc.querySelector("h1")!.dispatchEvent(new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true }));
    return { page, sent, leave, click };
  }

  it("a page left before the track chunk ran: time from the reveal, a click is an interaction, counted once", async () => {
    const { page, sent: beaconedEvents, leave, click } = beaconed();
    vi.setSystemTime(Date.parse("2026-11-26T10:00:02.34Z"));
    click();
    leave();
    // restored from the back/forward cache, the track chunk runs (the core's calls replayed), then
    // the page is left again: the chunk does not count the page view the core counted
    await page.events();
    leave();
    const sent = [...beaconedEvents(), ...(await page.events())];
    expect(named(sent, "time_on_page").map((e) => e.event_data)).toEqual([{ seconds: 2.3 }]);
    expect(named(sent, "bounce")).toEqual([]); // clicked: no bounce although under 5 s
  });

  it("a page left before the track chunk ran after an SPA navigation: the click that led there was on the page before", () => {
    const { page, sent: beaconedEvents, leave, click } = beaconed();
    click();
    page.win.history.pushState(null, "", "/next");
    vi.setSystemTime(Date.parse("2026-11-26T10:00:01.5Z"));
    leave();
    const sent = beaconedEvents();
    expect(named(sent, "time_on_page").map((e) => [e.url, e.event_data])).toEqual([["https://shop.example.com/next", { seconds: 1.5 }]]);
    expect(named(sent, "bounce").map((e) => e.url)).toEqual(["https://shop.example.com/next"]);
  });
});

describe("opt-out", () => {
  it("with segmently_opt_out=true nothing is tracked, stored or applied", async () => {
    const beacons: unknown[] = [];
    const page = open("https://shop.example.com/", {
      cookies: ["segmently_opt_out=true; path=/"],
      before: (win) => {
        win.navigator.sendBeacon = (url: string, body: unknown) => beacons.push(body) > 0;
      },
    });
    expect(curtainDrawn(page)).toBe(false);
    await settle();
    page.api.track("cta_click");
    page.doc.querySelector("h1")!.dispatchEvent(new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true }));
    (page.win as unknown as EventTarget).dispatchEvent(new (page.win as unknown as typeof globalThis).Event("pagehide"));
    expect(await page.events()).toEqual([]);
    expect(beacons).toEqual([]); // no page view, no time on page, no bounce either
    expect(headline(page)).toBe("Old headline");
    expect(page.doc.cookie).toBe("segmently_opt_out=true");
    expect(page.win.localStorage.length).toBe(0);
  });
});

describe("single-page apps", () => {
  it("on pushState: undoes what no longer matches, applies what now matches and sends a page_view", async () => {
    serve(
      site({
        experiments: [
          experiment({ url: ["\\/pricing"] }, { styles: ["h1{color:red}"] }),
          experiment({ id: "exp-2", slug: "checkout", seed: "exp-2", url: ["\\/checkout"] }, { styles: ["h1{color:blue}"] }),
        ],
      }),
    );
    const page = await visit("https://shop.example.com/pricing");
    const css = () => [...page.doc.querySelectorAll("style")].map((s) => s.textContent).join("");
    expect(css()).toContain("color:red");
    page.win.history.pushState({}, "", "/checkout");
    expect(css()).not.toContain("color:red");
    expect(css()).toContain("color:blue");
    expect(page.api.getAllAssignments()).toEqual({ hero: "variant_b", checkout: "variant_b" }); // hero is stored
    page.win.history.replaceState({}, "", "/checkout#reviews"); // an in-page anchor: no page view
    const views = named(await page.events(), "page_view").map((e) => e.url);
    expect(views).toEqual(["https://shop.example.com/pricing", "https://shop.example.com/checkout"]);
  });

  it("a route the app moved to while a first visit's config loaded is the page evaluated and counted", async () => {
    serve(site({ experiments: [experiment({ url: ["\\/pricing"] })] }));
    const page = open("https://shop.example.com/");
    page.win.history.replaceState({}, "", "/pricing"); // the router's redirect, before the config answered
    await settle();
    expect(headline(page)).toBe("New headline");
    const views = named(await page.events(), "page_view").map((e) => e.url);
    expect(views).toEqual(["https://shop.example.com/pricing"]);
  });
  it("an SPA redirect while the page is still hidden (activation delay): one page_view per URL", async () => {
    const page = open("https://shop.example.com/", { inline: site({ experiments: [experiment({ delay: 500 })] }) });
    await settle(100); // hidden: the activation delay runs
    page.win.history.pushState({}, "", "/next"); // the app's router moves on
    await settle(1000);
    const views = named(await page.events(), "page_view").map((e) => e.url);
    expect(views).toEqual(["https://shop.example.com/", "https://shop.example.com/next"]);
    expect(curtainDrawn(page)).toBe(false);
  });

  it("an SPA navigation after the stored config was revalidated follows the new config's URL rules", async () => {
    serve(site({ experiments: [experiment({}, { styles: ["h1{color:red}"] })] }));
    const first = await visit("https://shop.example.com/");
    serve(site({ experiments: [experiment({ url: ["\\/pricing"] }, { styles: ["h1{color:red}"] })] })); // narrowed meanwhile
    const page = open("https://shop.example.com/", { from: first });
    const css = () => [...page.doc.querySelectorAll("style")].map((s) => s.textContent).join("");
    expect(css()).toContain("color:red"); // the stored config applies at once
    await settle(); // the revalidation brings the new config, used from the next page view
    page.win.history.pushState({}, "", "/about");
    expect(css()).not.toContain("color:red");
  });
});

describe("cross-domain", () => {
  const crossDomain = {
    cross_domain: ["shop.example.com", "checkout.example.org"],
    cookie_domains: ["example.com", "example.org"],
    activation_delay_ms: 0,
    anti_flicker_timeout_ms: 5000,
  };

  it("adopts _sgmt_vid on a listed host, cleans the address bar and decorates links, also added ones", async () => {
    serve(site({ settings: crossDomain }));
    const id = "0b7c6f2e-5d1a-4c3b-9e8f-112233445566";
    const page = await visit(`https://shop.example.com/landing?_sgmt_vid=${id}&utm_source=x`);
    expect(page.api.getVisitorId()).toBe(id);
    expect(page.win.location.href).toBe("https://shop.example.com/landing?utm_source=x");
    expect((page.doc.getElementById("out") as HTMLAnchorElement).href).toBe(
      `https://checkout.example.org/cart?x=1&_sgmt_vid=${id}`,
    );
    const added = page.doc.createElement("a");
    added.href = "https://checkout.example.org/pay";
    page.doc.body.appendChild(added);
    await settle();
    expect(added.href).toBe(`https://checkout.example.org/pay?_sgmt_vid=${id}`);
    expect(named(await page.events(), "page_view")).toHaveLength(1); // cleaning the URL is no navigation
  });

  it("a link to a listed host followed before the track chunk ran still carries _sgmt_vid", () => {
    const page = open("https://shop.example.com/", { inline: site({ settings: crossDomain }) });
    expect((page.win as unknown as { __segmentlyTrack?: unknown }).__segmentlyTrack).toBeUndefined();
    const id = page.api.getVisitorId();
    const links = page.doc.body.appendChild(page.doc.createElement("p"));
    links.innerHTML =
      '<a id="pay" href="https://checkout.example.org/pay?a=b+c&amp;_sgmt_vid=old#top"><b>pay</b></a>' +
      '<a id="other" href="https://elsewhere.example.net/">x</a><a id="here" href="/about">y</a>';
    const click = () => new (page.win as unknown as typeof globalThis).MouseEvent("click", { bubbles: true, cancelable: true });
    for (const target of ["#pay b", "#other", "#here"]) {
      const el = page.doc.querySelector(target)!;
      // the navigation would read the href after the event: it reads it here, as the page's own handler would
      el.addEventListener("click", (e) => e.preventDefault());
      el.dispatchEvent(click());
    }
    expect((page.doc.getElementById("pay") as HTMLAnchorElement).href).toBe(`https://checkout.example.org/pay?a=b+c&_sgmt_vid=${id}#top`);
    expect((page.doc.getElementById("other") as HTMLAnchorElement).href).toBe("https://elsewhere.example.net/");
    expect((page.doc.getElementById("here") as HTMLAnchorElement).href).toBe("https://shop.example.com/about");
  });
});

describe("chunks", () => {
  it("inside the visual editor's iframe: loads the editor, applies and sends nothing", async () => {
    const page = await visit("https://shop.example.com/?segmently_editor=1", {
      before: (win) => Object.defineProperty(win, "parent", { value: {} }),
    });
    const scripts = [...page.doc.querySelectorAll("script[src]")].map((s) => (s as HTMLScriptElement).src);
    expect(scripts).toContain(`${BASE}/snippet/editor.js`);
    expect(headline(page)).toBe("Old headline");
    page.api.track("cta_click");
    expect(await page.events()).toEqual([]);
  });

  it("in the visual editor's iframe a preview of the same session changes nothing: the editor works on the original", async () => {
    const page = await visit("https://shop.example.com/?segmently_editor=1", {
      cookies: ["segmently_preview=hero%3Avariant_b; path=/"],
      before: (win) => Object.defineProperty(win, "parent", { value: {} }),
    });
    expect(headline(page)).toBe("Old headline");
    expect(curtainDrawn(page)).toBe(false);
    expect(page.doc.querySelector(`script[src="${BASE}/snippet/preview.js"]`)).toBeNull();
    expect(server.configRequests.every((url) => !url.includes("preview="))).toBe(true);
  });

  it("in the visual editor's iframe a preview parameter starts no preview session for the site", async () => {
    const page = await visit("https://shop.example.com/?segmently_editor=1&segmently_preview=hero%3Acontrol", {
      before: (win) => Object.defineProperty(win, "parent", { value: {} }),
    });
    expect(page.doc.cookie).not.toContain("segmently_preview");
    const next = await visit("https://shop.example.com/", { from: page }); // the site in a tab of the same session
    expect(headline(next)).toBe("New headline");
    expect(next.doc.querySelector(`script[src="${BASE}/snippet/preview.js"]`)).toBeNull();
  });

  it("is in editor mode in a frame named segmently_editor (pages a link leads to), never at the top", async () => {
    const framed = (win: Page["win"]) => {
      Object.defineProperty(win, "parent", { value: {} });
      win.name = "segmently_editor"; // the dashboard's iframe is named so; its name outlives navigations
    };
    const next = await visit("https://shop.example.com/about", { before: framed });
    const scripts = [...next.doc.querySelectorAll("script[src]")].map((s) => (s as HTMLScriptElement).src);
    expect(scripts).toContain(`${BASE}/snippet/editor.js`);
    expect(headline(next)).toBe("Old headline");
    const top = await visit("https://shop.example.com/about", { before: (win) => (win.name = "segmently_editor") });
    expect(headline(top)).toBe("New headline"); // a top-level page is a visit, whatever its name
  });

  it("sets window.__segmentlyHost and loads the badge and plugin modules from the base", async () => {
    serve(site({ badge: true, modules: [{ name: "heatmaps", src: "plugins/heatmaps.js" }] }));
    const page = await visit("https://shop.example.com/");
    const scripts = [...page.doc.querySelectorAll("script[src]")].map((s) => (s as HTMLScriptElement).src);
    expect(scripts).toEqual(
      expect.arrayContaining([`${BASE}/snippet/badge.js`, `${BASE}/plugins/heatmaps.js`]),
    );
    expect(scripts).not.toContain(`${BASE}/snippet/editor.js`);
    const host = page.win.__segmentlyHost as { apiKey: string; assignments(): unknown; visitorId(): string };
    expect(host.apiKey).toBe(KEY);
    expect(host.visitorId()).toBe(page.api.getVisitorId());
    expect(host.assignments()).toEqual({ hero: { experimentId: "exp-1", slug: "hero", variantId: "var-b", variantKey: "variant_b" } });
  });
});
