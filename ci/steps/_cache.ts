import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { listProjectFiles } from "../git.ts";

/** sha256 over every project file's path and bytes (a deleted file counts as a change). */
export function hashProjectFiles(root: string, extra = ""): string {
	const hash = createHash("sha256").update(extra);
	for (const file of listProjectFiles(root)) {
		hash.update(`\n${file}\n`);
		try {
			hash.update(readFileSync(path.join(root, file)));
		} catch {
			hash.update("<missing>");
		}
	}
	return hash.digest("hex");
}

export function readCacheEntry<T>(cacheDir: string, name: string): T | undefined {
	try {
		return JSON.parse(readFileSync(path.join(cacheDir, `${name}.json`), "utf8")) as T;
	} catch {
		return undefined;
	}
}

export function writeCacheEntry(cacheDir: string, name: string, value: unknown): void {
	mkdirSync(cacheDir, { recursive: true });
	writeFileSync(path.join(cacheDir, `${name}.json`), JSON.stringify(value));
}
