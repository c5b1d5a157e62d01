// @vitest-environment happy-dom
// The track chunk as the core calls it (its Tracker), on a page of its own (a fresh happy-dom
// Window) with a fake host: which experiments goals count for, and when a bounce is sent.
import { Window } from "happy-dom";
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import type { Emit, Running, Tracker } from "../src/core/host";
import type { ExperimentConfig, Goal, SiteConfig, VariantConfig } from "../src/core/types";
import { startTrack } from "../src/modules/track";
import { fakeHost } from "./fakes";

const SHOP = "https://shop.example.com";
const THANKS: Goal = { id: "g-thanks", type: "page_view", name: "Thank you", url: "/thank-you" };
const BUY: Goal = { id: "g-buy", type: "click", name: "Buy click", selector: "#buy" };

function variant(id: string): VariantConfig {
  return { id, key: id, name: id, weight: 50, elements: [], styles: [], scripts: [] };
}

/** An experiment whose URL rules match /pricing only; variants `<id>-a` and `<id>-b`. */
function experiment(id: string, over: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    id,
    slug: id,
    name: id,
    seed: id,
    type: "ab",
    status: "live",
    preview: false,
    delay: 0,
    targeting: {},
    url: ["^https?://[^/]+/pricing"],
    ranges: [],
    audience: {},
    goals: [THANKS, BUY],
    funnels: [],
    cross_domain: [],
    ga4: false,
    mixpanel: false,
    variants: [variant(`${id}-a`), variant(`${id}-b`)],
    ...over,
  };
}

/** What the core passes for an experiment running on the page. */
function running(e: ExperimentConfig, variantIndex: number, preview = false): Running {
  return [e, e.variants[variantIndex]!, () => {}, preview];
}

describe("the track chunk", () => {
  let win: Window;
  let emit: Mock<Emit>;
  let tracker: Tracker;

  /** The chunk starts on a page whose visitor is `visitor-1` and whose config has `experiments`. */
  function start(experiments: ExperimentConfig[]): Tracker {
    const config = { experiments, conversion_rules: [], modules: [] } as unknown as SiteConfig;
    const host = fakeHost({ base: "https://ab.example.net", config, track: emit });
    return startTrack(host, win as unknown as globalThis.Window);
  }

  /** The core's sticky assignments in localStorage, as an earlier page wrote them. */
  function assigned(variants: Record<string, string>, visitor = "visitor-1"): void {
    win.localStorage.setItem("seg_assignments", JSON.stringify({ visitor, variants }));
  }

  const clickBuy = (): void => (win.document.getElementById("buy") as unknown as HTMLElement).click();
  const conversions = () => emit.mock.calls.filter((c) => c[0] === "conversion").map((c) => [c[1]!.goal_id, c[2], c[3]]);

  beforeEach(() => {
    win = new Window({ url: `${SHOP}/thank-you` });
    win.document.body.innerHTML = '<button id="buy">Buy</button>';
    emit = vi.fn<Emit>();
  });
  afterEach(async () => {
    await win.happyDOM.close();
  });

  describe("goals of a bucketed visitor on pages outside the experiment's URL rules", () => {
    it("a page_view goal converts when the visitor bucketed on /pricing reaches /thank-you", () => {
      assigned({ "exp-1": "exp-1-b" });
      tracker = start([experiment("exp-1")]);
      tracker.page(`${SHOP}/thank-you`); // the core's calls for a page where nothing runs
      tracker.targets([]);
      expect(conversions()).toEqual([["g-thanks", "exp-1", "exp-1-b"]]);
    });

    it("a click goal converts there too, once per page view", () => {
      assigned({ "exp-1": "exp-1-a" });
      tracker = start([experiment("exp-1")]);
      tracker.page(`${SHOP}/cart`);
      clickBuy();
      clickBuy();
      expect(conversions()).toEqual([["g-buy", "exp-1", "exp-1-a"]]);
    });

    it("an experiment running on the page counts once, with its running variant, not again as stored", () => {
      const e = experiment("exp-1", { url: [] });
      assigned({ "exp-1": "exp-1-b" });
      tracker = start([e]);
      tracker.page(`${SHOP}/thank-you`);
      tracker.targets([running(e, 1)]);
      clickBuy();
      expect(conversions()).toEqual([
        ["g-thanks", "exp-1", "exp-1-b"],
        ["g-buy", "exp-1", "exp-1-b"],
      ]);
    });

    it("counts nothing for assignments stored for another visitor (before a reset)", () => {
      assigned({ "exp-1": "exp-1-b" }, "someone-else");
      tracker = start([experiment("exp-1")]);
      tracker.page(`${SHOP}/thank-you`);
      clickBuy();
      expect(conversions()).toEqual([]);
    });

    it("counts nothing for a draft served for a preview, nor for an experiment being previewed", () => {
      assigned({ draft: "draft-b", previewed: "previewed-a" });
      tracker = start([experiment("draft", { preview: true }), experiment("previewed", { forced: 1 })]);
      tracker.page(`${SHOP}/thank-you`);
      clickBuy();
      expect(conversions()).toEqual([]);
    });

    it("a previewed experiment running on the page counts nothing, as before", () => {
      const e = experiment("exp-1", { url: [], forced: 1 });
      tracker = start([e]);
      tracker.page(`${SHOP}/thank-you`);
      tracker.targets([running(e, 1, true)]);
      expect(conversions()).toEqual([]);
    });
  });

  describe("bounce", () => {
    const bounces = () => emit.mock.calls.filter((c) => c[0] === "bounce");
    const seconds = () => emit.mock.calls.filter((c) => c[0] === "time_on_page").map((c) => c[1]!.seconds);

    it("an SPA URL change 2 s after load (utm_* stripped) is no bounce for a visitor who stays 30 s", () => {
      tracker = start([]);
      const t0 = Date.now();
      tracker.page(`${SHOP}/landing?utm_source=news`);
      tracker.view(`${SHOP}/landing?utm_source=news`, t0);
      tracker.leave(t0 + 2_000); // the core, before the SPA navigation
      tracker.targets([]);
      tracker.page(`${SHOP}/landing`);
      tracker.view(`${SHOP}/landing`, t0 + 2_000);
      tracker.leave(t0 + 32_000); // pagehide: leave(), then flush()
      tracker.flush();
      expect(seconds()).toEqual([2, 30]);
      expect(bounces()).toEqual([]);
    });

    it("a visitor who leaves the page within 5 s without interacting still bounces", () => {
      tracker = start([]);
      const t0 = Date.now();
      tracker.page(`${SHOP}/landing`);
      tracker.view(`${SHOP}/landing`, t0);
      tracker.leave(t0 + 2_000); // pagehide
      tracker.flush();
      expect(seconds()).toEqual([2]);
      expect(bounces()).toHaveLength(1);
    });
  });
});
