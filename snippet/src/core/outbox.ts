/**
 * The core's end of the event queue: events recorded before the `track` chunk, which brings the
 * queue itself (src/core/queue.ts: batching, retries, bounds), has loaded.
 *
 * Each event gets its `event_id` (UUIDv7) and `timestamp` when it is recorded and is kept in memory
 * (`_held`, which the queue takes over) and in storage (`seg_events:{key}`, the list the queue sends
 * from; the events of one task in one write, at its end), so a page closed before the chunk ran
 * loses none: `_beacon()` on `pagehide` sends them, and
 * what the browser refuses is sent by the next page load. Nothing is kept for an opted-out visitor.
 */

import { uuidv7Generator } from "./ids";
import type { Beacon, QueuedEvent, TrackedEvent } from "./queue";
import { type KeyValueStorage, readJson, removeKey, writeJson } from "./storage";

export const BATCH_PATH = "/api/v1/events/batch";
export const EVENTS_KEY = "seg_events:";
/** the stored list's bound here; the queue bounds it in bytes too */
const MAX_STORED = 1_000;

export interface Outbox {
  /** Gives the event its id and time (the ids of a page increase, even within a millisecond). */
  _stamp(event: TrackedEvent): QueuedEvent;
  /** Keeps a stamped event until the queue takes it over. */
  _hold(event: QueuedEvent): void;
  /** The held events, oldest first; the queue empties it when it takes them. */
  _held: QueuedEvent[];
  /** `pagehide` before the queue came: the held events in one beacon (what it refuses stays stored). */
  _beacon(send: Beacon): void;
}

/** The outbox of one page load; `isOptedOut` is asked at each write (an opt-out mid-page deletes the list). */
export function createOutbox(
  baseUrl: string,
  apiKey: string,
  storage: KeyValueStorage | null,
  isOptedOut: () => boolean,
): Outbox {
  const key = EVENTS_KEY + apiKey;
  const newId = uuidv7Generator();
  const held: QueuedEvent[] = [];
  /** held this task, stored together at its end (a first visit's assignments: one write, not ten) */
  let fresh: QueuedEvent[] = [];
  /** Rewrites the stored list (another tab may have added to it meanwhile); opted out, deletes it. */
  const store = (change: (list: QueuedEvent[]) => QueuedEvent[], out = isOptedOut()): void => {
    if (out) {
      held.length = 0;
      return removeKey(storage, key);
    }
    const stored = readJson(storage, key);
    writeJson(storage, key, change(Array.isArray(stored) ? stored : []).slice(-MAX_STORED));
  };
  /** Stores the events held this task; `out`: the opt-out as it was when they were held. */
  const flush = (out?: boolean): void => {
    const add = fresh;
    fresh = [];
    if (add.length) store((list) => list.concat(add), out);
  };
  return {
    _stamp: (event) => ({ ...event, event_id: newId(), timestamp: new Date().toISOString() }),
    _hold(event) {
      held.push(event);
      // the opt-out is read now, while this task's cookie read serves: its end would read again
      if (fresh.push(event) == 1) {
        const out = isOptedOut();
        Promise.resolve().then(() => flush(out));
      }
    },
    _held: held,
    _beacon(send) {
      flush();
      if (!held.length) return;
      store((list) => {
        let sent = false;
        try {
          const url = `${baseUrl}${BATCH_PATH}?api_key=${encodeURIComponent(apiKey)}`;
          sent = send(url, JSON.stringify({ events: held }));
        } catch {
          // no sendBeacon, or it threw: they stay stored
        }
        if (!sent) return list;
        const ids = held.splice(0).map((e) => e.event_id);
        return list.filter((e) => !ids.includes(e.event_id));
      });
    },
  };
}
