/**
 * The event queue: what the snippet records reaches `POST /api/v1/events/batch` once, even across
 * network failures, server errors and page reloads (docs/events.md is the server's side).
 *
 * - Every event comes with its `event_id` (UUIDv7) and `timestamp`, given when it was recorded
 *   (src/core/outbox.ts), so a retry or a re-send after a reload carries the same id and the server
 *   stores it once.
 * - Batches of at most 100 events and under 1 MB; a flush timer gathers events first.
 * - Unsent events (in flight included, until the server answered 2xx) are kept in storage, bounded,
 *   and sent by the next page load.
 * - Network errors, 408, 429 and 5xx are retried with exponential back-off and jitter (`Retry-After`
 *   when the server gives one), which decides when the next request goes; any other answer (400,
 *   413, 401, 403, …) is final: those events are dropped, one console error says how many, and after
 *   401/403 the queue stops sending. The batch endpoint refuses a whole batch (400) for one invalid
 *   event, and a proxy whose body limit is below the server's 1 MB refuses a big one (413), so a
 *   batch of several events refused with 400 or 413 is sent again in halves, at once, down to the
 *   refused events alone: only those are dropped, the others are sent once (same ids).
 * - On `pagehide`, `flushOnPageHide()` hands what is left to `sendBeacon` (key in the query,
 *   `text/plain` JSON body); events the browser would not take stay stored for the next load.
 * - `segmently_opt_out`: nothing is queued, sent or kept.
 *
 * The queue is the `track` chunk's; events recorded before it loaded were held by the core's outbox
 * (src/core/outbox.ts), stamped and stored, and the queue starts with them (`held`).
 *
 * Not handled here: two tabs of one site share the stored events; each tab merges its own into the
 * stored list (neither overwrites the other's), but a page load may re-send events another open tab
 * is also sending. The server's event-id de-duplication makes that harmless, so no cross-tab lock.
 */

import { BATCH_PATH, EVENTS_KEY } from "./outbox";
import { type KeyValueStorage, isRecord, readJson, removeKey, writeJson } from "./storage";

/** An event as the snippet records it (docs/events.md, without `event_id` and `timestamp`). */
export interface TrackedEvent {
  event_name: string;
  visitor_id: string;
  session_id?: string;
  experiment_id?: string;
  variant_id?: string;
  event_data?: Record<string, unknown>;
  url?: string;
  device_type?: string;
}

/** An event as sent: with the id and time it got when queued. */
export interface QueuedEvent extends TrackedEvent {
  event_id: string;
  timestamp: string;
}

/** The server's answer; `retryAfter` in seconds (the `Retry-After` header), when it sent one. */
export interface SendResult {
  status: number;
  retryAfter?: number | null;
}

/** `fetch` as the queue uses it; rejects on a network error. */
export type Send = (url: string, body: string, headers: Record<string, string>) => Promise<SendResult>;
/** `navigator.sendBeacon(url, body)` with `body` sent as `text/plain`; false when the browser refused it. */
export type Beacon = (url: string, body: string) => boolean;

export interface EventQueueOptions {
  /** Where the API lives, e.g. `https://ab.example.com` (no trailing slash needed). */
  baseUrl: string;
  apiKey: string;
  send: Send;
  beacon?: Beacon | null;
  storage?: KeyValueStorage | null;
  isOptedOut?: () => boolean;
  now?: () => number;
  /** in [0, 1), for the back-off jitter */
  random?: () => number;
  /** events stamped before the queue existed (the core's outbox): sent with the stored ones */
  held?: QueuedEvent[];
  logger?: { error(message: string): void; warn(message: string): void };
  /** wait this long after the first queued event, gathering others (default 1 s) */
  flushDelayMs?: number;
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  /** one beacon's body (browsers allow 64 KiB in flight per page) */
  maxBeaconBytes?: number;
  maxStoredEvents?: number;
  maxStoredBytes?: number;
  retryMaxMs?: number;
}

const BODY_OVERHEAD = '{"events":[]}'.length;
const DAY_MS = 86_400_000;

/** UTF-8 length of `s` without allocating (the server's 1 MB limit is in bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function isQueuedEvent(e: unknown): e is QueuedEvent {
  return (
    isRecord(e) &&
    typeof e.event_id === "string" &&
    e.event_id.length > 0 &&
    e.event_id.length <= 64 &&
    typeof e.event_name === "string" &&
    typeof e.visitor_id === "string" &&
    typeof e.timestamp === "string"
  );
}

function retryable(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** The events queue of one page (one instance per page load). */
export interface EventQueue {
  /**
   * Queues an event stamped when it was recorded (the core's outbox gives it its `event_id` and
   * `timestamp`); its `event_id`, or null when nothing is recorded (opt-out, stopped, too big).
   */
  enqueue(event: QueuedEvent): string | null;
  /** Hands every unsent event to `beacon` (call on `pagehide`); what it refuses stays stored. */
  flushOnPageHide(): void;
  /** Events waiting (in flight included), sent and dropped so far on this page. */
  stats(): { pending: number; sent: number; dropped: number };
}

// A closure rather than a class: the minifier renames its locals, not class members (bundle size).
export function createEventQueue(options: EventQueueOptions): EventQueue {
  const {
    apiKey,
    send,
    beacon = null,
    storage = null,
    isOptedOut = () => false,
    now = Date.now,
    random = Math.random,
    logger = console,
    flushDelayMs = 1_000,
    maxBatchEvents = 100,
    maxBatchBytes = 1_000_000 - 1_024,
    maxBeaconBytes = 60_000,
    maxStoredEvents = 1_000,
    maxStoredBytes = 500_000,
    retryMaxMs = 300_000,
  } = options;
  const url = options.baseUrl.replace(/\/+$/, "") + BATCH_PATH;
  const key = EVENTS_KEY + apiKey;
  let pending: QueuedEvent[] = [];
  const sizes = new Map<string, number>();
  const inFlight = new Set<string>();
  /**
   * Events of a batch refused with 400, by id: the most a batch of them may hold now (half of it).
   * They are the unsent list's first events (one batch is out at a time, new ones go last).
   */
  const caps = new Map<string, number>();
  /** ids this page sent or dropped that storage may still hold (so a merge does not bring them back) */
  let done = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = 0;
  let retryAt = 0;
  let attempt = 0;
  let sending = false;
  let stopped = false;
  let sent = 0;
  let dropped = 0;
  let refusalReported = false;
  let overflowReported = false;

  /** older than the server takes (30 days, a day's margin for clocks) */
  const tooOld = (e: QueuedEvent): boolean => Date.parse(e.timestamp) < now() - 29 * DAY_MS;
  const unsent = (): QueuedEvent[] => pending.filter((e) => !inFlight.has(e.event_id));

  function size(e: QueuedEvent): number {
    let n = sizes.get(e.event_id);
    if (n === undefined) {
      n = utf8Length(JSON.stringify(e));
      sizes.set(e.event_id, n);
    }
    return n;
  }

  /** The longest prefix of `events` within the event count and `maxBytes` (JSON body size). */
  function takeBatch(events: QueuedEvent[], maxBytes: number): QueuedEvent[] {
    let bytes = BODY_OVERHEAD;
    let n = 0;
    for (const e of events) {
      const add = size(e) + (n > 0 ? 1 : 0);
      if (n >= maxBatchEvents || bytes + add > maxBytes) break;
      bytes += add;
      n++;
    }
    return events.slice(0, n);
  }

  /** Takes `events` out of the queue, as sent or as dropped. */
  function finish(events: QueuedEvent[], wasSent: boolean): void {
    const ids = new Set(events.map((e) => e.event_id));
    const before = pending.length;
    pending = pending.filter((e) => !ids.has(e.event_id));
    if (wasSent) sent += before - pending.length;
    else dropped += before - pending.length;
    for (const id of ids) {
      done.add(id);
      sizes.delete(id);
      caps.delete(id);
    }
  }

  /** One console error per page for refused events (later refusals are only counted). */
  function reportRefusal(count: number, why: string): void {
    if (refusalReported) return;
    refusalReported = true;
    logger.error(`Segmently: ${count} event(s) ${why}; dropped, not retried`);
  }

  function warnOverflow(): void {
    if (overflowReported) return;
    overflowReported = true;
    logger.warn("Segmently: too many unsent events; the oldest are dropped");
  }

  function readStored(): QueuedEvent[] {
    const value = readJson(storage, key);
    return Array.isArray(value) ? value.filter(isQueuedEvent) : [];
  }

  /** Writes this page's unsent events into storage, keeping other tabs' events it has not handled. */
  function persist(): void {
    if (storage === null) return;
    const stored = readStored();
    const mine = new Set(pending.map((e) => e.event_id));
    const storedIds = new Set(stored.map((e) => e.event_id));
    // another tab's events too old for the server go (no page would ever send them)
    const others = stored.filter((e) => !mine.has(e.event_id) && !done.has(e.event_id) && !tooOld(e));
    done = new Set([...done].filter((id) => storedIds.has(id)));
    let list = others.concat(pending);
    // bounded: the oldest go first (other tabs' before this page's); this page still sends them
    const listSizes = list.map((e) => (mine.has(e.event_id) ? size(e) : utf8Length(JSON.stringify(e))));
    let bytes = listSizes.reduce((n, b) => n + b + 1, 2);
    let cut = 0;
    while (list.length - cut > maxStoredEvents || (bytes > maxStoredBytes && cut < list.length)) {
      bytes -= listSizes[cut]! + 1;
      cut++;
    }
    if (cut > 0) {
      list = list.slice(cut);
      warnOverflow();
    }
    if (list.length === 0) removeKey(storage, key);
    else writeJson(storage, key, list);
  }

  /** Opt-out: forget everything, here and in storage. */
  function purge(): void {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pending = [];
    sizes.clear();
    caps.clear();
    removeKey(storage, key);
  }

  /** Runs a send at `now + delayMs` (never before a back-off ends); an earlier run already set wins. */
  function schedule(delayMs: number): void {
    if (stopped) return;
    const t = now();
    const at = Math.max(t + delayMs, retryAt);
    if (timer !== null && timerAt <= at) return;
    if (timer !== null) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = null;
      void sendNext();
    }, at - t);
  }

  /** After an answer: a full batch (or the next part of a refused one) goes at once, a partial one after the usual gathering delay. */
  function scheduleRest(): void {
    const rest = unsent();
    if (rest.length > 0) schedule(rest.length >= maxBatchEvents || caps.has(rest[0]!.event_id) ? 0 : flushDelayMs);
  }

  /** The next batch: the unsent events' first, or the next part of a refused batch alone. */
  function nextBatch(): QueuedEvent[] {
    let events = unsent();
    const cap = events.length > 0 ? caps.get(events[0]!.event_id) : undefined;
    if (cap !== undefined) {
      let n = 1;
      while (n < cap && n < events.length && caps.get(events[n]!.event_id) === cap) n++;
      events = events.slice(0, n);
    }
    return takeBatch(events, maxBatchBytes);
  }

  /** The `n`-th back-off: `base · 2^(n−1)` capped, half of it fixed and half jitter. */
  function backoff(n: number): number {
    const full = Math.min(retryMaxMs, 1_000 * 2 ** Math.min(n - 1, 30));
    return Math.round(full / 2 + random() * (full / 2));
  }

  async function sendNext(): Promise<void> {
    if (sending || stopped) return;
    if (isOptedOut()) return purge();
    const batch = nextBatch();
    if (batch.length === 0) return;
    for (const e of batch) inFlight.add(e.event_id);
    sending = true;
    let result: SendResult | null;
    try {
      result = await send(url, JSON.stringify({ events: batch }), {
        "Content-Type": "application/json",
        "X-API-Key": apiKey,
      });
    } catch {
      result = null; // network error, blocked request
    }
    sending = false;
    for (const e of batch) inFlight.delete(e.event_id);
    if (isOptedOut()) return purge();
    const status = result === null ? 0 : result.status;
    if (status >= 200 && status < 300) {
      attempt = 0;
      retryAt = 0;
      finish(batch, true);
      persist();
      scheduleRest();
    } else if (retryable(status)) {
      attempt++;
      const after = result && result.retryAfter;
      const delay = after != null && after >= 0 ? Math.min(after * 1000, 3_600_000) : backoff(attempt);
      retryAt = now() + delay;
      // a flush timer set while the request was out (an event queued meanwhile) must not cut the wait short
      if (timer !== null) clearTimeout(timer);
      timer = null;
      schedule(delay);
    } else if (status === 401 || status === 403) {
      // a wrong key or a suspended organization: every later batch would be refused too
      const all = pending.slice();
      finish(all, false);
      stopped = true;
      reportRefusal(all.length, `refused with HTTP ${status} (check the site's API key)`);
      persist();
    } else if ((status === 400 || status === 413) && batch.length > 1) {
      // one invalid event refuses the whole batch (400), as a proxy with a smaller body limit than
      // the server's does a batch over it (413): its halves go again at once, each alone, until the
      // refused events are alone in theirs (then dropped below); at most about 2·log2(n) requests
      const half = Math.ceil(batch.length / 2);
      for (const e of batch) caps.set(e.event_id, half);
      scheduleRest();
    } else {
      finish(batch, false);
      reportRefusal(batch.length, `refused with HTTP ${status}`);
      persist();
      scheduleRest();
    }
  }

  /** Adds a stamped event (bounded, stored, scheduled); null when it is larger than a batch may be. */
  function add(queued: QueuedEvent): string | null {
    if (size(queued) + BODY_OVERHEAD > maxBatchBytes) {
      dropped++;
      reportRefusal(1, "larger than a batch may be");
      return null;
    }
    pending.push(queued);
    // memory holds at most maxStoredEvents too: when the server stays away, the oldest unsent go
    const over = pending.length - maxStoredEvents;
    if (over > 0) {
      finish(unsent().slice(0, over), false);
      warnOverflow();
    }
    persist();
    schedule(unsent().length >= maxBatchEvents ? 0 : flushDelayMs);
    return queued.event_id;
  }

  if (isOptedOut()) purge();
  else {
    pending = readStored().filter((e) => !tooOld(e));
    const known = new Set(pending.map((e) => e.event_id));
    pending.push(...(options.held || []).filter((e) => !known.has(e.event_id))); // storage refused them
    // the core's outbox keeps events unchecked: one no batch can hold would block the queue
    const big = pending.filter((e) => size(e) + BODY_OVERHEAD > maxBatchBytes);
    if (big.length > 0) {
      finish(big, false);
      reportRefusal(big.length, "larger than a batch may be");
      persist();
    }
    if (pending.length > 0) schedule(flushDelayMs); // with this page's first events
  }

  return {
    enqueue(event) {
      if (isOptedOut()) {
        purge();
        return null;
      }
      if (stopped) {
        dropped++;
        return null;
      }
      return add(event);
    },

    flushOnPageHide() {
      if (isOptedOut()) return purge();
      if (stopped) return;
      if (beacon !== null) {
        const beaconUrl = `${url}?api_key=${encodeURIComponent(apiKey)}`;
        let rest = pending.slice(); // in-flight ones too: the page may cancel their request
        while (rest.length > 0) {
          const batch = takeBatch(rest, maxBeaconBytes);
          if (batch.length === 0) break;
          let accepted = false;
          try {
            accepted = beacon(beaconUrl, JSON.stringify({ events: batch }));
          } catch {
            accepted = false;
          }
          if (!accepted) break;
          finish(batch, true);
          rest = rest.slice(batch.length);
        }
      }
      persist();
    },

    stats: () => ({ pending: pending.length, sent, dropped }),
  };
}
