// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Assignment, ModuleHost } from "../src/core/host";
import type { ExperimentConfig, SiteConfig } from "../src/core/types";
import { fakeHost } from "./fakes";
import { startBadge } from "../src/modules/badge";
import {
  MAX_REPAIRS,
  MINIMIZED_KEY,
  parsePreview,
  previewUrl,
  startPreview,
  type PreviewPanel,
} from "../src/modules/preview";

function experiment(slug: string, name: string, over: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    id: `id-${slug}`,
    slug,
    name,
    status: "draft",
    preview: false,
    variants: [
      { id: `${slug}-v0`, key: "control", name: "Control", weight: 50 },
      { id: `${slug}-v1`, key: "variation-a", name: "Bigger button", weight: 50 },
    ],
    ...over,
  } as ExperimentConfig;
}

function host(experiments: ExperimentConfig[], assignments: Record<string, Assignment>, badge = false): ModuleHost {
  const config = { badge, experiments, modules: [] } as unknown as SiteConfig;
  return fakeHost({ config, assignments: () => assignments });
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
/** a style's `prop:NNpx` */
const px = (node: Element, prop: string): number => Number(new RegExp(`(?:^|;)${prop}:(\\d+)px`).exec(node.getAttribute("style")!)![1]);

function assigned(exp: ExperimentConfig, key: string): Assignment {
  const v = exp.variants.find((x) => x.key === key)!;
  return { experimentId: exp.id, slug: exp.slug, variantId: v.id, variantKey: v.key };
}

const checkout = experiment("checkout-cta", "Checkout <b>CTA</b>", { preview: true });
let panel: PreviewPanel | null = null;

function open(url: string, host: ModuleHost, navigate = vi.fn()): { panel: PreviewPanel; navigate: typeof navigate } {
  window.history.replaceState(null, "", url);
  panel = startPreview(host, window, navigate)!;
  return { panel, navigate };
}

beforeEach(() => {
  document.body.innerHTML = "<main>page</main>";
  sessionStorage.clear();
});

afterEach(() => {
  panel?.stop();
  panel = null;
});

describe("preview parameter", () => {
  it("is read as slug and variant, split at the first colon", () => {
    expect(parsePreview("?a=1&segmently_preview=checkout-cta:variation-a")).toEqual({
      slug: "checkout-cta",
      variant: "variation-a",
    });
    expect(parsePreview("?segmently_preview=checkout-cta%3Avariation-a")).toEqual({
      slug: "checkout-cta",
      variant: "variation-a",
    });
    expect(parsePreview("?segmently_preview=checkout-cta")).toEqual({ slug: "checkout-cta", variant: "" });
    expect(parsePreview("?segmently_preview=")).toBeNull();
    expect(parsePreview("?other=1")).toBeNull();
  });

  it("is replaced in place or removed, other parameters and the fragment kept as written", () => {
    const href = "https://shop.test/p?q=a+b%20c&segmently_preview=checkout-cta:control&x=%7E#top";
    expect(previewUrl(href, { slug: "checkout-cta", variant: "variation-a" })).toBe(
      "https://shop.test/p?q=a+b%20c&segmently_preview=checkout-cta:variation-a&x=%7E#top",
    );
    expect(previewUrl(href, null)).toBe("https://shop.test/p?q=a+b%20c&x=%7E#top");
    expect(previewUrl("https://shop.test/p?segmently_preview=a:b", null)).toBe("https://shop.test/p");
    expect(previewUrl("https://shop.test/p#h", { slug: "a", variant: "b" })).toBe(
      "https://shop.test/p?segmently_preview=a:b#h",
    );
  });
});

describe("test panel", () => {
  it("shows the previewed experiment's name and the segment being shown", () => {
    const { panel } = open("/pricing?segmently_preview=checkout-cta:variation-a", host([checkout], { "checkout-cta": assigned(checkout, "variation-a") }));
    const root = panel.root;
    expect(root.querySelector(".name")!.textContent).toContain("Checkout <b>CTA</b>"); // a name is text, never markup
    expect(root.querySelector("b")).toBeNull();
    expect(root.querySelector(".status")!.textContent).toBe("draft");
    const select = root.querySelector("select")!;
    expect(select.value).toBe("variation-a");
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(["Control (control)", "Bigger button (variation-a)"]);
    expect(root.querySelector(".note")).toBeNull();
  });

  it("switches segment by loading the same URL with the parameter replaced", () => {
    const { panel, navigate } = open(
      "/pricing?utm_source=mail&segmently_preview=checkout-cta:variation-a#faq",
      host([checkout], { "checkout-cta": assigned(checkout, "variation-a") }),
    );
    const select = panel.root.querySelector("select")!;
    select.value = "control";
    select.dispatchEvent(new Event("change"));
    expect(navigate).toHaveBeenCalledWith("http://localhost:3000/pricing?utm_source=mail&segmently_preview=checkout-cta:control#faq");
  });

  it("View Original leads to the URL without the preview parameter", () => {
    const { panel } = open("/pricing?utm_source=mail&segmently_preview=checkout-cta:control", host([checkout], { "checkout-cta": assigned(checkout, "control") }));
    const original = panel.root.querySelector<HTMLAnchorElement>("a.original")!;
    expect(original.textContent).toBe("View Original");
    expect(original.getAttribute("href")).toBe("http://localhost:3000/pricing?utm_source=mail");
    // the core keeps the preview for the session (a session cookie); leaving it forgets that too
    document.cookie = "segmently_preview=checkout-cta%3Acontrol; path=/";
    original.addEventListener("click", (e) => e.preventDefault());
    original.click();
    expect(document.cookie).not.toContain("segmently_preview=checkout"); // max-age=0 (happy-dom keeps it empty)
  });

  it("Dashboard opens the experiment on the Segmently server in a new tab", () => {
    const { panel } = open("/?segmently_preview=checkout-cta:control", host([checkout], { "checkout-cta": assigned(checkout, "control") }));
    const link = panel.root.querySelector<HTMLAnchorElement>("a.dashboard")!;
    expect(link.getAttribute("href")).toBe("https://ab.example.com/experiments/id-checkout-cta");
    expect(link.getAttribute("target")).toBe("_blank");
    expect(link.getAttribute("rel")).toBe("noopener");
  });

  it("lists the other experiments running on the page after the previewed one", () => {
    const live = experiment("hero", "Hero copy", { status: "live" });
    const elsewhere = experiment("footer", "Footer", { status: "live" });
    const { panel } = open(
      "/?segmently_preview=checkout-cta:control",
      host([live, elsewhere, checkout], { hero: assigned(live, "variation-a"), "checkout-cta": assigned(checkout, "control") }),
    );
    const names = Array.from(panel.root.querySelectorAll(".name")).map((n) => n.firstChild!.textContent);
    expect(names).toEqual(["Checkout <b>CTA</b>", "Hero copy"]);
    const selects = panel.root.querySelectorAll("select");
    expect(selects[1]!.value).toBe("variation-a");
  });

  it("says when the experiment is not running here, the segment is unknown, or the slug is wrong", () => {
    const { panel } = open("/?segmently_preview=checkout-cta:variation-z", host([checkout], {}));
    const notes = Array.from(panel.root.querySelectorAll(".note")).map((n) => n.textContent);
    expect(notes).toEqual([
      'No segment "variation-z" in this experiment.',
      "Not running on this page (check its URL and device targeting).",
    ]);
    expect(panel.root.querySelector("select")!.value).toBe("");
    panel.stop();

    const other = open("/?segmently_preview=chekout:control", host([], {})).panel;
    expect(other.root.querySelector(".note")!.textContent).toBe('No experiment "chekout" is served to this site (check the slug).');
  });

  it("shows assignments that arrive after it (activation delay) when the pointer comes back", () => {
    const assignments: Record<string, Assignment> = {};
    const { panel } = open("/?segmently_preview=checkout-cta:variation-a", host([checkout], assignments));
    expect(panel.root.querySelector("select")!.value).toBe("");
    assignments["checkout-cta"] = assigned(checkout, "variation-a");
    panel.element.dispatchEvent(new Event("pointerenter"));
    expect(panel.root.querySelector("select")!.value).toBe("variation-a");
  });

  it("minimizes with ▼ and stays minimized on the next page of the same session", () => {
    const h = host([checkout], { "checkout-cta": assigned(checkout, "control") });
    const first = open("/?segmently_preview=checkout-cta:control", h).panel;
    const toggle = first.root.querySelector<HTMLButtonElement>("button.toggle")!;
    expect(toggle.textContent).toBe("▼");
    toggle.click();
    expect(first.root.querySelector(".panel")!.classList.contains("min")).toBe(true);
    expect(sessionStorage.getItem(MINIMIZED_KEY)).toBe("1");
    first.stop();

    const second = open("/checkout?segmently_preview=checkout-cta:control", h).panel;
    expect(second.root.querySelector(".panel")!.classList.contains("min")).toBe(true);
    const expand = second.root.querySelector<HTMLButtonElement>("button.toggle")!;
    expect(expand.textContent).toBe("▲");
    expand.click();
    expect(second.root.querySelector(".panel")!.classList.contains("min")).toBe(false);
    expect(sessionStorage.getItem(MINIMIZED_KEY)).toBeNull();
  });

  it("adds one element to the page and keeps its styles inside its shadow root", () => {
    const before = document.querySelectorAll("*").length;
    const { panel } = open("/?segmently_preview=checkout-cta:control", host([checkout], { "checkout-cta": assigned(checkout, "control") }));
    expect(document.querySelectorAll("*").length).toBe(before + 1);
    expect(panel.element.parentNode).toBe(document.body);
    expect(panel.element.tagName.toLowerCase()).toBe("segmently-preview"); // no page rule for div, a, … matches it
    expect(panel.element.getAttribute("style")).toContain("all:initial!important");
    expect(document.querySelectorAll("style")).toHaveLength(0);
    expect(panel.root.querySelectorAll("style")).toHaveLength(1);
  });

  it("appears once when started twice, and not at all when nothing is previewed", () => {
    const h = host([checkout], {});
    const { panel } = open("/?segmently_preview=checkout-cta:control", h);
    expect(startPreview(h, window)).toBe(panel);
    expect(document.querySelectorAll("segmently-preview")).toHaveLength(1);
    panel.stop();

    window.history.replaceState(null, "", "/");
    expect(startPreview(host([experiment("hero", "Hero", { status: "live" })], {}), window)).toBeNull();
    expect(document.querySelectorAll("segmently-preview")).toHaveLength(0);
  });

  it("stays on the next pages of a session that previews a live experiment, listing it first", () => {
    // no parameter on page 2: the core forces the variant from its session cookie, and the server marks
    // the experiment with `forced` (its `preview` stays false: it is live)
    const live = experiment("hero", "Hero copy", { status: "live", forced: 1 });
    const draft = experiment("footer", "Footer", { preview: true });
    const { panel } = open("/checkout", host([draft, live], { hero: assigned(live, "variation-a") }));
    expect(panel).not.toBeNull();
    expect(panel.element.parentNode).toBe(document.body);
    const names = Array.from(panel.root.querySelectorAll(".name")).map((n) => n.firstChild!.textContent);
    expect(names).toEqual(["Hero copy", "Footer"]);
    expect(panel.root.querySelector("select")!.value).toBe("variation-a");
    expect(panel.root.querySelector("a.original")!.getAttribute("href")).toBe("http://localhost:3000/checkout");
  });

  it("says on the next pages of the session too when the segment asked for does not exist", () => {
    const live = experiment("hero", "Hero copy", { status: "live", forced: null });
    const { panel } = open("/checkout", host([live], {}));
    expect(panel).not.toBeNull();
    const notes = Array.from(panel.root.querySelectorAll(".note")).map((n) => n.textContent);
    expect(notes).toEqual([
      "The segment asked for is not in this experiment.",
      "Not running on this page (check its URL and device targeting).",
    ]);
  });

  it("switches segment and leads to the original of the page the visitor moved to in a single-page app", () => {
    const { panel, navigate } = open(
      "/pricing?segmently_preview=checkout-cta:variation-a",
      host([checkout], { "checkout-cta": assigned(checkout, "variation-a") }),
    );
    window.history.pushState(null, "", "/checkout?step=2&segmently_preview=checkout-cta:variation-a#pay"); // the app's router
    const original = panel.root.querySelector<HTMLAnchorElement>("a.original")!;
    panel.element.dispatchEvent(new Event("pointerenter")); // the pointer comes to the panel
    expect(original.getAttribute("href")).toBe("http://localhost:3000/checkout?step=2#pay");
    const select = panel.root.querySelector("select")!;
    select.value = "control";
    select.dispatchEvent(new Event("change"));
    expect(navigate).toHaveBeenCalledWith("http://localhost:3000/checkout?step=2&segmently_preview=checkout-cta:control#pay");

    window.history.pushState(null, "", "/thanks"); // moved on again, the link reached by keyboard, not the pointer
    original.addEventListener("click", (e) => e.preventDefault());
    original.click();
    expect(original.getAttribute("href")).toBe("http://localhost:3000/thanks");
  });

  it("comes back when the page swaps its <body> (Turbo Drive, pjax) or clears it (hydration)", async () => {
    const { panel } = open("/?segmently_preview=checkout-cta:control", host([checkout], { "checkout-cta": assigned(checkout, "control") }));
    const fresh = document.createElement("body");
    fresh.innerHTML = "<main>next page</main>";
    document.body.replaceWith(fresh);
    await flush();
    expect(panel.element.parentNode).toBe(fresh);
    document.body.innerHTML = "<main>hydrated</main>"; // the new body is watched too
    await flush();
    expect(panel.element.parentNode).toBe(document.body);
    expect(document.querySelectorAll("segmently-preview")).toHaveLength(1);

    panel.stop(); // stopped for good: not put back
    document.body.replaceWith(document.createElement("body"));
    await flush();
    expect(panel.element.isConnected).toBe(false);
  });

  it("stops coming back on a page that keeps removing it, and says so once", async () => {
    const h = host([checkout], {});
    const { panel } = open("/?segmently_preview=checkout-cta:control", h);
    for (let i = 0; i < MAX_REPAIRS; i++) {
      panel.element.remove();
      await flush();
      expect(panel.element.isConnected).toBe(true);
    }
    panel.element.remove();
    await flush();
    expect(panel.element.isConnected).toBe(false);
    document.body.appendChild(document.createElement("div"));
    await flush();
    expect(panel.element.isConnected).toBe(false);
    expect(h.report).toHaveBeenCalledTimes(1);
    expect(String(vi.mocked(h.report).mock.calls[0]![0])).toContain("test panel");
  });

  it("sits above the free-tier badge, so the minimized panel's ▲ stays clickable", () => {
    sessionStorage.setItem(MINIMIZED_KEY, "1");
    const BADGE_HEIGHT = 26; // Chromium, the badge's one line of 11px text with its padding and border
    const h = host([checkout], { "checkout-cta": assigned(checkout, "control") }, true);
    const { panel } = open("/?segmently_preview=checkout-cta:control", h);
    const badge = startBadge(h, window)!;
    try {
      // both fixed bottom-right, the badge on top (z-index 2147483647): the panel must clear it
      expect(px(panel.element, "bottom")).toBeGreaterThanOrEqual(px(badge.element, "bottom") + BADGE_HEIGHT + 4);
    } finally {
      badge.stop();
    }
    panel.stop();

    // no badge (paid plans): in the corner as before
    const paid = open("/?segmently_preview=checkout-cta:control", host([checkout], {})).panel;
    expect(px(paid.element, "bottom")).toBe(16);
  });
});
