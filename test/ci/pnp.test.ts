import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findPnpRuntime, pnpBins, withPnpNodeOptions } from "../../ci/pnp.ts";
import { makeProject, removeProjects } from "../support/project.ts";

// The real Yarn PnP install (yarn 4, its .pnp.cjs, tsc from a zip) is test/adopt/yarn-pnp.e2e.test.ts.
afterAll(removeProjects);

const tree = (files: Record<string, string>, prefix = "wp-pnp-") => makeProject({ files, prefix });

describe("findPnpRuntime()", () => {
	it("finds the app's own .pnp.cjs and the loader beside it", () => {
		const dir = tree({ "package.json": "{}", ".pnp.cjs": "", ".pnp.loader.mjs": "" });
		expect(findPnpRuntime(dir)).toEqual({
			file: path.join(dir, ".pnp.cjs"),
			loader: path.join(dir, ".pnp.loader.mjs"),
		});
	});

	it("finds a Yarn workspace's .pnp.cjs from a member app", () => {
		const dir = tree({
			"package.json": JSON.stringify({ workspaces: ["apps/*"] }),
			".pnp.cjs": "",
			"apps/api/package.json": "{}",
		});
		expect(findPnpRuntime(path.join(dir, "apps/api"))).toEqual({
			file: path.join(dir, ".pnp.cjs"),
		});
	});

	it("ignores a .pnp.cjs left beside a node_modules install (Yarn's node-modules linker, npm)", () => {
		for (const state of ["node_modules/.yarn-state.yml", "node_modules/.package-lock.json"]) {
			const dir = tree({ "package.json": "{}", ".pnp.cjs": "", [state]: "" });
			expect(findPnpRuntime(dir)).toBeUndefined();
		}
	});

	it("ignores a .pnp.cjs above an app that is no workspace member (a node_modules install)", () => {
		const dir = tree({ ".pnp.cjs": "", "app/package.json": "{}" });
		expect(findPnpRuntime(path.join(dir, "app"))).toBeUndefined();
		expect(pnpBins(path.join(dir, "app")).size).toBe(0);
	});
});

describe("withPnpNodeOptions()", () => {
	it("makes a child Node preload the runtime, also from a path with spaces and quotes", () => {
		const dir = tree({ 'a "b" c/.pnp.cjs': "process.env.PNP_LOADED = 'yes';" }, "wp pnp ");
		const runtime = { file: path.join(dir, 'a "b" c/.pnp.cjs') };
		const options = withPnpNodeOptions(runtime, "--no-warnings");
		const child = spawnSync(process.execPath, ["-p", "process.env.PNP_LOADED"], {
			env: { ...process.env, NODE_OPTIONS: options },
			encoding: "utf8",
		});
		expect(child.stderr).toBe("");
		expect(child.stdout.trim()).toBe("yes");
		expect(options.startsWith("--no-warnings ")).toBe(true);
	});

	it("keeps NODE_OPTIONS as they are when they load the runtime already (under yarn run)", () => {
		const runtime = { file: "/app/.pnp.cjs", loader: "/app/.pnp.loader.mjs" };
		const yarns = "--require /app/.pnp.cjs --experimental-loader file:///app/.pnp.loader.mjs";
		expect(withPnpNodeOptions(runtime, yarns)).toBe(yarns);
		expect(withPnpNodeOptions(runtime, undefined)).toBe(
			'--require "/app/.pnp.cjs" --experimental-loader "file:///app/.pnp.loader.mjs"',
		);
	});
});
