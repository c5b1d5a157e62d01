import { describe, expect, test, vi } from "vitest";
import { loadConfig, type ConfigCacheOptions, type ConfigResponse } from "../src/core/config";
import { MemoryStorage } from "./fakes";

const KEY = "seg_live_abc123";
const STORED = `seg_config3:${KEY}`;
const V1 = { experiments: [{ slug: "hero", variants: [] }], settings: { cross_domain: [] } };
const V2 = { experiments: [], settings: { cross_domain: ["checkout.example.com"] } };

interface Answer {
  status: number;
  etag?: string | null;
  body?: string | null;
}

function api(...answers: (Answer | "network")[]) {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  // answers as the runtime's XMLHttpRequest does once loaded; the calls as the headers sent
  const fetchConfig = vi.fn(async (url: string, etag?: string): Promise<ConfigResponse> => {
    calls.push({ url, headers: etag ? { "If-None-Match": etag } : {} });
    const a = answers.shift() ?? { status: 500 };
    if (a === "network") throw new TypeError("Failed to fetch");
    const headers = new Headers(a.etag ? { ETag: a.etag } : {});
    return { status: a.status, responseText: a.body ?? "", getResponseHeader: (name) => headers.get(name) };
  });
  return { calls, fetchConfig };
}

const ok = (config: unknown, etag: string | null = '"v1"'): Answer => ({
  status: 200,
  etag,
  body: JSON.stringify(config),
});

function cache(over: Partial<ConfigCacheOptions<Record<string, unknown>>> & Pick<ConfigCacheOptions<Record<string, unknown>>, "_fetchConfig">) {
  const logger = { error: vi.fn() };
  return { logger, c: { load: () => loadConfig({ _baseUrl: "https://ab.example.com", _apiKey: KEY, _report: logger.error, _later: setTimeout, ...over }) } };
}

describe("config cache", () => {
  test("a first visit has nothing to apply until the config arrives, which is then stored with its ETag", async () => {
    const storage = new MemoryStorage();
    const a = api(ok(V1));
    const { c } = cache({ _fetchConfig: a.fetchConfig, _storage: storage });
    const load = c.load();
    expect(load.config).toBeNull();
    // the request leaves at once, while the rest of the page's start-up runs
    expect(a.calls).toEqual([{ url: `https://ab.example.com/api/v1/sdk/config?api_key=${KEY}`, headers: {} }]);
    expect(await load._update).toEqual(V1);
    expect(JSON.parse(storage.getItem(STORED)!)).toEqual({ etag: '"v1"', config: V1 });
  });

  test("a returning visitor gets the stored config at once; 304 keeps it", async () => {
    const storage = new MemoryStorage();
    await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
    const a = api({ status: 304, etag: '"v1"' });
    const load = cache({ _fetchConfig: a.fetchConfig, _storage: storage }).c.load();
    expect(load.config).toEqual(V1); // before any network answer
    expect(a.calls).toEqual([]); // the revalidation waits a task: the page starts first
    expect(await load._update).toEqual(V1);
    expect(a.calls[0]!.headers).toEqual({ "If-None-Match": '"v1"' });
    expect(JSON.parse(storage.getItem(STORED)!)).toEqual({ etag: '"v1"', config: V1 });
  });

  test("200 replaces the stored config for the next page", async () => {
    const storage = new MemoryStorage();
    await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
    const load = cache({ _fetchConfig: api(ok(V2, '"v2"')).fetchConfig, _storage: storage }).c.load();
    expect(load.config).toEqual(V1);
    expect(await load._update).toEqual(V2);
    const next = cache({ _fetchConfig: api({ status: 304 }).fetchConfig, _storage: storage }).c.load();
    expect(next.config).toEqual(V2);
  });

  test("network errors, 5xx and broken responses keep the cached config and report once (one load per page)", async () => {
    const storage = new MemoryStorage();
    await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
    for (const answer of ["network", { status: 503 }, { status: 200, etag: '"x"', body: "<html>" }] as const) {
      const { c, logger } = cache({ _fetchConfig: api(answer).fetchConfig, _storage: storage });
      const load = c.load();
      expect(await load._update).toEqual(V1);
      expect(logger.error).toHaveBeenCalledOnce();
      expect(logger.error.mock.calls[0]![0]).toContain("the cached one used");
    }
    expect(JSON.parse(storage.getItem(STORED)!).config).toEqual(V1);
  });

  test("with nothing cached, a failure leaves no config (the page is left as it is)", async () => {
    const { c, logger } = cache({ _fetchConfig: api("network").fetchConfig, _storage: new MemoryStorage() });
    expect(await c.load()._update).toEqual(null);
    expect(logger.error).toHaveBeenCalledOnce();
  });

  test("a revoked key or deleted site forgets the cached config", async () => {
    for (const status of [401, 403, 404]) {
      const storage = new MemoryStorage();
      await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
      const load = cache({ _fetchConfig: api({ status }).fetchConfig, _storage: storage }).c.load();
      expect(load.config).toEqual(V1);
      expect(await load._update).toEqual(null);
      expect(storage.getItem(STORED)).toBeNull();
    }
  });

  test("broken JSON or a foreign value in storage is discarded and the config fetched", async () => {
    for (const junk of ["{not json", "42", JSON.stringify({ etag: '"v1"' }), JSON.stringify({ config: V1 })]) {
      const storage = new MemoryStorage();
      storage.setItem(STORED, junk);
      const a = api(ok(V2, '"v2"'));
      const load = cache({ _fetchConfig: a.fetchConfig, _storage: storage }).c.load();
      expect(load.config).toBeNull();
      expect(await load._update).toEqual(V2);
      expect(a.calls[0]!.headers).toEqual({}); // no stale ETag sent
    }
  });

  test("the inline config of /s/{api_key}.js wins and costs no request", async () => {
    const storage = new MemoryStorage();
    await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
    const a = api();
    const load = cache({ _fetchConfig: a.fetchConfig, _storage: storage, _inline: { config: V2, etag: '"v2"' } }).c.load();
    expect(load.config).toEqual(V2);
    expect(await load._update).toEqual(V2);
    expect(a.calls).toHaveLength(0);
  });

  test("an unusable inline value falls back to the cache", async () => {
    const storage = new MemoryStorage();
    await cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: storage }).c.load()._update;
    const load = cache({ _fetchConfig: api({ status: 304 }).fetchConfig, _storage: storage, _inline: { config: "oops" } }).c.load();
    expect(load.config).toEqual(V1);
  });

  test("a response without an ETag is used but not stored; without storage nothing is kept", async () => {
    const storage = new MemoryStorage();
    expect((await cache({ _fetchConfig: api(ok(V1, null)).fetchConfig, _storage: storage }).c.load()._update)).toEqual(V1);
    expect(storage.getItem(STORED)).toBeNull();
    const none = cache({ _fetchConfig: api(ok(V1)).fetchConfig, _storage: null }).c.load();
    expect(await none._update).toEqual(V1);
  });

  test("JSON without a list of experiments is not a config", async () => {
    for (const body of [{ hello: 1 }, { experiments: {} }, [V1]]) {
      const { c, logger } = cache({ _fetchConfig: api(ok(body)).fetchConfig });
      expect(await c.load()._update).toEqual(null);
      expect(logger.error).toHaveBeenCalledWith("config failed (not a config)");
    }
  });
});
