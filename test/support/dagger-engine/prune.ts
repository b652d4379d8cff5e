// The stand-in's cache garbage collection, after the Dagger engine's default cache policy
// (docs.dagger.io/configuration/cache: "ensuring that at least 20% of the disk remains
// free"; engine.json `gc.minFreeSpace`): once the disk holding the store has less free space than
// that, the least recently used cache entries go until it has it again. The policy's other half
// (long-term cache under 75% of the disk) is not modelled: it needs the store's size, a walk of
// every layer. Entries used within `keepForMs` stay, so a session running in parallel never loses
// a layer it is mounting.
import { readdirSync, rmSync, statfsSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

// The folders of the store whose entries are caches. Cache volumes are kept: the docs page above
// does not say whether the default policy prunes them, and a user report of `localCache.prune`
// (no arguments) says it never touches named volumes; tmp holds in-flight work, removed when stale.
const CACHE_FOLDERS = ["layers", "dirs"];

export interface PrunePolicy {
	/** The share of the disk to keep free (the engine's default minFreeSpace: 20%). */
	minFreeFraction: number;
	/** Entries used more recently than this many ms are kept whatever the free space. */
	keepForMs: number;
	/** The disk's size and free bytes now (statfs of the store by default). */
	disk?: () => { total: number; free: number };
	now?: number;
}

// Two hours: longer than any test session that could be mounting an entry.
export const DEFAULT_PRUNE_POLICY: PrunePolicy = {
	minFreeFraction: 0.2,
	keepForMs: 2 * 60 * 60 * 1000,
};

/** Marks a cache entry used now: the prune removes least recently used entries first. */
export function touchEntry(dir: string): void {
	const now = new Date();
	try {
		utimesSync(dir, now, now);
	} catch {
		// Gone (pruned by another session between use and touch): it is recreated on a miss.
	}
}

/** Removes cache entries, oldest use first, until the disk has minFreeBytes; returns what went. */
export function pruneStore(store: string, policy: PrunePolicy = DEFAULT_PRUNE_POLICY): string[] {
	const now = policy.now ?? Date.now();
	const disk =
		policy.disk ??
		(() => {
			const fs = statfsSync(store);
			return { total: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize };
		});
	const enoughFree = () => {
		const { total, free } = disk();
		return free >= total * policy.minFreeFraction;
	};
	const entries: { path: string; usedAt: number }[] = [];
	for (const folder of [...CACHE_FOLDERS, "tmp"]) {
		let names: string[];
		try {
			names = readdirSync(join(store, folder));
		} catch {
			continue;
		}
		for (const name of names) {
			const path = join(store, folder, name);
			const usedAt = statSync(path).mtimeMs;
			if (now - usedAt < policy.keepForMs) continue;
			// tmp: work a crashed session left behind; stale ones always go.
			if (folder === "tmp") rmSync(path, { recursive: true, force: true });
			else entries.push({ path, usedAt });
		}
	}
	const removed: string[] = [];
	entries.sort((a, b) => a.usedAt - b.usedAt);
	for (const entry of entries) {
		if (enoughFree()) break;
		rmSync(entry.path, { recursive: true, force: true });
		removed.push(entry.path);
	}
	return removed;
}
