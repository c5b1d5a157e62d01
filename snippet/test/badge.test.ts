// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import type { ModuleHost } from "../src/core/host";
import type { SiteConfig } from "../src/core/types";
import { BADGE_URL, MAX_REPAIRS, startBadge, type BadgeHandle } from "../src/modules/badge";
import { fakeHost } from "./fakes";

function badgeHost(badge: boolean): ModuleHost & { report: Mock<(message: string, error?: unknown) => void> } {
  const config = { plan: badge ? "free" : "professional", badge, experiments: [], modules: [] } as unknown as SiteConfig;
  return { ...fakeHost({ config }), report: vi.fn<(message: string, error?: unknown) => void>() };
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const badges = (): Element[] => Array.from(document.querySelectorAll("segmently-badge"));

let handle: BadgeHandle | null = null;

beforeEach(() => {
  document.body.innerHTML = "<main><h1>Shop</h1></main>";
});

afterEach(() => {
  handle?.stop();
  handle = null;
  vi.useRealTimers();
});

describe("free-tier badge", () => {
  it("is not shown when the config does not ask for it (paid plans)", () => {
    handle = startBadge(badgeHost(false), window);
    expect(handle).toBeNull();
    expect(badges()).toHaveLength(0);
  });

  it("shows a Powered by Segmently link to segmently.us, fixed bottom-right, in a closed shadow root", () => {
    handle = startBadge(badgeHost(true), window)!;
    expect(badges()).toEqual([handle.element]);
    expect(handle.element.parentNode).toBe(document.body);
    expect(handle.element.shadowRoot).toBeNull(); // the page's scripts cannot reach inside
    const style = handle.element.getAttribute("style")!;
    expect(style).toContain("position:fixed!important");
    expect(style).toContain("right:12px!important");
    expect(style).toContain("bottom:12px!important");
    const link = handle.root.querySelector("a")!;
    expect(link.getAttribute("href")).toBe(BADGE_URL);
    expect(BADGE_URL).toBe("https://segmently.us");
    expect(link.getAttribute("target")).toBe("_blank");
    expect(link.getAttribute("rel")).toBe("noopener");
    expect(link.textContent).toBe("Powered by Segmently");
    // nothing of ours in the page's own DOM besides the host element
    expect(document.head.querySelector("style")).toBeNull();
    expect(document.querySelector("a")).toBeNull();
  });

  it("is shown once when the chunk starts twice", () => {
    const host = badgeHost(true);
    handle = startBadge(host, window);
    expect(startBadge(host, window)).toBe(handle);
    expect(badges()).toHaveLength(1);
  });

  it("is put back when a script removes it", async () => {
    handle = startBadge(badgeHost(true), window)!;
    handle.element.remove();
    await flush();
    expect(handle.element.parentNode).toBe(document.body);

    document.body.innerHTML = "<p>re-rendered</p>"; // a framework replacing the body's content
    await flush();
    expect(badges()).toEqual([handle.element]);
    expect(document.body.querySelector("p")!.textContent).toBe("re-rendered");
  });

  it("is put back when moved out of the body or into a swapped-in body", async () => {
    handle = startBadge(badgeHost(true), window)!;
    const hidden = document.createElement("div");
    document.body.appendChild(hidden);
    hidden.appendChild(handle.element);
    await flush();
    expect(handle.element.parentNode).toBe(document.body);

    const fresh = document.createElement("body");
    document.documentElement.replaceChild(fresh, document.body);
    await flush();
    expect(handle.element.parentNode).toBe(fresh);
    fresh.removeChild(handle.element);
    await flush();
    expect(handle.element.parentNode).toBe(fresh);
  });

  it("gets its look back when a script restyles or hides the element", async () => {
    handle = startBadge(badgeHost(true), window)!;
    const original = handle.element.getAttribute("style");
    handle.element.style.setProperty("display", "none", "important");
    await flush();
    expect(handle.element.getAttribute("style")).toBe(original);
    handle.element.setAttribute("hidden", "");
    handle.element.className = "sr-only";
    await flush();
    expect(handle.element.hasAttribute("hidden")).toBe(false);
    expect(handle.element.hasAttribute("class")).toBe(false);
  });

  it("stops fighting a script that keeps removing it, and says so once", async () => {
    const host = badgeHost(true);
    handle = startBadge(host, window)!;
    for (let i = 0; i < MAX_REPAIRS; i++) {
      handle.element.remove();
      await flush();
      expect(handle.element.isConnected).toBe(true);
    }
    handle.element.remove();
    await flush();
    expect(handle.element.isConnected).toBe(false);
    handle.element.remove();
    document.body.appendChild(document.createElement("div"));
    await flush();
    expect(host.report).toHaveBeenCalledTimes(1);
    expect(String(host.report.mock.calls[0]![0])).toContain("badge");
  });

  it("keeps coming back on a page that re-renders now and then", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const host = badgeHost(true);
    handle = startBadge(host, window)!;
    for (let i = 0; i < MAX_REPAIRS * 3; i++) {
      vi.setSystemTime(Date.now() + 2_000);
      document.body.innerHTML = `<p>route ${i}</p>`;
      await flush();
      expect(handle.element.isConnected).toBe(true);
    }
    expect(host.report).not.toHaveBeenCalled();
  });

  it("waits for the body when started from the head", () => {
    const host = badgeHost(true);
    const body = document.body;
    document.documentElement.removeChild(body);
    handle = startBadge(host, window)!;
    expect(handle.element.isConnected).toBe(false);
    document.documentElement.appendChild(body);
    document.dispatchEvent(new Event("DOMContentLoaded"));
    expect(handle.element.parentNode).toBe(body);
  });
});
