// `e2e` on a plain Worker fixture, for real: wrangler dev, a local D1 migrated and seeded,
// Playwright in Debian's Chromium, and nothing left running afterwards.
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, removeProjects } from "../support/project.ts";
import { answers, cli, copyFixture, ensureChromium } from "./_support.ts";

let chromium: string;
const copies: (() => void)[] = [];
const fixture = () => {
	const copy = copyFixture("worker-app");
	copies.push(copy.dispose);
	return copy.dir;
};

beforeAll(() => {
	chromium = ensureChromium();
}, 20 * 60_000);
afterAll(() => {
	for (const dispose of copies) dispose();
	removeProjects();
});

describe("workers-pipeline e2e (plain Worker)", () => {
	it("serves the app with a migrated, seeded D1, runs the Playwright tests, keeps the report, stops the app", async () => {
		const dir = fixture();
		const run = await cli(["e2e", "--cwd", dir, "--json"], { WORKERS_PIPELINE_CHROMIUM: chromium });
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const step = run.json().steps[0];
		expect(step?.summary).toMatch(/^2 passed, 0 failed against http:\/\/127\.0\.0\.1:\d+/);
		expect(step?.summary).toContain("seeded from seed.sql");
		expect(step?.data).toMatchObject({ passed: 2, failed: 0, server: "wrangler" });
		expect(existsSync(path.join(dir, ".reports", "e2e", "html", "index.html"))).toBe(true);
		const results = JSON.parse(
			readFileSync(path.join(dir, ".reports", "e2e", "results.json"), "utf8"),
		);
		expect(results.stats.expected).toBe(2);
		// Stopped by PID: the port no longer answers.
		expect(await answers(step?.data?.baseUrl as string)).toBe(false);
	});

	it("fails with the test's file:line and keeps its trace when the seed is missing", async () => {
		const dir = fixture();
		rmSync(path.join(dir, "seed.sql"));
		const run = await cli(["e2e", "--cwd", dir, "--json"], { WORKERS_PIPELINE_CHROMIUM: chromium });
		expect(run.code).toBe(1);
		const report = run.json();
		expect(report.steps[0]?.summary).toMatch(/^1 passed, 1 failed/);
		const failed = report.findings.filter((f) => f.code === "E2E_TEST_FAILED");
		expect(failed).toHaveLength(1);
		expect(failed[0]?.file).toBe("e2e/notes.spec.ts");
		expect(failed[0]?.message).toContain("the page lists the seeded notes");
		const trace = path.join(
			dir,
			".reports",
			"e2e",
			"test-results",
			"notes-the-page-lists-the-seeded-notes",
			"trace.zip",
		);
		expect(existsSync(trace)).toBe(true);
	});

	it("waits for 200, not an open port: an app whose health answers 503 is never tested", async () => {
		const dir = fixture();
		const wrangler = path.join(dir, "wrangler.jsonc");
		writeFileSync(
			wrangler,
			readFileSync(wrangler, "utf8").replace(
				'"main"',
				'"vars": { "HEALTH_FORCE_ERROR": "1" },\n\t"main"',
			),
		);
		writeFileSync(
			path.join(dir, "workers-pipeline.jsonc"),
			JSON.stringify({
				lint: { biome: false, typecheck: false },
				e2e: { readyTimeoutSeconds: 25 },
			}),
		);
		const run = await cli(["e2e", "--cwd", dir, "--json"], { WORKERS_PIPELINE_CHROMIUM: chromium });
		expect(run.code).toBe(1);
		const finding = run.json().findings.find((f) => f.code === "E2E_APP_NOT_READY");
		expect(finding?.message).toMatch(
			/no 200 from http:\/\/127\.0\.0\.1:\d+\/api\/health in time .*it last answered 503/,
		);
		expect(existsSync(path.join(dir, ".reports", "e2e", "results.json"))).toBe(false);
	});

	it("is skipped, with what to add, when the project has no Playwright config", async () => {
		const dir = fixture();
		rmSync(path.join(dir, "playwright.config.ts"));
		const run = await cli(["e2e", "--cwd", dir, "--json"]);
		expect(run.code).toBe(0);
		const report = run.json();
		expect(report.steps[0]).toMatchObject({ ok: true, skipped: true });
		const hint = report.findings.find((f) => f.code === "E2E_NOT_CONFIGURED");
		expect(hint?.severity).toBe("warning");
		expect(hint?.message).toContain("npm install -D @playwright/test");
		expect(hint?.message).toContain("executablePath: process.env.WORKERS_PIPELINE_CHROMIUM");
	});

	it("fails with how to install one when no browser is available", async () => {
		const dir = fixture();
		const run = await cli(["e2e", "--cwd", dir, "--json"], {
			WORKERS_PIPELINE_CHROMIUM: path.join(dir, "no-such-chromium"),
		});
		expect(run.code).toBe(1);
		const finding = run.json().findings.find((f) => f.code === "E2E_NO_BROWSER");
		expect(finding?.message).toContain("apt-get install -y chromium");
	});

	it("finds the Playwright a workspace hoisted to its root, as the app's scripts do", async () => {
		const root = makeProject({
			prefix: "wp-e2e-hoisted-",
			files: {
				"package.json": JSON.stringify({ private: true, workspaces: ["apps/*"] }),
				// Stands for npm's hoisted link; only its --version is asked before the browser check.
				"node_modules/.bin/playwright": '#!/bin/sh\necho "Version 1.99.0"\n',
				"apps/web/package.json": JSON.stringify({ name: "web", private: true }),
				"apps/web/playwright.config.ts": "export default {};\n",
				"apps/web/wrangler.jsonc": '{ "name": "web", "main": "src/index.ts" }\n',
			},
		});
		chmodSync(path.join(root, "node_modules/.bin/playwright"), 0o755);
		const run = await cli(["e2e", "--cwd", path.join(root, "apps/web"), "--json"], {
			WORKERS_PIPELINE_CHROMIUM: path.join(root, "no-such-chromium"),
		});
		const codes = run.json().findings.map((f) => f.code);
		expect(codes).not.toContain("E2E_PLAYWRIGHT_MISSING");
		expect(codes).toContain("E2E_NO_BROWSER");
	});

	it("refuses a --base-url that is not a URL (exit 2)", async () => {
		const run = await cli(["e2e", "--cwd", fixture(), "--base-url", "localhost:8787"]);
		expect(run.code).toBe(2);
		expect(run.stderr).toContain(
			'--base-url expects an absolute http(s) URL, not "localhost:8787"',
		);
	});
});
