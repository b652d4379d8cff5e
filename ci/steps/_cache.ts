import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_REPORT_DIR } from "../constants.ts";

const SKIP_DIRS = new Set([
	"node_modules",
	".git",
	".next",
	".open-next",
	".wrangler",
	DEFAULT_REPORT_DIR,
	".tools",
	".dagger",
]);

/** The project's files: git's view (tracked and untracked, not ignored) when it is a repository. */
export function listProjectFiles(root: string): string[] {
	try {
		const out = execFileSync(
			"git",
			["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
			{
				cwd: root,
				stdio: ["ignore", "pipe", "ignore"],
				maxBuffer: 64 * 1024 * 1024,
			},
		);
		return [...new Set(out.toString("utf8").split("\0").filter(Boolean))].sort();
	} catch {
		const walk = (dir: string): string[] =>
			readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
				const rel = dir ? `${dir}/${e.name}` : e.name;
				if (e.isDirectory()) return SKIP_DIRS.has(e.name) ? [] : walk(rel);
				return e.isFile() ? [rel] : [];
			});
		return walk("").sort();
	}
}

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
