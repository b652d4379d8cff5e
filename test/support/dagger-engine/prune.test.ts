import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pruneStore, touchEntry } from "./prune.ts";

const HOUR = 60 * 60 * 1000;
const NOW = Date.parse("2026-12-01T12:00:00Z");
const stores: string[] = [];
afterEach(() => {
	for (const s of stores.splice(0)) rmSync(s, { recursive: true, force: true });
});

/** A store whose entries were last used `hoursAgo` before NOW, each holding `size` bytes. */
function makeStore(entries: Record<string, number>): string {
	const store = mkdtempSync(join(tmpdir(), "wp-prune-"));
	stores.push(store);
	for (const folder of ["layers", "dirs", "volumes", "tmp"]) mkdirSync(join(store, folder));
	for (const [path, hoursAgo] of Object.entries(entries)) {
		const dir = join(store, path);
		mkdirSync(dir, { recursive: true });
		writeFileSync(join(dir, "data"), "x".repeat(10));
		const at = new Date(NOW - hoursAgo * HOUR);
		utimesSync(dir, at, at);
	}
	return store;
}

const left = (store: string) =>
	["layers", "dirs", "volumes", "tmp"].flatMap((f) =>
		readdirSync(join(store, f)).map((n) => `${f}/${n}`),
	);

/** A disk of 100 bytes whose free space grows by 5 with each removed entry. */
const diskFreeing = (store: string, startFree: number) => {
	const before = left(store).length;
	return () => ({ total: 100, free: startFree + 5 * (before - left(store).length) });
};

describe("pruneStore (the engine's default cache policy: keep 20% of the disk free)", () => {
	it.each([
		// free space before → entries that go, oldest use first
		{ free: 20, gone: [] },
		{ free: 15, gone: ["layers/old"] },
		{ free: 12, gone: ["dirs/older", "layers/old"] },
		// Still short after every entry old enough went: the recent ones stay all the same.
		{ free: 0, gone: ["dirs/older", "layers/old", "layers/stale"] },
	])("with $free% free it removes $gone", ({ free, gone }) => {
		const store = makeStore({
			"layers/old": 30,
			"dirs/older": 20,
			"layers/stale": 3,
			"layers/recent": 1, // used within the last two hours: kept whatever the space
			"dirs/fresh": 0,
			"volumes/npm": 100, // named cache volumes are never pruned
		});
		// old (30 h) goes before older (20 h): least recently used first.
		const removed = pruneStore(store, {
			minFreeFraction: 0.2,
			keepForMs: 2 * HOUR,
			now: NOW,
			disk: diskFreeing(store, free),
		}).map((p) => p.slice(store.length + 1));
		expect(removed.sort()).toEqual(gone);
		expect(left(store).sort()).toEqual(
			[
				"dirs/fresh",
				"dirs/older",
				"layers/old",
				"layers/recent",
				"layers/stale",
				"volumes/npm",
			].filter((p) => !gone.includes(p)),
		);
	});

	it("removes stale work a crashed session left in tmp, and keeps fresh work", () => {
		const store = makeStore({ "tmp/x-crashed": 5, "tmp/x-running": 0 });
		pruneStore(store, {
			minFreeFraction: 0.2,
			keepForMs: 2 * HOUR,
			now: NOW,
			disk: () => ({ total: 100, free: 90 }),
		});
		expect(left(store)).toEqual(["tmp/x-running"]);
	});

	it("orders by last use: touchEntry makes an old entry the newest", () => {
		const store = makeStore({ "layers/a": 30, "layers/b": 20 });
		touchEntry(join(store, "layers/a"));
		const removed = pruneStore(store, {
			minFreeFraction: 0.2,
			keepForMs: 2 * HOUR,
			now: Date.now() + 3 * HOUR,
			disk: () => ({ total: 100, free: 19 + 10 * (2 - left(store).length) }),
		});
		expect(removed.map((p) => p.slice(store.length + 1))).toEqual(["layers/b"]);
	});
});
