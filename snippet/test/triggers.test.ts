// @vitest-environment happy-dom
// Behavioral triggers: scroll depth, time on page, element click; the first wins, once per page view.
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import { onTrigger } from "../src/modules/track/triggers";

function setPage(height: number, viewport = 800): void {
  Object.defineProperty(document.documentElement, "scrollHeight", { configurable: true, value: height });
  Object.defineProperty(window, "innerHeight", { configurable: true, value: viewport });
}

function scrollTo(y: number): void {
  Object.defineProperty(window, "scrollY", { configurable: true, value: y });
  window.dispatchEvent(new Event("scroll"));
}

function click(el: Element): void {
  el.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}

describe("onTrigger", () => {
  const cancels: (() => void)[] = [];
  let fire: Mock<() => void>;

  function start(t: Parameters<typeof onTrigger>[1]): () => void {
    const cancel = onTrigger(window, t, fire);
    cancels.push(cancel);
    return cancel;
  }

  beforeEach(() => {
    vi.useFakeTimers();
    fire = vi.fn<() => void>();
    document.body.innerHTML = `<button id="buy"><span class="icon">+</span>Buy</button><p id="other">text</p>`;
    setPage(4000);
    scrollTo(0);
  });
  afterEach(() => {
    for (const cancel of cancels.splice(0)) cancel();
    vi.useRealTimers();
  });

  it("fires when the bottom of the viewport reaches the scroll percentage", () => {
    start({ scroll_percent: 50 });
    scrollTo(1100); // (1100 + 800) / 4000 = 47.5 %
    expect(fire).not.toHaveBeenCalled();
    scrollTo(1200); // exactly 50 %
    expect(fire).toHaveBeenCalledOnce();
    scrollTo(3200);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("fires at 100 % when a zoomed page's bottom is a fraction of a pixel short of its whole-pixel height", () => {
    start({ scroll_percent: 100 });
    scrollTo(3190);
    expect(fire).not.toHaveBeenCalled();
    scrollTo(3199.5); // zoomed, the page may stop scrolling here: 3200 is never reached
    expect(fire).toHaveBeenCalledOnce();
  });

  it("fires at once on a page shorter than the viewport fold at that depth", () => {
    setPage(1000);
    start({ scroll_percent: 75 });
    expect(fire).toHaveBeenCalledOnce();
  });

  it("waits for the document to be parsed before judging a page too short to scroll", () => {
    Object.defineProperty(document, "readyState", { configurable: true, value: "loading" });
    try {
      setPage(300); // only the <head> so far
      start({ scroll_percent: 50 });
      setPage(4000);
      document.dispatchEvent(new Event("DOMContentLoaded"));
      expect(fire).not.toHaveBeenCalled();
      scrollTo(1200);
      expect(fire).toHaveBeenCalledOnce();
    } finally {
      delete (document as unknown as Record<string, unknown>).readyState;
    }
  });

  it("fires after the number of seconds on the page", () => {
    start({ time_seconds: 30 });
    vi.advanceTimersByTime(29_999);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("fires on a click on the selector's element or a child of it, not elsewhere", () => {
    start({ click_selector: "#buy" });
    click(document.getElementById("other")!);
    expect(fire).not.toHaveBeenCalled();
    click(document.querySelector(".icon")!);
    expect(fire).toHaveBeenCalledOnce();
    click(document.getElementById("buy")!);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("fires on a click even when the page stops the click from bubbling", () => {
    document.getElementById("buy")!.addEventListener("click", (e) => e.stopPropagation());
    start({ click_selector: "#buy" });
    click(document.getElementById("buy")!);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("lets the first trigger win and removes the others", () => {
    start({ scroll_percent: 50, time_seconds: 10, click_selector: "#buy" });
    click(document.getElementById("buy")!);
    expect(fire).toHaveBeenCalledOnce();
    scrollTo(3200);
    vi.advanceTimersByTime(60_000);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("fires on the timer when the visitor neither scrolls nor clicks", () => {
    start({ scroll_percent: 90, time_seconds: 5, click_selector: "#buy" });
    scrollTo(1000);
    vi.advanceTimersByTime(5000);
    expect(fire).toHaveBeenCalledOnce();
    click(document.getElementById("buy")!);
    expect(fire).toHaveBeenCalledOnce();
  });

  it("never fires after cancel (SPA navigation)", () => {
    const cancel = start({ scroll_percent: 50, time_seconds: 1, click_selector: "#buy" });
    cancel();
    scrollTo(3200);
    click(document.getElementById("buy")!);
    vi.advanceTimersByTime(5000);
    expect(fire).not.toHaveBeenCalled();
  });

  it("ignores an invalid selector instead of throwing on every click", () => {
    start({ click_selector: "#buy[", time_seconds: 2 });
    expect(() => click(document.getElementById("buy")!)).not.toThrow();
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2000);
    expect(fire).toHaveBeenCalledOnce();
  });
});
