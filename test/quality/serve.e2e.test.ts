// `serve` in the foreground (what a Dagger service runs) and `e2e --base-url` against it, for
// real: wrangler dev on a migrated, seeded local D1, Playwright in Debian's Chromium.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, waitForHttp200 } from "../../ci/steps/serve.ts";
import { answers, cli, copyFixture, ensureChromium, REPO } from "./_support.ts";

const copies: (() => void)[] = [];
const fixture = () => {
	const copy = copyFixture("worker-app");
	copies.push(copy.dispose);
	return copy.dir;
};
let server: ChildProcess | undefined;
afterAll(() => {
	if (server?.pid && server.exitCode === null) process.kill(-server.pid, "SIGKILL");
	for (const dispose of copies) dispose();
});

describe("workers-pipeline serve + e2e --base-url", () => {
	it("serves the migrated, seeded app until interrupted; e2e --base-url tests it without a build", async () => {
		const chromium = ensureChromium();
		const dir = fixture();
		const port = await freePort();
		let log = "";
		server = spawn(
			process.execPath,
			[
				path.join(REPO, "bin", "workers-pipeline.js"),
				"serve",
				"--cwd",
				dir,
				"--port",
				String(port),
			],
			{
				cwd: REPO,
				env: { ...process.env, CI: undefined, GITHUB_STEP_SUMMARY: undefined },
				stdio: ["ignore", "pipe", "pipe"],
				detached: true,
			},
		);
		server.stdout?.on("data", (c) => {
			log += c;
		});
		server.stderr?.on("data", (c) => {
			log += c;
		});
		const exited = new Promise<number | null>((resolve) => server?.once("exit", resolve));
		const ready = await waitForHttp200(`http://127.0.0.1:${port}/api/health`, {
			timeoutMs: 120_000,
			exited,
		});
		expect(ready.ok, log).toBe(true);

		const run = await cli(
			["e2e", "--cwd", dir, "--base-url", `http://127.0.0.1:${port}`, "--json"],
			{
				WORKERS_PIPELINE_CHROMIUM: chromium,
			},
		);
		expect(run.code, run.stdout).toBe(0);
		expect(run.json().steps[0]?.summary).toMatch(
			new RegExp(`^2 passed, 0 failed against http://127.0.0.1:${port}`),
		);
		expect(run.stderr).not.toContain("wrangler dev on");

		process.kill(server.pid as number, "SIGINT");
		// Ctrl-C is how a foreground serve stops: exit 130 (interrupted), as every command.
		expect(await exited).toBe(130);
		expect(log).toContain("served http://127.0.0.1:");
		expect(await answers(`http://127.0.0.1:${port}/`)).toBe(false);
	});
});
