// The pipeline-wide parts of running a step: its timeout (configurable, with a clear message)
// and the cache hit/miss line.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../ci/config/load.ts";
import { runProcess } from "../../ci/process.ts";
import type { StepResult } from "../../ci/report/model.ts";
import { defineStep } from "../../ci/steps/_step.ts";
import { cacheStatus, runStepSafely, stepTimeoutSeconds } from "../../ci/steps/ci.ts";
import { cli, copyFixture } from "./_support.ts";

const ctx = { cwd: process.cwd(), env: process.env, progress: () => {} };
const result = (fields: Partial<StepResult>): StepResult => ({
	name: "x",
	ok: true,
	durationMs: 1,
	summary: "done",
	findings: [],
	...fields,
});

describe("cacheStatus()", () => {
	it.each([
		[{ data: { cached: true } }, "hit"],
		[{ data: { cached: false } }, "miss"],
		[{ data: { parity: { wrangler: { cached: true } } } }, "hit"],
		[{ data: { cached: true }, skipped: true }, undefined],
		[{ data: {} }, undefined],
	] as const)("%j → %s", (fields, expected) => {
		expect(cacheStatus(result(fields as Partial<StepResult>))).toBe(expected);
	});
});

describe("runStepSafely()", () => {
	it("stops a step that runs past its timeout, kills its process and says which setting to raise", async () => {
		let pid: number | undefined;
		const slow = defineStep<{ marker: string }>({
			name: "test",
			async run(c) {
				const run = runProcess({
					file: process.execPath,
					args: ["-e", "setTimeout(() => {}, 60000)"],
					cwd: process.cwd(),
					signal: c.signal,
				});
				await new Promise((r) => setTimeout(r, 200));
				pid = Number(
					(
						await runProcess({
							file: "pgrep",
							args: ["-n", "-f", "setTimeout\\(\\(\\) => \\{\\}, 60000\\)"],
							cwd: "/",
						})
					).stdout.trim(),
				);
				await run;
				return result({ name: "test", summary: "finished" });
			},
		});
		const out = await runStepSafely(slow, ctx, { marker: "x" }, { timeoutSeconds: 1 });
		expect(out.ok).toBe(false);
		expect(out.summary).toBe("timed out after 1 s (timeouts.test)");
		expect(out.findings[0]?.code).toBe("STEP_TIMEOUT");
		expect(out.findings[0]?.message).toContain('"timeouts": { "test": <seconds> }');
		expect(pid).toBeGreaterThan(0);
		expect(() => process.kill(pid as number, 0)).toThrow();
	});

	it("adds the cache hit/miss to the summary", async () => {
		const cached = defineStep<object>({
			name: "build",
			run: async () => result({ data: { cached: true } }),
		});
		const out = await runStepSafely(cached, ctx, {});
		expect(out.summary).toBe("done · cache hit");
		expect(out.data?.cache).toBe("hit");
	});
});

describe("timeouts in workers-pipeline.jsonc", () => {
	it("uses timeouts.<step> over the default", () => {
		const copy = copyFixture("worker-app");
		try {
			writeFileSync(
				path.join(copy.dir, "workers-pipeline.jsonc"),
				JSON.stringify({ timeouts: { e2e: 7 } }),
			);
			const project = loadProjectConfig({ cwd: copy.dir });
			expect(stepTimeoutSeconds(project, "e2e")).toBe(7);
			expect(stepTimeoutSeconds(project, "lint")).toBe(15 * 60);
			expect(stepTimeoutSeconds(project, "serve")).toBeUndefined();
		} finally {
			copy.dispose();
		}
	});

	it("refuses an unknown step name (exit 2)", async () => {
		const copy = copyFixture("worker-app");
		try {
			writeFileSync(
				path.join(copy.dir, "workers-pipeline.jsonc"),
				JSON.stringify({ timeouts: { tests: 7 } }),
			);
			const run = await cli(["test", "--cwd", copy.dir]);
			expect(run.code).toBe(2);
			expect(run.stderr).toMatch(/tests/);
		} finally {
			copy.dispose();
		}
	});

	it("a hung test command is stopped at timeouts.test and the run fails", async () => {
		const copy = copyFixture("worker-app");
		try {
			writeFileSync(
				path.join(copy.dir, "workers-pipeline.jsonc"),
				JSON.stringify({
					test: { command: ["node", "-e", "setTimeout(() => {}, 120000)"] },
					timeouts: { test: 1 },
				}),
			);
			const run = await cli(["test", "--cwd", copy.dir, "--json"]);
			expect(run.code).toBe(1);
			expect(run.json().findings.map((f) => f.code)).toContain("STEP_TIMEOUT");
		} finally {
			copy.dispose();
		}
	});
});
