// @vitest-environment happy-dom
// time_on_page (visible time), sent once when the visitor leaves a page view, and bounce, sent when
// they leave the page itself (pagehide: leave() then exit()), never for an SPA navigation.
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import { type Emit, trackEngagement } from "../src/modules/track/engagement";

function setVisibility(state: "visible" | "hidden"): void {
  Object.defineProperty(document, "visibilityState", { configurable: true, value: state });
  document.dispatchEvent(new Event("visibilitychange"));
}

describe("trackEngagement", () => {
  let clock: number;
  let emit: Mock<Emit>;
  let engagement: ReturnType<typeof trackEngagement>;
  const wait = (ms: number): void => {
    clock += ms;
  };

  beforeEach(() => {
    clock = 1_000_000;
    emit = vi.fn<Emit>();
    setVisibility("visible");
    engagement = trackEngagement(window, document, emit, () => clock);
  });
  afterEach(() => {
    engagement.stop();
    delete (document as unknown as Record<string, unknown>).visibilityState;
  });

  it("sends the seconds on the page when the visitor leaves, and no bounce after 5 s", () => {
    engagement.pageView();
    wait(12_340);
    engagement.leave();
    expect(emit.mock.calls).toEqual([["time_on_page", { seconds: 12.3 }]]);
  });

  it("does not count the time the tab was in the background", () => {
    engagement.pageView();
    wait(3000);
    setVisibility("hidden");
    wait(60_000);
    setVisibility("visible");
    wait(4000);
    engagement.leave();
    expect(emit).toHaveBeenCalledWith("time_on_page", { seconds: 7 });
  });

  it("sends a bounce when the visitor leaves within 5 s without interacting", () => {
    engagement.pageView();
    wait(2000);
    engagement.leave();
    engagement.exit();
    expect(emit.mock.calls).toEqual([["time_on_page", { seconds: 2 }], ["bounce"]]);
  });

  it("sends no bounce when the visitor clicked or typed before leaving quickly", () => {
    engagement.pageView();
    document.body.dispatchEvent(new Event("pointerdown", { bubbles: true }));
    wait(2000);
    engagement.leave();
    engagement.pageView();
    document.body.dispatchEvent(new KeyboardEvent("keydown", { bubbles: true, key: "a" }));
    engagement.leave();
    expect(emit.mock.calls.map((c) => c[0])).toEqual(["time_on_page", "time_on_page"]);
  });

  it("sends once per page: a second leave() (pagehide after an SPA navigation) sends nothing", () => {
    engagement.pageView();
    wait(8000);
    engagement.leave();
    wait(8000);
    engagement.leave();
    expect(emit).toHaveBeenCalledOnce();
  });

  it("measures each page of a single-page app on its own, an interaction not carried over", () => {
    engagement.pageView();
    document.body.dispatchEvent(new Event("pointerdown", { bubbles: true }));
    wait(9000);
    engagement.pageView(); // navigation without leave(): the previous page is left first
    wait(1000);
    engagement.leave();
    engagement.exit();
    expect(emit.mock.calls).toEqual([
      ["time_on_page", { seconds: 9 }],
      ["time_on_page", { seconds: 1 }],
      ["bounce"],
    ]);
  });

  it("sends no bounce for a URL change within 5 s (a site stripping utm_* parameters): the visitor stayed", () => {
    engagement.pageView();
    wait(2000);
    engagement.leave(); // before the SPA navigation
    engagement.pageView(); // the next page view
    wait(30_000);
    engagement.leave(); // pagehide
    engagement.exit();
    expect(emit.mock.calls).toEqual([
      ["time_on_page", { seconds: 2 }],
      ["time_on_page", { seconds: 30 }],
    ]);
  });

  it("sends one bounce for a page restored from the back/forward cache and left again", () => {
    engagement.pageView();
    wait(1000);
    engagement.leave();
    engagement.exit(); // pagehide into the back/forward cache
    engagement.leave();
    engagement.exit(); // restored, then left again: no new page view
    expect(emit.mock.calls).toEqual([["time_on_page", { seconds: 1 }], ["bounce"]]);
  });

  it("counts a page opened in a background tab from when it is first shown", () => {
    setVisibility("hidden");
    engagement.pageView();
    wait(30_000);
    setVisibility("visible");
    wait(6000);
    engagement.leave();
    expect(emit.mock.calls).toEqual([["time_on_page", { seconds: 6 }]]);
  });

  it("sends nothing before a page view started", () => {
    engagement.leave();
    expect(emit).not.toHaveBeenCalled();
  });
});
