import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../../ci/config/load.ts";
import { D1ApiError, UserError } from "../../../ci/errors.ts";
import { defineStep, type StepContext } from "../../../ci/steps/_step.ts";
import { planMigrationTests, runStepSafely } from "../../../ci/steps/ci.ts";
import { captureCli } from "../../support/cli.ts";

const ctx: StepContext = { cwd: ".", env: {}, progress: () => {} };
const throwing = (error: unknown) =>
	defineStep<undefined>({
		name: "boom",
		run: async () => {
			throw error;
		},
	});

describe("runStepSafely()", () => {
	it.each([
		["a TypeError", new TypeError("x is undefined")],
		["a wrangler failure", new UserError("wrangler exited 1", "E_WRANGLER")],
		["a D1 5xx", new D1ApiError("D1 query failed (HTTP 503)", { status: 503 })],
	])("turns %s into a failed step, so the other steps still report", async (_, error) => {
		const result = await runStepSafely(throwing(error), ctx, undefined);
		expect(result).toMatchObject({
			name: "boom",
			ok: false,
			findings: [{ code: "STEP_ERROR", severity: "error", message: (error as Error).message }],
		});
	});

	it.each([
		["bad usage", new UserError("unknown flag")],
		["an invalid config", new UserError("wrangler.jsonc: bad", "E_CONFIG_INVALID")],
		["a refused token", new D1ApiError("HTTP 401", { status: 401 })],
	])("lets %s end the whole run (exit 2)", async (_, error) => {
		await expect(runStepSafely(throwing(error), ctx, undefined)).rejects.toBe(error);
	});
});

describe("ci with several D1 bindings", () => {
	const temps: string[] = [];
	afterAll(() => {
		for (const dir of temps) rmSync(dir, { recursive: true, force: true });
	});

	it("should test every migrations set, each named by its binding, instead of asking for --binding", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-ci-bindings-"));
		temps.push(dir);
		const files: Record<string, string> = {
			"package.json": JSON.stringify({ name: "app" }),
			"wrangler.jsonc": `{ "name": "app", "d1_databases": [
				{ "binding": "DB", "migrations_dir": "migrations" },
				{ "binding": "EVENTS", "migrations_dir": "events" },
			] }\n`,
			"migrations/0001_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
			// EVENTS' set does not replay: ci must see it, not only the first binding's.
			"events/0001_events.sql": "CREATE TABLE e (id INTEGER PRIMARY KEY);\n",
			"events/0002_broken.sql": "ALTER TABLE nope ADD COLUMN x TEXT;\n",
		};
		for (const [rel, text] of Object.entries(files)) {
			mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
			writeFileSync(path.join(dir, rel), text);
		}
		const project = loadProjectConfig({ cwd: dir });
		expect(planMigrationTests(project)).toEqual([
			{ name: "migration-test DB", env: undefined, binding: "DB" },
			{ name: "migration-test EVENTS", env: undefined, binding: "EVENTS" },
		]);
		const run = await captureCli(["ci", "--no-build", "--no-parity", "--json", "--cwd", dir], {
			cwd: dir,
		});
		const report = JSON.parse(run.stdout) as {
			steps: { name: string }[];
			findings: { step: string; code: string }[];
		};
		const tests = report.steps.map((s) => s.name).filter((n) => n.startsWith("migration-test"));
		expect(tests).toEqual(["migration-test DB", "migration-test EVENTS"]);
		const failed = report.findings.filter((f) => f.code === "REPLAY_FAILED").map((f) => f.step);
		expect(failed).toEqual(["migration-test EVENTS"]);
		// migration-test alone does the same unless one set is chosen.
		const alone = await captureCli(["migration-test", "--json", "--cwd", dir], { cwd: dir });
		const steps = (JSON.parse(alone.stdout) as { steps: { name: string; ok: boolean }[] }).steps;
		expect(steps.map((s) => [s.name, s.ok])).toEqual([
			["migration-test DB", false],
			["migration-test EVENTS", false],
		]);
		const one = await captureCli(["migration-test", "--json", "--binding", "DB", "--cwd", dir], {
			cwd: dir,
		});
		expect(
			(JSON.parse(one.stdout) as { steps: { name: string }[] }).steps.map((s) => s.name),
		).toEqual(["migration-test"]);
		expect(run.code).toBe(1);
	});

	it("should keep one plain migration-test for one set", () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-ci-one-"));
		temps.push(dir);
		writeFileSync(
			path.join(dir, "wrangler.jsonc"),
			'{ "name": "app", "d1_databases": [{ "binding": "DB" }] }',
		);
		expect(planMigrationTests(loadProjectConfig({ cwd: dir }))).toEqual([
			{ name: "migration-test" },
		]);
	});
});

describe("ci: lint's type generation and the build", () => {
	const temps: string[] = [];
	afterAll(() => {
		for (const dir of temps) rmSync(dir, { recursive: true, force: true });
	});

	// `wrangler types` writes GlobalProps.mainModule only when `main` exists
	// (wrangler type-generation/index.ts getTypesEntrypoint): where the build writes `main`, the
	// type generation must meet the built file, or a fresh clone's types differ from a laptop's.
	it("runs the type generation after the build when the build writes the Worker's main", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-ci-typegen-"));
		temps.push(dir);
		const files: Record<string, string> = {
			"package.json": JSON.stringify({
				name: "app",
				scripts: {
					"cf-typegen": `node -e "require('fs').writeFileSync('seen.txt', String(require('fs').existsSync('dist/index.js')))"`,
				},
			}),
			"tsconfig.json": "{}\n",
			".gitignore": "dist/\nseen.txt\n",
			// A build that takes a moment, then writes main.
			"build.mjs":
				"import { mkdirSync, writeFileSync } from 'node:fs';\nawait new Promise((r) => setTimeout(r, 1500));\nmkdirSync('dist', { recursive: true });\nwriteFileSync('dist/index.js', 'export default { fetch() { return new Response(\"ok\"); } };\\n');\n",
			"wrangler.jsonc": `{ "name": "app", "main": "dist/index.js", "compatibility_date": "2026-06-01" }\n`,
			"workers-pipeline.jsonc": JSON.stringify({
				lint: { biome: false, typecheckCommand: ["node", "-e", "0"] },
				build: { command: ["node", "build.mjs"], output: "dist" },
			}),
		};
		for (const [name, text] of Object.entries(files)) {
			mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
			writeFileSync(path.join(dir, name), text);
		}
		await captureCli(["ci", "--json", "--cwd", dir], { cwd: dir, env: {} });
		expect(readFileSync(path.join(dir, "seen.txt"), "utf8")).toBe("true");
	}, 120_000);

	// A project's own `wrangler types --check` (SvelteKit's template runs it in `build` and `check`)
	// passes only in the state its committed types were generated in: lint meets that state.
	const TYPES_HEADER =
		"/* eslint-disable */\n// Generated by Wrangler by running `wrangler types` (hash: 0123)\ninterface __BaseEnv_Env {\n\tDB: D1Database;\n}\n";
	it.each([
		[
			"with",
			`${TYPES_HEADER}declare namespace Cloudflare {\n\tinterface GlobalProps {\n\t\tmainModule: typeof import("./dist/index");\n\t}\n}\n`,
			"true",
		],
		[
			"without",
			`${TYPES_HEADER}declare namespace Cloudflare {\n\tinterface Env extends __BaseEnv_Env {}\n}\n`,
			"false",
		],
	])(
		"typechecks where committed types %s the built main module were made",
		async (_, types, sawMain) => {
			const dir = mkdtempSync(path.join(tmpdir(), "wp-ci-types-order-"));
			temps.push(dir);
			const files: Record<string, string> = {
				// No type generation to wait on: the typecheck runs as soon as lint may start.
				"package.json": JSON.stringify({ name: "app" }),
				"worker-configuration.d.ts": types,
				".gitignore": "dist/\nseen.txt\nbuild-saw.txt\n",
				// Records whether lint had run when the build started; takes a moment, then writes main.
				"build.mjs":
					"import { existsSync, mkdirSync, writeFileSync } from 'node:fs';\nwriteFileSync('build-saw.txt', String(existsSync('seen.txt')));\nawait new Promise((r) => setTimeout(r, 1500));\nmkdirSync('dist', { recursive: true });\nwriteFileSync('dist/index.js', 'export default { fetch() { return new Response(\"ok\"); } };\\n');\n",
				"wrangler.jsonc": `{ "name": "app", "main": "dist/index.js", "compatibility_date": "2026-06-01" }\n`,
				"workers-pipeline.jsonc": JSON.stringify({
					lint: {
						biome: false,
						typecheckCommand: [
							"node",
							"-e",
							"require('fs').writeFileSync('seen.txt', String(require('fs').existsSync('dist/index.js')))",
						],
					},
					build: { command: ["node", "build.mjs"], output: "dist" },
				}),
			};
			for (const [name, text] of Object.entries(files)) {
				mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
				writeFileSync(path.join(dir, name), text);
			}
			await captureCli(["ci", "--json", "--cwd", dir], { cwd: dir, env: {} });
			expect(readFileSync(path.join(dir, "seen.txt"), "utf8")).toBe(sawMain);
			// Before the build means before it starts (it writes main while it runs), and it still runs.
			expect(readFileSync(path.join(dir, "build-saw.txt"), "utf8")).toBe(
				sawMain === "false" ? "true" : "false",
			);
			expect(readFileSync(path.join(dir, "dist/index.js"), "utf8")).toContain("fetch");
		},
		120_000,
	);
});
