import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The lockfile must be portable: `npm ci` on macOS, Windows or linux-arm64 installs only what the
// lockfile records, so a lockfile written on one platform without the others' optional builds
// leaves a Mac without workerd (issue 9, item 3).

interface LockEntry {
	version?: string;
	os?: string[];
	cpu?: string[];
	optional?: boolean;
	dependencies?: Record<string, string>;
	optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(
	readFileSync(fileURLToPath(new URL("../../package-lock.json", import.meta.url)), "utf8"),
) as {
	lockfileVersion: number;
	packages: Record<string, LockEntry>;
};

// npm's lookup: the package's own node_modules, then each enclosing node_modules up to the root.
function resolveIn(
	packages: Record<string, LockEntry>,
	from: string,
	name: string,
): string | undefined {
	let base = from;
	for (;;) {
		const candidate = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
		if (candidate in packages) return candidate;
		if (!base) return undefined;
		const cut = base.lastIndexOf("/node_modules/");
		base = cut < 0 ? "" : base.slice(0, cut);
	}
}

describe("package-lock.json", () => {
	it("is a v3 lockfile (what npm ci on npm >= 9 reads without rewriting)", () => {
		expect(lock.lockfileVersion).toBe(3);
	});

	it("records every optional dependency of every locked package, for every platform", () => {
		const missing: string[] = [];
		for (const [path, entry] of Object.entries(lock.packages)) {
			if (path !== "" && !path.includes("node_modules/")) continue; // workspace links
			for (const name of Object.keys(entry.optionalDependencies ?? {})) {
				if (!resolveIn(lock.packages, path, name)) missing.push(`${path || "(root)"} → ${name}`);
			}
		}
		expect(missing, "run `npm install --package-lock-only` to record them").toEqual([]);
	});

	it.each([
		["@cloudflare/workerd-darwin-arm64", "darwin", "arm64"],
		["@cloudflare/workerd-darwin-64", "darwin", "x64"],
		["@cloudflare/workerd-windows-64", "win32", "x64"],
		["@cloudflare/workerd-linux-arm64", "linux", "arm64"],
		["@biomejs/cli-darwin-arm64", "darwin", "arm64"],
		["@biomejs/cli-win32-x64", "win32", "x64"],
		["@biomejs/cli-linux-arm64", "linux", "arm64"],
		["@esbuild/darwin-arm64", "darwin", "arm64"],
		["@esbuild/win32-x64", "win32", "x64"],
		["@esbuild/linux-arm64", "linux", "arm64"],
	])("locks %s for %s-%s", (name, os, cpu) => {
		const entries = Object.entries(lock.packages).filter(([path]) =>
			path.endsWith(`node_modules/${name}`),
		);
		expect(entries.length, `${name} is missing from package-lock.json`).toBeGreaterThan(0);
		for (const [, entry] of entries) {
			expect(entry.optional).toBe(true);
			expect(entry.os).toContain(os);
			expect(entry.cpu).toContain(cpu);
		}
	});
});
