/**
 * Experiment goals the snippet detects itself (the spec's "Goals Tab"), each sent as a `conversion`
 * event naming the goal (`goal_id`, `goal_name`) and attributed to the visitor's variant:
 *
 * - `click`: a click on an element matching the goal's selector or inside one (`closest`);
 * - `form_submit`: a submitted form matching the selector (or inside a matching element);
 * - `page_view`: a page whose path is the goal's URL path (`/thank-you`; a full URL counts by its
 *   path) — compared like a site rule's `page_url`: query, fragment, a trailing slash and
 *   percent-encoding ignored, case counts.
 *
 * Each goal fires at most once per page view per experiment. `custom_event` goals need nothing
 * here: the server credits them from the custom event of that name (`Segmently.track`). Funnels are
 * the server's too: it advances them from `page_view` events' URLs and named events.
 */

import { pagePath } from "./rules";
import type { Emit, GoalTarget } from "../../core/host";
import type { Goal } from "../../core/types";

export type { Emit, GoalTarget } from "../../core/host";

export interface GoalWatcher {
  /** The visitor's current assignments (call again when one is added, e.g. by a trigger). */
  setTargets(targets: readonly GoalTarget[]): void;
  /** A new page view (load or SPA navigation): page_view goals are checked, the once-per-page reset. */
  pageView(url: string): void;
  /** Handles a click or submit the core saw before this chunk loaded. */
  replay(event: Event): void;
  stop(): void;
}

export function watchGoals(doc: Document, emit: Emit): GoalWatcher {
  let targets: readonly GoalTarget[] = [];
  let path: string | null = null;
  let fired = new Set<string>();

  const convert = (target: GoalTarget, goal: Goal): void => {
    const key = `${target.experimentId} ${goal.id}`;
    if (fired.has(key)) return;
    fired.add(key);
    emit("conversion", { goal_id: goal.id, goal_name: goal.name }, target.experimentId, target.variantId);
  };
  const each = (type: Goal["type"], matches: (goal: Goal) => unknown): void => {
    for (const target of targets) {
      for (const goal of target.goals) {
        try {
          if (goal.type === type && matches(goal)) convert(target, goal);
        } catch {
          // an invalid selector (or an event dispatched on the document itself) never matches
        }
      }
    }
  };
  const onPage = (): void =>
    each("page_view", (goal) => path !== null && goal.url && pagePath(goal.url) === path);
  const listener = (type: "click" | "form_submit") => (event: Event) =>
    each(type, (goal) => goal.selector && (event.target as Element).closest(goal.selector));
  const onClick = listener("click");
  const onSubmit = listener("form_submit");

  // capture: a page handler that stops the event does not hide it from the goals
  doc.addEventListener("click", onClick, true);
  doc.addEventListener("submit", onSubmit, true);
  return {
    setTargets(next) {
      targets = next;
      onPage(); // a visitor assigned mid-page (trigger) on the goal's page converts too
    },
    pageView(url) {
      path = pagePath(url);
      fired = new Set();
      onPage();
    },
    replay: (event) => (event.type === "submit" ? onSubmit : onClick)(event),
    stop() {
      doc.removeEventListener("click", onClick, true);
      doc.removeEventListener("submit", onSubmit, true);
    },
  };
}
