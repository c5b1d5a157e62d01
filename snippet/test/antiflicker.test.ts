// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { drawCurtain } from "../src/core/antiflicker";

const hidden = (doc: Document = document) => doc.defaultView!.getComputedStyle(doc.documentElement).opacity === "0";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  document.head.innerHTML = "";
});

describe("anti-flicker curtain", () => {
  test("hides the page at once; reveal shows it and says how long it stayed hidden", () => {
    const curtain = drawCurtain(document, 5000, () => Date.now());
    expect(hidden()).toBe(true);
    vi.advanceTimersByTime(320);
    expect(curtain()).toBe(320);
    expect(hidden()).toBe(false);
    expect(document.querySelectorAll("style")).toHaveLength(0);
  });

  test("the site's style sheets loaded after the snippet do not show the page", () => {
    drawCurtain(document, 5000, () => Date.now());
    document.head.insertAdjacentHTML("beforeend", `<style>html, body { opacity: 1; visibility: visible }</style>`);
    expect(hidden()).toBe(true);
  });

  test("reveals itself after the failsafe timeout when nobody calls reveal", () => {
    const curtain = drawCurtain(document, 5000, () => Date.now());
    vi.advanceTimersByTime(4999);
    expect(hidden()).toBe(true);
    vi.advanceTimersByTime(1);
    expect(hidden()).toBe(false);
    vi.advanceTimersByTime(2000);
    expect(curtain()).toBe(5000);
  });

  test("reveal is idempotent: later calls give the same time and the failsafe does nothing more", () => {
    let clock = 1000;
    const curtain = drawCurtain(document, 5000, () => clock);
    clock = 1250.4;
    expect(curtain()).toBe(250);
    const other = document.createElement("style");
    document.head.append(other);
    clock = 9000;
    vi.advanceTimersByTime(10_000);
    expect(curtain()).toBe(250);
    expect(document.head.contains(other)).toBe(true);
  });

  test("hides a page whose script runs before <head> exists", () => {
    const doc = document.implementation.createHTMLDocument("");
    doc.head.remove();
    const curtain = drawCurtain(doc, 5000);
    expect(doc.documentElement.querySelector("style")).not.toBeNull();
    curtain();
    expect(doc.querySelector("style")).toBeNull();
  });
});
