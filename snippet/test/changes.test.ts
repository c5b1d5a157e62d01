// @vitest-environment happy-dom
import { afterEach, describe, expect, test, vi } from "vitest";
import { type Applied, applyChanges } from "../src/core/changes";
import type { VariantConfig } from "../src/core/types";

declare global {
  interface Window {
    seen?: string[];
  }
}

const applied: Applied[] = [];
afterEach(() => {
  for (const a of applied.splice(0)) a();
  document.head.innerHTML = "";
  document.body.innerHTML = "";
  delete window.seen;
});

// a variant as the server serves it (segmently.domain.sdk.config.applied_variant, which
// tests/core/experiments/test_public_api.py holds to the spec's order and labels)
function apply(
  elements: VariantConfig["elements"],
  styles: string[] = [],
  scripts: [string, string][] = [],
  doc: Document = document,
) {
  const report = vi.fn();
  const a = applyChanges(doc, "exp1", { elements, styles, scripts }, report);
  applied.push(a);
  return { report, undo: () => a() };
}

const $ = (selector: string) => document.querySelector<HTMLElement>(selector);
// MutationObserver callbacks run as microtasks
const settle = () => new Promise((resolve) => setTimeout(resolve));

describe("element changes", () => {
  test("hide, remove, text, html and inline css change the matched elements", () => {
    document.body.innerHTML = `
      <div class="promo">Sale</div><div class="promo">Sale</div>
      <aside id="chat">chat</aside>
      <h1>Welcome</h1>
      <section id="hero"><p>old</p></section>
      <a class="cta" style="padding: 4px">Buy</a>`;
    apply([
      { type: "hide", selector: ".promo" },
      { type: "hide", selector: "#chat", mode: "remove" },
      { type: "text", selector: "h1", text: "<b>Hello</b>" },
      { type: "html", selector: "#hero", html: "<p><em>new</em></p>" },
      { type: "css", selector: ".cta", css: "color: red; font-weight: bold" },
    ]);
    for (const promo of document.querySelectorAll<HTMLElement>(".promo")) {
      expect(promo.style.getPropertyValue("display")).toBe("none");
      expect(promo.style.getPropertyPriority("display")).toBe("important");
    }
    expect($("#chat")).toBeNull();
    expect($("h1")!.textContent).toBe("<b>Hello</b>");
    expect($("h1")!.children).toHaveLength(0);
    expect($("#hero")!.innerHTML).toBe("<p><em>new</em></p>");
    const cta = $(".cta")!;
    expect([cta.style.padding, cta.style.color, cta.style.fontWeight]).toEqual(["4px", "red", "bold"]);
  });

  test("a parent's html change does not wipe its child's changes, whatever the list order", () => {
    document.body.innerHTML = `<section class="hero"><h1 class="title">Old</h1><div class="badge">old</div></section>`;
    apply([
      { type: "text", selector: ".title", text: "New title" },
      { type: "css", selector: ".title", css: "color: green" },
      { type: "html", selector: ".badge", html: "<b>-20%</b>" },
      { type: "html", selector: ".hero", html: `<h1 class="title">Rewritten</h1><p>More</p><div class="badge"></div>` },
    ]);
    expect($(".hero p")!.textContent).toBe("More");
    expect($(".title")!.textContent).toBe("New title");
    expect($(".title")!.style.color).toBe("green");
    expect($(".badge")!.innerHTML).toBe("<b>-20%</b>");
  });

  test("changes on one element keep their list order", () => {
    document.body.innerHTML = `<h1>Old</h1>`;
    apply([
      { type: "html", selector: "h1", html: "<i>first</i>" },
      { type: "text", selector: "h1", text: "second" },
    ]);
    expect($("h1")!.innerHTML).toBe("second");
  });

  test("an html change whose HTML matches its own selector is applied once, not nested forever", async () => {
    document.body.innerHTML = `<div class="box">old</div>`;
    apply([{ type: "html", selector: ".box", html: `<div class="box">inner</div>` }]);
    await settle();
    document.body.append(document.createElement("span"));
    await settle();
    expect(document.body.innerHTML).toBe(`<div class="box"><div class="box">inner</div></div><span></span>`);
  });

  test("two html changes whose HTML holds each other's element stop after one round", async () => {
    document.body.innerHTML = `<div class="a"></div>`;
    apply([
      { type: "html", selector: ".a", html: `<div class="b"></div>` },
      { type: "html", selector: ".b", html: `<div class="a"></div>` },
    ]);
    await settle();
    expect(document.body.innerHTML).toBe(`<div class="a"><div class="b"><div class="a"></div></div></div>`);
  });

  test("an invalid selector is reported once and the other changes still apply", async () => {
    document.body.innerHTML = `<h1>Old</h1>`;
    const { report } = apply([
      { type: "hide", selector: "div[[" },
      { type: "text", selector: "h1", text: "New" },
    ]);
    document.body.append(document.createElement("p"));
    await settle();
    expect($("h1")!.textContent).toBe("New");
    expect(report).toHaveBeenCalledTimes(1);
    expect(report.mock.calls[0]![0]).toBe('exp1: invalid selector "div[["');
  });
});

describe("elements that appear later", () => {
  test("get the change when they are added, e.g. by an SPA after the snippet ran", async () => {
    const { report } = apply([
      { type: "text", selector: ".cta", text: "Start free trial" },
      { type: "hide", selector: ".banner" },
    ]);
    document.body.innerHTML = `<main><a class="cta">Buy</a><div class="banner">ad</div></main>`;
    await settle();
    expect($(".cta")!.textContent).toBe("Start free trial");
    expect($(".banner")!.style.display).toBe("none");
    expect(report).not.toHaveBeenCalled();
  });

  test("apply at most once per element: the page's own later update wins, a re-rendered element gets the change again", async () => {
    document.body.innerHTML = `<div id="app"><a class="cta">Buy</a></div>`;
    apply([{ type: "text", selector: ".cta", text: "Start free trial" }]);
    $(".cta")!.textContent = "Added to cart";
    await settle();
    expect($(".cta")!.textContent).toBe("Added to cart");

    $("#app")!.innerHTML = `<a class="cta">Buy</a>`;
    await settle();
    expect($(".cta")!.textContent).toBe("Start free trial");
  });

  test("a child added later inside a parent's new HTML still gets its change", async () => {
    document.body.innerHTML = `<section class="hero"></section>`;
    apply([
      { type: "html", selector: ".hero", html: `<div class="slot"></div>` },
      { type: "text", selector: ".title", text: "New title" },
    ]);
    $(".slot")!.innerHTML = `<h1 class="title">Old</h1>`;
    await settle();
    expect($(".title")!.textContent).toBe("New title");
    expect($(".hero")!.children).toHaveLength(1);
  });

  test("two text changes on one element while the document loads settle on one text instead of rewriting it forever", async () => {
    // two experiments on the hero heading: each change's observer used to undo the other's, an
    // endless loop of mutations that kept the parser (and DOMContentLoaded) from ever going on
    Object.defineProperty(document, "readyState", { value: "loading", configurable: true });
    try {
      document.body.innerHTML = `<h1 class="title">Old</h1>`;
      const h1 = $("h1")!;
      let proto: object | null = h1;
      let own: PropertyDescriptor | undefined;
      while (proto && !(own = Object.getOwnPropertyDescriptor(proto, "textContent"))) proto = Object.getPrototypeOf(proto);
      let writes = 0; // stops writing after 100, so a loop ends and the test can tell
      Object.defineProperty(h1, "textContent", {
        configurable: true,
        get() {
          return own!.get!.call(this);
        },
        set(value: string) {
          if (++writes < 100) own!.set!.call(this, value);
        },
      });
      const report = vi.fn();
      applied.push(applyChanges(document, "exp1", { elements: [{ type: "text", selector: "h1", text: "A" }], styles: [], scripts: [] }, report));
      applied.push(applyChanges(document, "exp2", { elements: [{ type: "text", selector: ".title", text: "B" }], styles: [], scripts: [] }, report));
      await settle();
      await settle();
      expect(writes).toBeLessThan(5);
      expect(h1.textContent).toBe("B"); // the later experiment's change, as after the parse
      // the parser appending the original text after a change still gets it set again
      h1.appendChild(document.createTextNode("Old"));
      await settle();
      expect(h1.textContent).toBe("B");
    } finally {
      delete (document as { readyState?: string }).readyState;
    }
  });

  test("a text change set while the document loads wins over the original text the parser appends as it ends", async () => {
    Object.defineProperty(document, "readyState", { value: "loading", configurable: true });
    try {
      document.body.innerHTML = `<h1>Old</h1>`;
      apply([{ type: "text", selector: "h1", text: "New" }]);
      expect($("h1")!.textContent).toBe("New");
      $("h1")!.appendChild(document.createTextNode("Old")); // the parser's last text node...
      Object.defineProperty(document, "readyState", { value: "interactive", configurable: true }); // ...as the parse ends
      document.dispatchEvent(new Event("DOMContentLoaded"));
      await settle();
      expect($("h1")!.textContent).toBe("New");
    } finally {
      delete (document as { readyState?: string }).readyState;
    }
  });

  test("stop after undo, and the changes already made stay", async () => {
    document.body.innerHTML = `<a class="cta">Buy</a>`;
    const { undo } = apply([{ type: "text", selector: ".cta", text: "Start free trial" }]);
    undo();
    document.body.insertAdjacentHTML("beforeend", `<a class="cta">Buy</a>`);
    await settle();
    expect([...document.querySelectorAll(".cta")].map((a) => a.textContent)).toEqual(["Start free trial", "Buy"]);
  });
});

describe("style sheets", () => {
  test("go in in their order, before the element changes; undo removes them", () => {
    const { undo } = apply([], ["h1 { color: green }", "body { margin: 0 }", ".cta { color: red }"]);
    const sheets = () => [...document.head.querySelectorAll("style")].map((s) => [s.id, s.textContent]);
    expect(sheets()).toEqual([
      ["segmently-exp1-0", "h1 { color: green }"],
      ["segmently-exp1-1", "body { margin: 0 }"],
      ["segmently-exp1-2", ".cta { color: red }"],
    ]);
    document.body.innerHTML = `<a class="cta">Buy</a>`;
    expect(getComputedStyle($(".cta")!).color).toBe("red");
    undo();
    undo();
    expect(sheets()).toEqual([]);
  });

  test("one variant's undo leaves another variant's style sheets alone", () => {
    const report = vi.fn();
    applied.push(applyChanges(document, "a", { elements: [], styles: ["h1 { color: red }"], scripts: [] }, report));
    const b = applyChanges(document, "b", { elements: [], styles: ["h2 { color: blue }"], scripts: [] }, report);
    b();
    expect([...document.head.querySelectorAll("style")].map((s) => s.id)).toEqual(["segmently-a-0"]);
  });
});

describe("JavaScript", () => {
  test("runs after the element changes and the style sheets, each script once, in order", async () => {
    document.body.innerHTML = `<h1>Old</h1>`;
    apply(
      [{ type: "text", selector: "h1", text: "New" }],
      [".x { color: red }"],
      [
        ["JS change 1", `(window.seen ||= []).push("change:" + document.querySelector("h1").textContent)`],
        ["custom JS 1", `window.seen.push("custom:" + document.querySelectorAll("style").length)`],
        ["custom JS 2", `window.seen.push("variant")`],
      ],
    );
    document.body.append(document.createElement("p"));
    await settle();
    expect(window.seen).toEqual(["change:New", "custom:1", "variant"]);
  });

  test("a throwing script is reported with its label and error, and the rest still runs", async () => {
    document.body.innerHTML = `<h1>Old</h1>`;
    const { report } = apply(
      [{ type: "text", selector: "h1", text: "New" }],
      [],
      [
        ["JS change 1", `document.querySelector(".missing").remove()`],
        ["custom JS 1", `throw new Error("boom")`],
        ["custom JS 2", `(window.seen ||= []).push("ran")`],
      ],
    );
    await settle();
    expect(report.mock.calls.map(([message]) => message)).toEqual([
      "exp1: JS change 1 threw",
      "exp1: custom JS 1 threw",
    ]);
    expect(report.mock.calls[0]![1]).toBeInstanceOf(TypeError);
    expect((report.mock.calls[1]![1] as Error).message).toBe("boom");
    expect(window.seen).toEqual(["ran"]);
    expect($("h1")!.textContent).toBe("New");
  });

  test("waits for DOMContentLoaded while the document is loading, and not at all after undo", () => {
    const loading = (doc: Document) => Object.defineProperty(doc, "readyState", { value: "loading", configurable: true });
    loading(document);
    try {
      apply([], ["h1 { color: red }"], [
        ["JS change 1", `(window.seen ||= []).push("change")`],
        ["custom JS 1", `window.seen.push("custom")`],
      ]);
      const { undo } = apply([], [], [["custom JS 1", `(window.seen ||= []).push("undone")`]]);
      expect(document.head.querySelectorAll("style")).toHaveLength(1);
      expect(window.seen).toBeUndefined();
      undo();
      document.dispatchEvent(new Event("DOMContentLoaded"));
      expect(window.seen).toEqual(["change", "custom"]);
    } finally {
      delete (document as { readyState?: string }).readyState;
    }
  });
});
