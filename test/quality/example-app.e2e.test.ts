// The example app's own Playwright tests (e2e/) through `workers-pipeline e2e`, on the shared
// OpenNext build of the end-to-end suites: served by `opennextjs-cloudflare preview` on a local
// D1 migrated and seeded from seed.sql.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_TIMEOUT_MS, sharedBuild, withBuildLock } from "../app/_app.ts";
import { cli, ensureChromium } from "./_support.ts";

const reportDir = mkdtempSync(path.join(tmpdir(), "wp-quality-example-"));
let chromium: string;

beforeAll(
	async () => {
		chromium = ensureChromium();
		await sharedBuild("matching-stamp");
	},
	BUILD_TIMEOUT_MS + 20 * 60_000,
);
afterAll(() => rmSync(reportDir, { recursive: true, force: true }));

describe("workers-pipeline e2e on the example app", () => {
	it(
		"reuses the build, serves it with OpenNext's preview and passes e2e/ (seeded rows, /api/health)",
		async () => {
			// Held so no other suite rebuilds .open-next/ while it is served.
			const run = await withBuildLock(() =>
				cli(["e2e", "--report-dir", reportDir, "--json"], {
					WORKERS_PIPELINE_CHROMIUM: chromium,
					WORKERS_PIPELINE_VERSION: undefined,
					GITHUB_STEP_SUMMARY: undefined,
				}),
			);
			expect(run.code, run.stdout + run.stderr).toBe(0);
			const step = run.json().steps[0];
			expect(step?.summary).toMatch(/^2 passed, 0 failed against http:\/\/127\.0\.0\.1:\d+/);
			expect(step?.data).toMatchObject({ server: "opennext", cache: "hit", passed: 2 });
			expect(existsSync(path.join(reportDir, "e2e", "html", "index.html"))).toBe(true);
		},
		10 * 60_000,
	);
});
