// @vitest-environment happy-dom
// Goals the snippet detects: clicks, form submits and page views become conversion events naming
// the goal, attributed to the variant, at most once per page view per experiment.
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from "vitest";
import { type Emit, type GoalTarget, type GoalWatcher, watchGoals } from "../src/modules/track/goals";
import type { Goal } from "../src/core/types";

const BUY: Goal = { id: "g-buy", type: "click", name: "Buy click", primary: true, selector: "#buy" };
const SIGNUP: Goal = { id: "g-form", type: "form_submit", name: "Signup", selector: "form.signup" };
const THANKS: Goal = { id: "g-thanks", type: "page_view", name: "Thank you", url: "/thank-you" };
const CUSTOM: Goal = { id: "g-custom", type: "custom_event", name: "Purchase", event_name: "purchase" };

function target(experimentId: string, variantId: string, goals: Goal[]): GoalTarget {
  return { experimentId, variantId, goals };
}

function click(el: Element): void {
  el.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}

function submit(form: Element): void {
  form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
}

describe("watchGoals", () => {
  let emit: Mock<Emit>;
  let goals: GoalWatcher;

  beforeEach(() => {
    emit = vi.fn<Emit>();
    document.body.innerHTML = `
      <button id="buy"><img class="icon" alt="">Buy</button>
      <a id="other" href="#">other</a>
      <form class="signup"><input name="email"><button type="submit">Go</button></form>
      <form class="search"><input name="q"></form>`;
    goals = watchGoals(document, emit);
    goals.pageView("https://shop.example.com/product");
  });
  afterEach(() => goals.stop());

  it("sends a conversion naming the click goal, attributed to the variant, on a click inside the element", () => {
    goals.setTargets([target("exp-1", "var-b", [BUY])]);
    click(document.getElementById("other")!);
    expect(emit).not.toHaveBeenCalled();
    click(document.querySelector(".icon")!);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { goal_id: "g-buy", goal_name: "Buy click" }, "exp-1", "var-b");
  });

  it("counts a goal once per page view per experiment, again after the next page view", () => {
    goals.setTargets([target("exp-1", "var-b", [BUY]), target("exp-2", "ctl", [{ ...BUY, id: "g2" }])]);
    click(document.getElementById("buy")!);
    click(document.getElementById("buy")!);
    expect(emit.mock.calls.map((c) => c[2])).toEqual(["exp-1", "exp-2"]);
    goals.pageView("https://shop.example.com/product?page=2");
    click(document.getElementById("buy")!);
    expect(emit).toHaveBeenCalledTimes(4);
  });

  it("sends a conversion when a matching form is submitted, not another form", () => {
    goals.setTargets([target("exp-1", "var-b", [SIGNUP])]);
    submit(document.querySelector("form.search")!);
    expect(emit).not.toHaveBeenCalled();
    submit(document.querySelector("form.signup")!);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { goal_id: "g-form", goal_name: "Signup" }, "exp-1", "var-b");
  });

  it("sends a page_view goal's conversion when the visitor lands on its path", () => {
    goals.setTargets([target("exp-1", "var-b", [THANKS])]);
    expect(emit).not.toHaveBeenCalled();
    goals.pageView("https://shop.example.com/thank-you-not");
    expect(emit).not.toHaveBeenCalled();
    goals.pageView("https://shop.example.com/thank-you/?order=42");
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { goal_id: "g-thanks", goal_name: "Thank you" }, "exp-1", "var-b");
  });

  it("converts a visitor assigned after the page view (a trigger) on the goal's page", () => {
    goals.pageView("https://shop.example.com/thank-you");
    goals.setTargets([target("exp-1", "var-b", [THANKS])]);
    goals.setTargets([target("exp-1", "var-b", [THANKS]), target("exp-2", "x", [])]);
    expect(emit).toHaveBeenCalledOnce();
  });

  it("leaves custom_event goals to the server: nothing is sent for them", () => {
    goals.setTargets([target("exp-1", "var-b", [CUSTOM])]);
    click(document.getElementById("buy")!);
    goals.pageView("https://shop.example.com/purchase");
    expect(emit).not.toHaveBeenCalled();
  });

  it("sees clicks the page stops from bubbling, and ignores invalid selectors", () => {
    document.getElementById("buy")!.addEventListener("click", (e) => e.stopPropagation());
    goals.setTargets([target("exp-1", "var-b", [{ ...BUY, id: "bad", selector: "#buy[" }, BUY])]);
    click(document.getElementById("buy")!);
    expect(emit).toHaveBeenCalledExactlyOnceWith("conversion", { goal_id: "g-buy", goal_name: "Buy click" }, "exp-1", "var-b");
  });

  it("sends nothing for an experiment no longer in the targets, nor after stop()", () => {
    goals.setTargets([target("exp-1", "var-b", [BUY])]);
    goals.setTargets([]);
    click(document.getElementById("buy")!);
    goals.setTargets([target("exp-1", "var-b", [BUY])]);
    goals.stop();
    click(document.getElementById("buy")!);
    expect(emit).not.toHaveBeenCalled();
  });
});
