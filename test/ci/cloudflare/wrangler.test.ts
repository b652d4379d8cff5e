import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveWranglerBin, runWrangler } from "../../../ci/cloudflare/wrangler.ts";

const REPO = path.resolve(import.meta.dirname, "../../..");
const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A project dir; `wranglerAt` installs a wrangler manifest (its "bin" is all resolution reads). */
function project(options: { wranglerAt?: string; bin?: unknown } = {}): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-wrangler-"));
	dirs.push(dir);
	const app = path.join(dir, "apps", "web");
	mkdirSync(app, { recursive: true });
	writeFileSync(path.join(app, "package.json"), '{ "name": "web" }\n');
	if (options.wranglerAt) {
		const pkg = path.join(dir, options.wranglerAt, "node_modules", "wrangler");
		mkdirSync(pkg, { recursive: true });
		writeFileSync(
			path.join(pkg, "package.json"),
			JSON.stringify({ name: "wrangler", version: "4.0.0", bin: options.bin }),
		);
	}
	return app;
}

describe("resolveWranglerBin()", () => {
	it.each([
		["the app's own node_modules", "apps/web", { wrangler: "./bin/wrangler.js" }, "apps/web"],
		["a monorepo root's hoisted install", ".", { wrangler: "./bin/wrangler.js" }, "."],
		["a string bin", "apps/web", "cli.js", "apps/web"],
	])("picks the project's wrangler from %s", (_, at, bin, base) => {
		const app = project({ wranglerAt: at, bin });
		const root = path.resolve(app, "../..");
		const expected = path.join(
			root,
			base,
			"node_modules/wrangler",
			typeof bin === "string" ? bin : "bin/wrangler.js",
		);
		expect(resolveWranglerBin(app)).toBe(expected);
	});

	it("falls back to the wrangler workers-pipeline depends on", () => {
		expect(resolveWranglerBin(project())).toBe(
			path.join(REPO, "node_modules/wrangler/bin/wrangler.js"),
		);
		expect(resolveWranglerBin()).toBe(path.join(REPO, "node_modules/wrangler/bin/wrangler.js"));
	});
});

describe("runWrangler()", () => {
	// wrangler colours its output through chalk whenever FORCE_COLOR=1 is set (as some CI runners
	// do), TTY or not: "Resource location:" comes red and bold.
	it("returns no ANSI codes even when the caller's environment forces colour", async () => {
		const cwd = mkdtempSync(path.join(tmpdir(), "wp-wrangler-color-"));
		dirs.push(cwd);
		const chunks: string[] = [];
		const result = await runWrangler({
			args: ["d1", "migrations", "apply", "DB", "--local"],
			cwd,
			env: { PATH: process.env.PATH, HOME: cwd, FORCE_COLOR: "1", WRANGLER_HIDE_BANNER: "false" },
			onOutput: (chunk) => chunks.push(chunk),
			timeoutMs: 60_000,
		});
		const all = `${result.stdout}${result.stderr}`;
		expect(all).toContain("Resource location");
		expect(all.includes("\u001b[")).toBe(false);
		expect(chunks.join("").includes("\u001b[")).toBe(false);
	});
});
