import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { uuidv7Generator, uuidv7Time } from "../src/core/ids";
import {
  type EventQueue,
  type EventQueueOptions,
  createEventQueue,
  type QueuedEvent,
  type SendResult,
  type TrackedEvent,
  utf8Length,
} from "../src/core/queue";
import { isOptedOut } from "../src/core/identity";
import { FakeCookieJar, MemoryStorage } from "./fakes";

const KEY = "seg_live_abc123";
const BASE = "https://ab.example.com";
const STORED = `seg_events:${KEY}`;

interface Call {
  at: number;
  url: string;
  headers: Record<string, string>;
  events: QueuedEvent[];
}

/** A server whose answers the test scripts; unscripted requests answer 202. */
function server() {
  const calls: Call[] = [];
  const answers: (SendResult | "network" | "hang")[] = [];
  const send = vi.fn(async (url: string, body: string, headers: Record<string, string>): Promise<SendResult> => {
    calls.push({ at: Date.now(), url, headers, events: (JSON.parse(body) as { events: QueuedEvent[] }).events });
    const a = answers.shift() ?? { status: 202 };
    if (a === "network") throw new TypeError("Failed to fetch");
    if (a === "hang") return new Promise<SendResult>(() => {});
    return a;
  });
  return { calls, answers, send, ids: () => calls.flatMap((c) => c.events.map((e) => e.event_id)) };
}

const logger = () => ({ error: vi.fn(), warn: vi.fn() });

function ev(i: number, data?: Record<string, unknown>): TrackedEvent {
  return { event_name: "cta_click", visitor_id: "visitor_123", event_data: { i, ...data } };
}

function stored(storage: MemoryStorage): QueuedEvent[] {
  const raw = storage.getItem(STORED);
  return raw === null ? [] : (JSON.parse(raw) as QueuedEvent[]);
}

/** A queue whose `enqueue` stamps each event first, as the core's outbox does when it is recorded. */
function queue(
  over: Partial<EventQueueOptions> & Pick<EventQueueOptions, "send">,
): Omit<EventQueue, "enqueue"> & { enqueue(event: TrackedEvent): string | null } {
  const q = createEventQueue({ baseUrl: `${BASE}/`, apiKey: KEY, random: () => 0.5, logger: logger(), ...over });
  const newId = uuidv7Generator();
  return { ...q, enqueue: (e) => q.enqueue({ ...e, event_id: newId(), timestamp: new Date().toISOString() }) };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.UTC(2026, 10, 26, 10, 0, 0));
});
afterEach(() => {
  vi.useRealTimers();
});

describe("batching", () => {
  test("events wait a second, then go in one request with ids, times and the key header", async () => {
    const s = server();
    const q = queue({ send: s.send, storage: new MemoryStorage() });
    const ids = [q.enqueue(ev(1)), q.enqueue(ev(2)), q.enqueue(ev(3))];
    await vi.advanceTimersByTimeAsync(999);
    expect(s.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls).toHaveLength(1);
    const call = s.calls[0]!;
    expect(call.url).toBe(`${BASE}/api/v1/events/batch`);
    expect(call.headers).toEqual({ "Content-Type": "application/json", "X-API-Key": KEY });
    expect(call.events.map((e) => e.event_id)).toEqual(ids);
    expect(call.events[0]).toMatchObject({ event_name: "cta_click", visitor_id: "visitor_123", event_data: { i: 1 } });
    expect(call.events[0]!.timestamp).toBe("2026-11-26T10:00:00.000Z");
    expect(uuidv7Time(call.events[0]!.event_id)).toBe(Date.UTC(2026, 10, 26, 10, 0, 0));
    expect(q.stats()).toEqual({ pending: 0, sent: 3, dropped: 0 });
  });

  test("100 events go at once; 250 go as 100, 100 and 50", async () => {
    const s = server();
    const q = queue({ send: s.send });
    for (let i = 0; i < 250; i++) q.enqueue(ev(i));
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls.map((c) => c.events.length)).toEqual([100, 100]); // full batches go at once
    await vi.advanceTimersByTimeAsync(999);
    expect(s.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls.map((c) => c.events.length)).toEqual([100, 100, 50]);
    expect(new Set(s.ids()).size).toBe(250);
  });

  test("a batch stays under 1 MB", async () => {
    const s = server();
    const q = queue({ send: s.send });
    const big = "é".repeat(20_000); // 40 KB of UTF-8 each
    for (let i = 0; i < 60; i++) expect(q.enqueue(ev(i, { big }))).not.toBeNull();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls.reduce((n, c) => n + c.events.length, 0)).toBe(60);
    expect(s.calls.length).toBeGreaterThan(2);
    for (const c of s.calls) expect(utf8Length(JSON.stringify({ events: c.events }))).toBeLessThan(1_000_000);
  });

  test("an event larger than a batch is refused at once", async () => {
    const s = server();
    const log = logger();
    const q = queue({ send: s.send, logger: log });
    expect(q.enqueue(ev(1, { huge: "x".repeat(1_100_000) }))).toBeNull();
    expect(log.error).toHaveBeenCalledOnce();
    expect(q.stats().dropped).toBe(1);
  });
});

describe("retries", () => {
  test("network errors and 5xx are retried with the same event ids, never duplicated", async () => {
    const s = server();
    s.answers.push("network", { status: 503 }, { status: 502 });
    const storage = new MemoryStorage();
    const q = queue({ send: s.send, storage });
    q.enqueue(ev(1));
    q.enqueue(ev(2));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.calls).toHaveLength(4);
    const first = s.calls[0]!.events.map((e) => e.event_id);
    for (const c of s.calls) expect(c.events.map((e) => e.event_id)).toEqual(first);
    expect(s.calls[3]!.events).toEqual(s.calls[0]!.events); // same timestamps too
    expect(stored(storage)).toEqual([]);
    expect(q.stats()).toEqual({ pending: 0, sent: 2, dropped: 0 });
  });

  test("back-off doubles from 1 s with half of it jittered, capped", async () => {
    const s = server();
    for (let i = 0; i < 12; i++) s.answers.push({ status: 500 });
    const q = queue({ send: s.send, random: () => 0.5, retryMaxMs: 60_000 });
    const t0 = Date.now();
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(600_000);
    const gaps = s.calls.slice(1).map((c, i) => c.at - s.calls[i]!.at);
    // full delay d = min(60 s, 1 s·2^(n−1)); with random 0.5 the wait is d/2 + 0.5·d/2 = 0.75·d
    expect(s.calls[0]!.at - t0).toBe(1_000);
    expect(gaps.slice(0, 8)).toEqual([750, 1_500, 3_000, 6_000, 12_000, 24_000, 45_000, 45_000]);
  });

  test("jitter spreads the wait between half and all of the back-off", async () => {
    for (const [random, wait] of [
      [0, 500],
      [0.999, 1_000],
    ] as const) {
      vi.setSystemTime(0);
      const s = server();
      s.answers.push({ status: 500 });
      const q = queue({ send: s.send, random: () => random });
      q.enqueue(ev(1));
      await vi.advanceTimersByTimeAsync(10_000);
      expect(s.calls[1]!.at - s.calls[0]!.at).toBe(wait);
    }
  });

  test("429 with Retry-After waits exactly that long", async () => {
    const s = server();
    s.answers.push({ status: 429, retryAfter: 30 });
    const q = queue({ send: s.send });
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(s.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls).toHaveLength(2);
  });

  test("a retry waits for the server's Retry-After although an event was queued while the request was out", async () => {
    const calls: number[] = [];
    let answer!: (result: SendResult) => void;
    const send = vi.fn((): Promise<SendResult> => {
      calls.push(Date.now());
      return calls.length === 1 ? new Promise<SendResult>((resolve) => (answer = resolve)) : Promise.resolve({ status: 202 });
    });
    const q = queue({ send });
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000); // the request is out
    q.enqueue(ev(2)); // e.g. a click goal meanwhile
    await vi.advanceTimersByTimeAsync(200);
    answer({ status: 429, retryAfter: 60 });
    await vi.advanceTimersByTimeAsync(59_999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
    expect(q.stats()).toEqual({ pending: 0, sent: 2, dropped: 0 });
  });

  test("events queued during a back-off wait for it, then go together", async () => {
    const s = server();
    s.answers.push("network");
    const q = queue({ send: s.send, random: () => 0 });
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000); // fails: retry 500 ms later
    q.enqueue(ev(2));
    await vi.advanceTimersByTimeAsync(499);
    expect(s.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls.map((c) => c.events.length)).toEqual([1, 2]);
  });
});

describe("refusals are final", () => {
  test("400 or 413 for a lone event drops it, never retried, with one console error that counts them", async () => {
    const s = server();
    s.answers.push({ status: 413 }, { status: 400 });
    const log = logger();
    const storage = new MemoryStorage();
    const q = queue({ send: s.send, storage, logger: log, maxBatchEvents: 1 });
    for (let i = 0; i < 3; i++) q.enqueue(ev(i));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(s.calls.map((c) => c.events[0]!.event_data!.i)).toEqual([0, 1, 2]); // never retried
    expect(log.error).toHaveBeenCalledOnce();
    expect(log.error.mock.calls[0]![0]).toContain("1 event(s) refused with HTTP 413");
    expect(q.stats()).toEqual({ pending: 0, sent: 1, dropped: 2 });
    expect(stored(storage)).toEqual([]);
  });

  test("a batch over a proxy's smaller body limit (413) goes again in parts: only an event over it alone is lost", async () => {
    const LIMIT = 1_000; // a proxy in front of the server takes bodies up to 1,000 bytes
    const bodies: QueuedEvent[][] = [];
    const send = vi.fn(async (_url: string, body: string): Promise<SendResult> => {
      bodies.push((JSON.parse(body) as { events: QueuedEvent[] }).events);
      return { status: utf8Length(body) > LIMIT ? 413 : 202 };
    });
    const log = logger();
    const storage = new MemoryStorage();
    const q = queue({ send, storage, logger: log });
    const ids: (string | null)[] = [];
    for (let i = 0; i < 12; i++) ids.push(q.enqueue(ev(i, i === 5 ? { note: "x".repeat(1_200) } : {})));
    await vi.advanceTimersByTimeAsync(5_000);
    const delivered = bodies.filter((b) => utf8Length(JSON.stringify({ events: b })) <= LIMIT).flat();
    expect(delivered.map((e) => e.event_id)).toEqual(ids.filter((_, i) => i !== 5)); // each once, in order
    expect(log.error).toHaveBeenCalledOnce();
    expect(log.error.mock.calls[0]![0]).toContain("1 event(s) refused with HTTP 413");
    expect(q.stats()).toEqual({ pending: 0, sent: 11, dropped: 1 });
    expect(stored(storage)).toEqual([]);
  });

  test("an invalid event refused with its batch loses only itself: the batch's other events are sent, once", async () => {
    // the batch endpoint answers 400 for a whole batch when one event is invalid, e.g.
    // track("conversion", {revenue: "19.99"}): revenue must be a number
    const calls: QueuedEvent[][] = [];
    const times: number[] = [];
    const send = vi.fn(async (_url: string, body: string): Promise<SendResult> => {
      const events = (JSON.parse(body) as { events: QueuedEvent[] }).events;
      calls.push(events);
      times.push(Date.now());
      return { status: events.some((e) => typeof e.event_data?.revenue === "string") ? 400 : 202 };
    });
    const log = logger();
    const storage = new MemoryStorage();
    const q = queue({ send, storage, logger: log });
    const ids: (string | null)[] = [];
    for (let i = 0; i < 10; i++) ids.push(q.enqueue(ev(i, i === 3 || i === 8 ? { revenue: "19.99" } : { revenue: 19.99 })));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(times[times.length - 1]! - times[0]!).toBeLessThan(100); // the refused batch's parts go at once, not a second apart
    const delivered = calls.filter((c) => !c.some((e) => typeof e.event_data?.revenue === "string")).flat();
    expect(delivered.map((e) => e.event_id)).toEqual(ids.filter((_, i) => i !== 3 && i !== 8));
    const tries = calls.flat().filter((e) => e.event_id === ids[3]);
    expect(tries[tries.length - 1]).toEqual(calls[0]![3]); // the same id and time when alone
    expect(log.error).toHaveBeenCalledOnce();
    expect(log.error.mock.calls[0]![0]).toContain("1 event(s) refused with HTTP 400");
    expect(q.stats()).toEqual({ pending: 0, sent: 8, dropped: 2 });
    expect(stored(storage)).toEqual([]);
    const requests = calls.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(requests); // nothing more is sent
  });

  test("401/403 drop everything and stop sending for the page", async () => {
    const s = server();
    s.answers.push({ status: 401 });
    const log = logger();
    const q = queue({ send: s.send, logger: log, maxBatchEvents: 2 });
    for (let i = 0; i < 3; i++) q.enqueue(ev(i));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.calls).toHaveLength(1);
    expect(q.enqueue(ev(9))).toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.calls).toHaveLength(1);
    expect(log.error).toHaveBeenCalledOnce();
    expect(log.error.mock.calls[0]![0]).toContain("3 event(s)");
    expect(q.stats().dropped).toBe(4);
  });
});

describe("persistence", () => {
  test("unsent events survive a reload and are sent by the next page with the same ids", async () => {
    const storage = new MemoryStorage();
    const down = server();
    down.answers.push("network", "network", "network");
    const q1 = queue({ send: down.send, storage });
    const ids = [q1.enqueue(ev(1)), q1.enqueue(ev(2))];
    await vi.advanceTimersByTimeAsync(3_000); // two failed attempts; the page is then closed
    expect(stored(storage).map((e) => e.event_id)).toEqual(ids);

    const up = server();
    const q2 = queue({ send: up.send, storage });
    const id3 = q2.enqueue(ev(3));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(up.calls).toHaveLength(1); // the stored events go with the new page's first batch
    expect(up.ids()).toEqual([...ids, id3]);
    expect(stored(storage)).toEqual([]);
  });

  test("events whose request was cut by the page closing are re-sent (the server de-duplicates by id)", async () => {
    const storage = new MemoryStorage();
    const s1 = server();
    s1.answers.push("hang");
    const q1 = queue({ send: s1.send, storage });
    const id = q1.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s1.calls).toHaveLength(1);
    expect(stored(storage).map((e) => e.event_id)).toEqual([id]); // in flight is not sent yet
    const s2 = server();
    queue({ send: s2.send, storage });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s2.ids()).toEqual([id]);
  });

  test("storage is bounded: the oldest unsent events go first, with one warning", async () => {
    const storage = new MemoryStorage();
    const s = server();
    for (let i = 0; i < 20; i++) s.answers.push("network");
    const log = logger();
    const q = queue({ send: s.send, storage, logger: log, maxStoredEvents: 5 });
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push(q.enqueue(ev(i)));
    expect(stored(storage).map((e) => e.event_id)).toEqual(ids.slice(3));
    expect(log.warn).toHaveBeenCalledOnce();
    expect(q.stats()).toMatchObject({ pending: 5, dropped: 3 });
  });

  test("storage is bounded in bytes too; what does not fit is still sent by this page", async () => {
    const storage = new MemoryStorage();
    const s = server();
    const log = logger();
    const q = queue({ send: s.send, storage, logger: log, maxStoredBytes: 1_000 });
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push(q.enqueue(ev(i)));
    const kept = stored(storage).map((e) => e.event_id);
    expect(kept.length).toBeLessThan(10);
    expect(kept).toEqual(ids.slice(10 - kept.length)); // the newest are kept
    expect(storage.getItem(STORED)!.length).toBeLessThanOrEqual(1_000);
    expect(log.warn).toHaveBeenCalledOnce();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.ids()).toEqual(ids);
  });

  test("broken or foreign data in storage is discarded safely", async () => {
    const storage = new MemoryStorage();
    storage.setItem(STORED, "{not json");
    const s = server();
    const q = queue({ send: s.send, storage });
    expect(storage.getItem(STORED)).toBeNull();
    storage.setItem(STORED, JSON.stringify([{ event_name: "x" }, 42, null]));
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.calls[0]!.events).toHaveLength(1);
    expect(storage.getItem(STORED)).toBeNull();
  });

  test("stored events older than the server accepts are not sent, and leave storage at the next write", async () => {
    const storage = new MemoryStorage();
    const old: QueuedEvent = { ...ev(1), event_id: uuidv7Generator()(), timestamp: new Date().toISOString() };
    storage.setItem(STORED, JSON.stringify([old])); // a page that was closed before it could send it
    vi.setSystemTime(Date.now() + 31 * 86_400_000);
    const s = server();
    const q2 = queue({ send: s.send, storage, flushDelayMs: 60_000 });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls).toHaveLength(0);
    const id = q2.enqueue(ev(2));
    expect(stored(storage).map((e) => e.event_id)).toEqual([id]);
  });

  test("two tabs keep each other's unsent events in storage", async () => {
    const storage = new MemoryStorage();
    const a = queue({ send: server().send, storage, flushDelayMs: 60_000 });
    const b = queue({ send: server().send, storage, flushDelayMs: 60_000 });
    const ia = a.enqueue(ev(1));
    const ib = b.enqueue(ev(2));
    const ia2 = a.enqueue(ev(3));
    expect(stored(storage).map((e) => e.event_id).sort()).toEqual([ia, ib, ia2].sort());
  });

  test("blocked storage still sends", async () => {
    const storage = new MemoryStorage();
    storage.failWrites = true;
    const s = server();
    const q = queue({ send: s.send, storage });
    q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.calls).toHaveLength(1);
  });
});

describe("pagehide", () => {
  test("unsent events go by beacon with the key in the query and a JSON text body", () => {
    const storage = new MemoryStorage();
    const beacons: { url: string; body: string }[] = [];
    const s = server();
    const q = queue({ send: s.send, storage, beacon: (url, body) => (beacons.push({ url, body }), true) });
    const ids = [q.enqueue(ev(1)), q.enqueue(ev(2))];
    q.flushOnPageHide();
    expect(beacons).toHaveLength(1);
    expect(beacons[0]!.url).toBe(`${BASE}/api/v1/events/batch?api_key=${KEY}`);
    const body = JSON.parse(beacons[0]!.body) as { events: QueuedEvent[] };
    expect(body.events.map((e) => e.event_id)).toEqual(ids);
    expect(stored(storage)).toEqual([]);
    expect(q.stats()).toEqual({ pending: 0, sent: 2, dropped: 0 });
  });

  test("events in flight go too (their request may be cancelled); the server keeps one of each", async () => {
    const s = server();
    s.answers.push("hang");
    const beacons: string[] = [];
    const q = queue({ send: s.send, beacon: (_u, body) => (beacons.push(body), true) });
    const id = q.enqueue(ev(1));
    await vi.advanceTimersByTimeAsync(1_000);
    q.flushOnPageHide();
    expect((JSON.parse(beacons[0]!) as { events: QueuedEvent[] }).events[0]!.event_id).toBe(id);
  });

  test("what the browser refuses to beacon stays stored for the next page", async () => {
    const storage = new MemoryStorage();
    let allowed = 1;
    const beacons: string[] = [];
    const q = queue({
      send: server().send,
      storage,
      maxBeaconBytes: 400,
      beacon: (_u, body) => (allowed-- > 0 ? (beacons.push(body), true) : false),
    });
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(q.enqueue(ev(i)));
    q.flushOnPageHide();
    const beaconed = (JSON.parse(beacons[0]!) as { events: QueuedEvent[] }).events.map((e) => e.event_id);
    expect(beaconed.length).toBeGreaterThan(0);
    expect(beaconed.length).toBeLessThan(6);
    expect(beacons[0]!.length).toBeLessThanOrEqual(400);
    const left = stored(storage).map((e) => e.event_id);
    expect([...beaconed, ...left]).toEqual(ids);

    const s = server();
    queue({ send: s.send, storage });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.ids()).toEqual(left);
  });

  test("a throwing beacon loses nothing", () => {
    const storage = new MemoryStorage();
    const q = queue({
      send: server().send,
      storage,
      beacon: () => {
        throw new Error("blocked");
      },
    });
    const id = q.enqueue(ev(1));
    q.flushOnPageHide();
    expect(stored(storage).map((e) => e.event_id)).toEqual([id]);
  });
});

describe("opt-out", () => {
  test("an opted-out visitor's events are neither queued, stored nor sent", async () => {
    const storage = new MemoryStorage();
    const s = server();
    const beacon = vi.fn(() => true);
    const q = queue({ send: s.send, storage, beacon, isOptedOut: () => true });
    expect(q.enqueue(ev(1))).toBeNull();
    q.flushOnPageHide();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls).toHaveLength(0);
    expect(beacon).not.toHaveBeenCalled();
    expect(storage.getItem(STORED)).toBeNull();
  });

  test("setting the opt-out cookie mid-page stops sending and forgets what was waiting", async () => {
    const storage = new MemoryStorage();
    const s = server();
    const jar = new FakeCookieJar("www.example.com");
    const q = queue({ send: s.send, storage, isOptedOut: () => isOptedOut(jar) });
    q.enqueue(ev(1));
    expect(storage.getItem(STORED)).not.toBeNull();
    jar.set("segmently_opt_out=true; path=/");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls).toHaveLength(0);
    expect(storage.getItem(STORED)).toBeNull();
    expect(q.stats().pending).toBe(0);
  });

  test("events stored before the opt-out are not sent by the next page", async () => {
    const storage = new MemoryStorage();
    const down = server();
    down.answers.push("network");
    queue({ send: down.send, storage }).enqueue(ev(1));
    const s = server();
    queue({ send: s.send, storage, isOptedOut: () => true });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.calls).toHaveLength(0);
    expect(storage.getItem(STORED)).toBeNull();
  });
});
