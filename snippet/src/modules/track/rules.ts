/**
 * Site conversion rules (Site Configuration → Conversion Rules, docs/flags_and_settings.md): a named
 * `conversion`, `login` or `registration` event fired by one condition or by several in order.
 *
 * A step "holds" when:
 * - `page_url`: the page's path is the step's path (query, fragment, a trailing slash and
 *   percent-encoding ignored; case counts), exactly as the server's `would_fire`;
 * - `url_param`: the query string has the parameter, with any value or none (`would_fire` again);
 * - `local_storage` / `cookie`: the key or cookie exists; with `parse_json` and a `property_path`
 *   (`cart.items.length`), the value there is truthy (not missing, null, false, 0 or ""), so an empty
 *   cart or `{"done": false}` does not count. A value that is not JSON holds only without a path.
 *
 * When a rule fires: when its last step holds with a value it did not fire with before (the path,
 * the parameter's value, the stored text or the property's value), after the earlier steps held in
 * order (several may hold on one page; a step is only looked at once the one before it held). A
 * condition that stays true fires once: reloading the thank-you page, or a cookie that stays set,
 * fires nothing more; it fires again after it stopped holding (the visitor left the page, the
 * cookie was removed) or when its value changed (a new order id).
 *
 * Where that is kept: the progress through the steps, and the last value of a rule ending on a
 * storage or cookie step, in localStorage (`seg_rules`), shared by the site's tabs and page loads
 * (a cookie or key is the same for every tab, so any tab may see it hold or stop holding). The last
 * value of a rule ending on a URL step (`page_url`, `url_param`) holds for one tab only, so it is
 * kept in that tab's sessionStorage (`seg_rules`; it survives the tab's reloads and page loads, in
 * memory without it): another tab on another page must not make the thank-you tab fire again. A
 * completed sequence that fires nothing (its value unchanged) leaves the stored progress as it was,
 * so one tab re-checking its thank-you page does not undo steps another tab has since taken. Without
 * localStorage, all of it is kept for the page.
 *
 * Checked on every page view (`check(url)`) and, for rules reading storage or cookies, every second
 * (an app may write them at any time, or another tab may); a rule of URL steps only changes with
 * the page's URL, so it is not polled.
 */

import type { Emit } from "../../core/host";
import { documentCookieJar, readCookie } from "../../core/identity";
import { type KeyValueStorage, isRecord, readJson, writeJson } from "../../core/storage";
import type { ConversionRule, ConversionStep } from "../../core/types";

export type { Emit } from "../../core/host";

const STATE_KEY = "seg_rules";
const POLL_MS = 1000;

// Python's str.strip() whitespace (str.isspace), which is not String.prototype.trim()'s
const PY_SPACE = "[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+";
const PY_STRIP = new RegExp(`^${PY_SPACE}|${PY_SPACE}$`, "g");

/** Percent-escapes decoded like Python's `unquote` (a broken escape stays as written). */
function unquote(s: string): string {
  return s.replace(/(%[0-9A-Fa-f]{2})+/g, (m) => {
    try {
      return decodeURIComponent(m);
    } catch {
      return m;
    }
  });
}

/** Path and query of `url` as Python's `urlsplit` reads them; null when it would raise. */
function splitUrl(url: string): [path: string, query: string] | null {
  // url.strip(), then what urlsplit drops: leading C0 controls and spaces, every tab and newline
  let rest = url.replace(PY_STRIP, "").replace(/^[\x00-\x20]+/, "").replace(/[\t\r\n]/g, "");
  rest = rest.split("#")[0]!;
  const q = rest.indexOf("?");
  const query = q < 0 ? "" : rest.slice(q + 1);
  if (q >= 0) rest = rest.slice(0, q);
  rest = rest.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, "");
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    const netloc = slash < 0 ? rest : rest.slice(0, slash);
    if (netloc.includes("[") !== netloc.includes("]")) return null;
    rest = slash < 0 ? "" : rest.slice(slash);
  }
  return [rest, query];
}

/** A path compared as the visitor sees it: decoded, without a trailing slash (`/` for none). */
function normalPath(path: string): string {
  return unquote(path).replace(/\/+$/, "") || "/";
}

/** The normalized path of a URL or path (what `page_url` steps compare), null when unparsable. */
export function pagePath(url: string): string | null {
  const parts = splitUrl(url);
  return parts && normalPath(parts[0]);
}

/** The step's value on this URL, null when it does not hold: the path, or the parameter's value. */
function urlSignal(step: ConversionStep, url: string): string | null {
  const parts = splitUrl(url);
  if (!parts) return null;
  if (step.method === "page_url") {
    const path = normalPath(parts[0]);
    return path === normalPath(step.value) ? path : null;
  }
  for (const field of parts[1].split("&")) {
    const eq = field.indexOf("=");
    if (field && unquote((eq < 0 ? field : field.slice(0, eq)).replace(/\+/g, " ")) === step.value) {
      return eq < 0 ? "" : field.slice(eq + 1);
    }
  }
  return null;
}

/** Whether a `page_url` or `url_param` step fires on `url` (the server's `would_fire`). */
export function wouldFire(step: ConversionStep, url: string): boolean {
  return urlSignal(step, url) !== null;
}

/** `value` at the dot path `path` (`cart.items.length`), undefined when any part is missing. */
function at(value: unknown, path: string): unknown {
  for (const key of path.split(".")) {
    if (value == null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

type RuleState = [next: number, last: string | null];

const isUrlStep = (step: ConversionStep | undefined): boolean =>
  !!step && (step.method === "page_url" || step.method === "url_param");

/**
 * Watches `rules`; `tab` is this tab's own storage (sessionStorage) for the rules ending on a URL
 * step (null: kept in memory, for the page).
 */
export function watchRules(
  doc: Document,
  storage: KeyValueStorage | null,
  rules: readonly ConversionRule[],
  emit: Emit,
  tab: KeyValueStorage | null = null,
): { check(url: string): void; stop(): void } {
  const jar = documentCookieJar(doc);
  // the states when their storage is unusable
  let memory: Record<string, unknown> = {};
  let tabMemory: Record<string, unknown> = {};
  let lastUrl: string | null = null;

  const signal = (step: ConversionStep, url: string): string | null => {
    if (isUrlStep(step)) return urlSignal(step, url);
    let raw: string | null;
    try {
      raw = step.method === "cookie" ? readCookie(jar, step.value) : storage && storage.getItem(step.value);
    } catch {
      return null;
    }
    if (raw === null || !step.parse_json || !step.property_path) return raw;
    try {
      const found = at(JSON.parse(raw), step.property_path);
      return found ? JSON.stringify(found) : null;
    } catch {
      return null;
    }
  };

  const check = (url: string, list: readonly ConversionRule[] = rules): void => {
    lastUrl = url;
    const stored = readJson(storage, STATE_KEY);
    const state = isRecord(stored) ? stored : memory;
    const storedTab = readJson(tab, STATE_KEY);
    const mine = isRecord(storedTab) ? storedTab : tabMemory;
    const before = JSON.stringify(state);
    const mineBefore = JSON.stringify(mine);
    for (const rule of list) {
      const steps = rule.steps;
      const perTab = isUrlStep(steps[steps.length - 1]);
      const saved = state[rule.id];
      let [next, last] = (Array.isArray(saved) ? saved : [0, null]) as RuleState;
      if (perTab) last = typeof mine[rule.id] === "string" ? (mine[rule.id] as string) : null;
      if (!(next >= 0 && next < steps.length)) next = 0; // the rule changed since
      const from = next;
      let value: string | null = null;
      while (next < steps.length && (value = signal(steps[next]!, url)) !== null) next++;
      if (next >= steps.length) {
        if (value !== last) {
          emit(rule.event_type, { rule_id: rule.id, rule_name: rule.name });
          next = 0;
        } else next = from; // still the condition it fired for: the progress is left as it was
        last = value;
      } else if (signal(steps[steps.length - 1]!, url) === null) {
        last = null; // the condition stopped holding: the next time it holds is a new one
      }
      state[rule.id] = [next, perTab ? null : last];
      if (!perTab) continue;
      if (last === null) delete mine[rule.id];
      else mine[rule.id] = last;
    }
    memory = state;
    tabMemory = mine;
    if (JSON.stringify(state) !== before) writeJson(storage, STATE_KEY, state);
    if (JSON.stringify(mine) !== mineBefore) writeJson(tab, STATE_KEY, mine);
  };

  // a rule of URL steps only changes with the URL: polling it would only re-read what check() saw
  const polled = rules.filter((r) => r.steps.some((s) => !isUrlStep(s)));
  const timer = polled.length ? setInterval(() => lastUrl !== null && check(lastUrl, polled), POLL_MS) : undefined;
  return { check, stop: () => clearInterval(timer) };
}
