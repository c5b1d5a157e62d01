import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { uuidv7Time } from "../src/core/ids";
import { createOutbox } from "../src/core/outbox";
import { type QueuedEvent, type SendResult, createEventQueue } from "../src/core/queue";
import { MemoryStorage } from "./fakes";

const KEY = "seg_live_abc123";
const BASE = "https://ab.example.com";
const STORED = `seg_events:${KEY}`;

const ev = (i: number) => ({ event_name: "cta_click", visitor_id: "visitor_123", event_data: { i } });
const stored = (storage: MemoryStorage): QueuedEvent[] => JSON.parse(storage.getItem(STORED) ?? "[]") as QueuedEvent[];

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.UTC(2026, 10, 26, 10, 0, 0));
});
afterEach(() => {
  vi.useRealTimers();
});

describe("the core's outbox (before the track chunk's queue)", () => {
  test("stamps each event now, with increasing ids, and keeps it in memory and in storage (one write per task)", async () => {
    const storage = new MemoryStorage();
    const writes = vi.spyOn(storage, "setItem");
    const box = createOutbox(BASE, KEY, storage, () => false);
    const a = box._stamp(ev(1));
    const b = box._stamp(ev(2));
    expect(a.timestamp).toBe("2026-11-26T10:00:00.000Z");
    expect(uuidv7Time(a.event_id)).toBe(Date.now());
    expect(b.event_id > a.event_id).toBe(true);
    box._hold(a);
    box._hold(b);
    expect(box._held).toEqual([a, b]);
    await Promise.resolve(); // the end of the task
    expect(stored(storage)).toEqual([a, b]);
    expect(writes).toHaveBeenCalledTimes(1);
  });

  test("keeps another tab's stored events", async () => {
    const storage = new MemoryStorage();
    const other = createOutbox(BASE, KEY, storage, () => false);
    const theirs = other._stamp(ev(1));
    other._hold(theirs);
    await Promise.resolve();
    const box = createOutbox(BASE, KEY, storage, () => false);
    const mine = box._stamp(ev(2));
    box._hold(mine);
    await Promise.resolve();
    expect(stored(storage)).toEqual([theirs, mine]);
  });

  test("on pagehide the held events go in one beacon and leave storage; a refusal keeps them stored", async () => {
    const storage = new MemoryStorage();
    const box = createOutbox(BASE, KEY, storage, () => false);
    const a = box._stamp(ev(1));
    box._hold(a);
    box._beacon(() => false); // in the task that held it: stored first, then offered
    await Promise.resolve();
    box._beacon(() => {
      throw new Error("blocked");
    });
    expect(stored(storage)).toEqual([a]);
    const beacons: [string, string][] = [];
    box._beacon((url, body) => beacons.push([url, body]) > 0);
    expect(beacons).toEqual([[`${BASE}/api/v1/events/batch?api_key=${KEY}`, JSON.stringify({ events: [a] })]]);
    expect(stored(storage)).toEqual([]);
    expect(box._held).toEqual([]);
    box._beacon((url, body) => beacons.push([url, body]) > 0);
    expect(beacons).toHaveLength(1); // nothing left to send
  });

  test("keeps nothing for an opted-out visitor and deletes the stored list", () => {
    const storage = new MemoryStorage();
    let optedOut = false;
    const box = createOutbox(BASE, KEY, storage, () => optedOut);
    box._hold(box._stamp(ev(1)));
    optedOut = true;
    const beacon = vi.fn(() => true);
    box._hold(box._stamp(ev(2)));
    box._beacon(beacon);
    expect(storage.getItem(STORED)).toBeNull();
    expect(box._held).toEqual([]);
    expect(beacon).not.toHaveBeenCalled();
  });

  test("the queue takes the held events over and sends each once, also when storage refused them", async () => {
    for (const failWrites of [false, true]) {
      const storage = new MemoryStorage();
      storage.failWrites = failWrites;
      const box = createOutbox(BASE, KEY, storage, () => false);
      const held = [box._stamp(ev(1)), box._stamp(ev(2))];
      for (const e of held) box._hold(e);
      const bodies: string[] = [];
      const send = async (_url: string, body: string): Promise<SendResult> => (bodies.push(body), { status: 202 });
      const queue = createEventQueue({ baseUrl: BASE, apiKey: KEY, storage, send, held: box._held.splice(0) });
      queue.enqueue(box._stamp(ev(3)));
      await vi.advanceTimersByTimeAsync(1_000);
      const sent = bodies.flatMap((b) => (JSON.parse(b) as { events: QueuedEvent[] }).events);
      expect(sent.map((e) => e.event_data)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
      expect(sent.slice(0, 2)).toEqual(held);
      expect(stored(storage)).toEqual([]);
    }
  });

  test("a held event no batch can hold is dropped with one console error instead of blocking the queue", async () => {
    const box = createOutbox(BASE, KEY, null, () => false);
    const big = box._stamp({ ...ev(1), event_data: { big: "x".repeat(1_100_000) } });
    const small = box._stamp(ev(2));
    const logger = { error: vi.fn(), warn: vi.fn() };
    const bodies: string[] = [];
    const send = async (_url: string, body: string): Promise<SendResult> => (bodies.push(body), { status: 202 });
    createEventQueue({ baseUrl: BASE, apiKey: KEY, send, logger, held: [big, small] });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(bodies.map((b) => (JSON.parse(b) as { events: QueuedEvent[] }).events.length)).toEqual([1]);
    expect(logger.error).toHaveBeenCalledOnce();
  });
});
