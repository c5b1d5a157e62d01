// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ModuleHost } from "../src/core/host";
import { selectorFor, startEditor, type EditorHandle } from "../src/modules/editor";
import { fakeHost } from "./fakes";

const DASHBOARD = "https://ab.example.com:8443";

const host = (base = `${DASHBOARD}/segmently`): ModuleHost => fakeHost({ base });

const PAGE = `
  <header id="top"><nav><a class="nav-link" href="/a">A</a><a class="nav-link" href="/b">B</a></nav></header>
  <section class="hero-section">
    <h1 class="title">  Grow   faster  </h1>
    <button class="cta-button btn">Start free trial</button>
  </section>
  <section class="cards">
    <div class="card"><p>One</p><p>Two</p></div>
    <div class="card featured"><p>Three</p></div>
    <div class="card"><span>Four <b>bold</b></span></div>
  </section>
  <div id="dup"><i>x</i></div><div id="dup"><i>y</i></div>
  <div id=":r3:"><em>generated id</em></div>
  <ul><li class="css-1x2y3z">one</li><li class="css-9q8w7e">two</li></ul>
  <footer><p>© <span>Shop</span></p></footer>`;

let parent: { postMessage: ReturnType<typeof vi.fn> };
const ownParent = Object.getOwnPropertyDescriptor(window, "parent");

function restoreParent(): void {
  if (ownParent) Object.defineProperty(window, "parent", ownParent);
  else delete (window as { parent?: unknown }).parent;
}
let editor: EditorHandle | null = null;

function posted(type: string): Record<string, unknown>[] {
  return parent.postMessage.mock.calls.map((c) => c[0] as Record<string, unknown>).filter((m) => m.type === type);
}

function fromDashboard(data: unknown, origin = DASHBOARD): void {
  window.dispatchEvent(new MessageEvent("message", { data, origin }));
}

function click(el: Element): boolean {
  return el.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
}

function boxes(): HTMLElement[] {
  return Array.from(document.querySelectorAll<HTMLElement>("segmently-editor-box"));
}

function visibleBoxes(): HTMLElement[] {
  return boxes().filter((b) => b.getAttribute("style")!.includes("display:block"));
}

function placeAt(el: Element, x: number, y: number, width: number, height: number): void {
  el.getBoundingClientRect = () =>
    ({ x, y, left: x, top: y, width, height, right: x + width, bottom: y + height, toJSON: () => ({}) }) as DOMRect;
}

beforeEach(() => {
  document.head.innerHTML = "";
  document.body.innerHTML = PAGE;
  parent = { postMessage: vi.fn() };
  Object.defineProperty(window, "parent", { value: parent, configurable: true });
});

afterEach(() => {
  editor?.destroy();
  editor = null;
  restoreParent();
});

describe("selectors", () => {
  it("match exactly the element they were made for, for every element of the page", () => {
    for (const el of Array.from(document.body.querySelectorAll("*"))) {
      const selector = selectorFor(el);
      expect(Array.from(document.querySelectorAll(selector)), selector).toEqual([el]);
    }
  });

  it("prefer a unique id, then tag and classes, anchored at the nearest element with a unique id", () => {
    expect(selectorFor(document.getElementById("top")!)).toBe("#top");
    expect(selectorFor(document.querySelector(".cta-button")!)).toBe("button.cta-button.btn");
    expect(selectorFor(document.querySelectorAll(".nav-link")[1]!)).toBe("a.nav-link:nth-of-type(2)");
    expect(selectorFor(document.querySelector(".featured")!)).toBe("div.card.featured");
    expect(selectorFor(document.querySelectorAll(".card")[2]!.firstElementChild!)).toBe("div.card:nth-of-type(3) > span");
    expect(selectorFor(document.querySelectorAll(".nav-link")[0]!.parentElement!)).toBe("#top > nav");
    expect(selectorFor(document.querySelectorAll(".card p")[1]!)).toBe("div.card:nth-of-type(1) > p:nth-of-type(2)");
    expect(selectorFor(document.body)).toBe("body");
  });

  it("leave out duplicated and generated ids and CSS-in-JS class names, and anchor bare tags at body", () => {
    expect(selectorFor(document.querySelectorAll("#dup i")[1]!)).toBe("body > div:nth-of-type(2) > i");
    expect(selectorFor(document.querySelector("em")!)).toBe("body > div:nth-of-type(3) > em");
    expect(selectorFor(document.querySelectorAll("li")[1]!)).toBe("body > ul > li:nth-of-type(2)");
    expect(selectorFor(document.querySelector("footer span")!)).toBe("body > footer > p > span");
  });
});

describe("visual editor", () => {
  it("tells the dashboard it is ready, at the dashboard's origin only", () => {
    editor = startEditor(host(), window);
    expect(editor!.selecting).toBe(true);
    expect(parent.postMessage).toHaveBeenCalledTimes(1);
    const [message, origin] = parent.postMessage.mock.calls[0]!;
    expect(message).toMatchObject({ type: "segmently:editor-ready", version: "test" });
    expect(origin).toBe(DASHBOARD);
  });

  it("outlines the element under the pointer with a box that takes no clicks", () => {
    editor = startEditor(host(), window);
    const button = document.querySelector(".cta-button")!;
    placeAt(button, 40, 300, 180, 44);
    button.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    const [box] = visibleBoxes();
    const style = box!.getAttribute("style")!;
    expect(style).toContain("left:40px");
    expect(style).toContain("top:300px");
    expect(style).toContain("width:180px");
    expect(style).toContain("height:44px");
    expect(style).toContain("pointer-events:none!important");
    expect(style).toContain("position:fixed!important");

    document.documentElement.dispatchEvent(new MouseEvent("mouseout", { bubbles: true, relatedTarget: null }));
    expect(visibleBoxes()).toHaveLength(0);
  });

  it("sends the clicked element's details to the dashboard and keeps the click from the page", () => {
    editor = startEditor(host(), window);
    const title = document.querySelector("h1")!;
    placeAt(title, 0, 100, 800, 60);
    const pageSaw = vi.fn();
    title.addEventListener("click", pageSaw);
    document.addEventListener("click", pageSaw);

    expect(click(title)).toBe(false); // default prevented: a link would not be followed
    expect(pageSaw).not.toHaveBeenCalled();
    const [selected] = posted("segmently:select");
    expect(selected).toEqual({
      type: "segmently:select",
      selector: "h1.title",
      tag: "h1",
      id: "",
      classes: ["title"],
      text: "Grow faster",
      label: "Grow faster",
      html: '<h1 class="title">  Grow   faster  </h1>',
      rect: { x: 0, y: 100, width: 800, height: 60 },
    });
    const call = parent.postMessage.mock.calls.find((c) => (c[0] as { type: string }).type === "segmently:select")!;
    expect(call[1]).toBe(DASHBOARD);
    expect(visibleBoxes()).toHaveLength(1); // the selection stays outlined
  });

  it("keeps a link's click and mousedown from the page", () => {
    editor = startEditor(host(), window);
    const link = document.querySelector<HTMLAnchorElement>(".nav-link")!;
    const pageSaw = vi.fn();
    link.addEventListener("mousedown", pageSaw);
    link.addEventListener("click", pageSaw);
    window.addEventListener("click", pageSaw, true); // a page's own capturing listener, added after ours
    expect(link.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, cancelable: true }))).toBe(false);
    expect(click(link)).toBe(false);
    expect(pageSaw).not.toHaveBeenCalled();
    expect(posted("segmently:select")).toHaveLength(1); // the mousedown selects nothing
    window.removeEventListener("click", pageSaw, true);
  });

  it("cuts long text at 200 characters and the HTML at 2,000", () => {
    editor = startEditor(host(), window);
    const big = document.createElement("article");
    big.textContent = `  ${"word ".repeat(1000)}`;
    document.body.appendChild(big);
    click(big);
    const [selected] = posted("segmently:select") as { text: string; html: string }[];
    expect(selected!.text).toHaveLength(200);
    expect(selected!.text.startsWith("word word")).toBe(true);
    expect(selected!.html).toHaveLength(2000);
    expect(selected!.html.startsWith("<article>")).toBe(true);
  });

  it("labels an element by its first direct text, else its first child's", () => {
    editor = startEditor(host(), window);
    click(document.querySelectorAll(".card")[2]!);
    click(document.querySelector("footer p")!);
    const [card, footer] = posted("segmently:select") as { label: string; text: string }[];
    expect(card!.label).toBe("Four bold");
    expect(footer!.label).toBe("©");
    expect(footer!.text).toBe("© Shop");
  });

  it("previews the dashboard's changes and undoes them before the next preview", () => {
    editor = startEditor(host(), window);
    const title = document.querySelector("h1")!;
    const button = document.querySelector<HTMLElement>(".cta-button")!;
    fromDashboard({
      type: "segmently:apply",
      changes: [
        { type: "text", selector: "h1.title", text: "Ship faster" },
        { type: "hide", selector: ".cta-button" },
        { type: "html", selector: ".card.featured", html: "<strong>Best</strong>" },
        { type: "css", css: ".hero-section{color:red}", selector: ".hero-section" },
        { type: "text", selector: ".nope", text: "x" },
        { type: "js", code: "window.__ran = true" },
        { type: "css", css: "color: rgb(1, 2, 3)", selector: "#top" },
        { type: "html", selector: "footer", html: "" },
      ],
    });
    expect(document.getElementById("top")!.style.getPropertyValue("color")).toBe("rgb(1, 2, 3)");
    expect(document.querySelector("footer")!.textContent).toBe("© Shop"); // empty HTML: not edited
    expect(title.textContent).toBe("Ship faster");
    expect(button.style.getPropertyValue("display")).toBe("none");
    expect(document.querySelector(".featured strong")!.textContent).toBe("Best");
    expect(document.head.querySelector("style")!.textContent).toContain(".hero-section{color:red}");
    expect((window as { __ran?: boolean }).__ran).toBeUndefined();
    expect(posted("segmently:applied")).toEqual([{ type: "segmently:applied", matched: [1, 1, 1, 1, 0, 0, 1, 0] }]);

    fromDashboard({ type: "segmently:apply", changes: [{ type: "text", selector: ".cta-button", text: "Buy" }] });
    expect(title.textContent).toBe("  Grow   faster  ");
    expect(button.style.getPropertyValue("display")).toBe("");
    expect(button.textContent).toBe("Buy");
    expect(document.querySelector(".featured")!.innerHTML).toBe("<p>Three</p>");
    expect(document.head.querySelector("style")).toBeNull();
    expect(document.getElementById("top")!.hasAttribute("style")).toBe(false);
  });

  it("applies a parent's change before its child's", () => {
    editor = startEditor(host(), window);
    fromDashboard({
      type: "segmently:apply",
      changes: [
        { type: "text", selector: ".featured p", text: "Child text" },
        { type: "html", selector: ".featured", html: "<p>New</p>" },
      ],
    });
    expect(document.querySelector(".featured")!.innerHTML).toBe("<p>Child text</p>");
  });

  it("ignores every message that does not come from the dashboard's origin", () => {
    editor = startEditor(host(), window);
    const title = document.querySelector("h1")!;
    for (const origin of ["https://evil.test", "https://ab.example.com", "http://ab.example.com:8443", "null"]) {
      fromDashboard({ type: "segmently:apply", changes: [{ type: "text", selector: "h1", text: "pwned" }] }, origin);
      fromDashboard({ type: "segmently:stop" }, origin);
      fromDashboard({ type: "segmently:highlight", selector: "h1" }, origin);
    }
    expect(title.textContent).toBe("  Grow   faster  ");
    expect(editor!.selecting).toBe(true);
    expect(parent.postMessage).toHaveBeenCalledTimes(1); // the ready message only
  });

  it("lets clicks through to the page after stop, and selects again after start", () => {
    editor = startEditor(host(), window);
    const button = document.querySelector(".cta-button")!;
    const pageSaw = vi.fn();
    button.addEventListener("click", pageSaw);
    button.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    click(button);

    fromDashboard({ type: "segmently:stop" });
    expect(editor!.selecting).toBe(false);
    expect(boxes().every((b) => !b.getAttribute("style")!.includes("background:rgba(37"))).toBe(true); // no hover box
    expect(click(button)).toBe(true);
    expect(pageSaw).toHaveBeenCalledTimes(1);
    expect(posted("segmently:select")).toHaveLength(1);

    fromDashboard({ type: "segmently:start" });
    expect(click(button)).toBe(false);
    expect(pageSaw).toHaveBeenCalledTimes(1);
    expect(posted("segmently:select")).toHaveLength(2);
  });

  it("outlines the element a selector names and tells how many elements match", () => {
    editor = startEditor(host(), window);
    placeAt(document.querySelector(".featured")!, 5, 6, 7, 8);
    fromDashboard({ type: "segmently:highlight", selector: ".card" });
    expect(visibleBoxes()).toHaveLength(1);
    expect(visibleBoxes()[0]!.getAttribute("style")).toContain("display:block");
    fromDashboard({ type: "segmently:highlight", selector: ".featured" });
    expect(visibleBoxes()[0]!.getAttribute("style")).toContain("left:5px");
    fromDashboard({ type: "segmently:highlight", selector: "div[" });
    expect(visibleBoxes()).toHaveLength(0);
    expect(posted("segmently:matches").map((m) => m.count)).toEqual([3, 1, 0]);
  });

  it("does nothing on a page that is not inside a frame", () => {
    restoreParent();
    expect(window.parent).toBe(window);
    editor = startEditor(host(), window);
    expect(editor).toBeNull();
    const button = document.querySelector(".cta-button")!;
    const pageSaw = vi.fn();
    button.addEventListener("click", pageSaw);
    expect(click(button)).toBe(true);
    expect(pageSaw).toHaveBeenCalledTimes(1);
    expect(boxes()).toHaveLength(0);
  });

  it("starts once, and leaves the page as it was when destroyed", () => {
    const one = host();
    editor = startEditor(one, window);
    expect(startEditor(one, window)).toBe(editor);
    expect(boxes()).toHaveLength(2);
    fromDashboard({ type: "segmently:apply", changes: [{ type: "hide", selector: "h1" }] });
    editor!.destroy();
    editor = null;
    expect(boxes()).toHaveLength(0);
    expect(document.querySelector<HTMLElement>("h1")!.style.getPropertyValue("display")).toBe("");
    const button = document.querySelector(".cta-button")!;
    expect(click(button)).toBe(true);
  });
});
