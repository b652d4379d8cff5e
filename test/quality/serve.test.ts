// The parts of starting an app locally: which command, which seed file, when it is ready, what
// a not-ready app reports; Playwright's JSON results.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../ci/config/load.ts";
import { findChromium, findPlaywrightConfig, parsePlaywrightJson } from "../../ci/steps/e2e.ts";
import {
	findSeedFile,
	formatNotReady,
	freePort,
	planDevArgs,
	planServeCommand,
	planWranglerDev,
	waitForHttp200,
} from "../../ci/steps/serve.ts";
import { copyFixture, REPO } from "./_support.ts";

const copies: (() => void)[] = [];
const fixture = () => {
	const copy = copyFixture("worker-app");
	copies.push(copy.dispose);
	return copy.dir;
};
afterAll(() => {
	for (const dispose of copies) dispose();
});

describe("planDevArgs() / planWranglerDev()", () => {
	const options = { host: "0.0.0.0", port: 8787, inspectorPort: 9229, persistDir: "/tmp/d1" };
	it("binds the app to the host and the inspector to loopback, persists D1, never asks for input", () => {
		expect(planDevArgs(options)).toEqual([
			...["--ip", "0.0.0.0", "--port", "8787"],
			...["--inspector-ip", "127.0.0.1", "--inspector-port", "9229"],
			...["--persist-to", "/tmp/d1", "--show-interactive-dev-session=false"],
		]);
	});
	it("passes each var as --var NAME:value", () => {
		expect(planDevArgs({ ...options, vars: { A: "1", B: "x:y" } }).slice(-4)).toEqual([
			...["--var", "A:1", "--var", "B:x:y"],
		]);
	});
	it("runs the given wrangler on the given config", () => {
		const argv = planWranglerDev({ ...options, wranglerBin: "/w.js", config: "wrangler.v1.json" });
		expect(argv).toEqual(["/w.js", "dev", "--config", "wrangler.v1.json", ...planDevArgs(options)]);
	});
});

describe("planServeCommand()", () => {
	const base = { host: "127.0.0.1", port: 8787, inspectorPort: 9229, persistDir: "/tmp/d1" };
	it("runs `wrangler dev` for a plain Worker, bound to the host and port, on the persisted D1", () => {
		const project = loadProjectConfig({ cwd: fixture() });
		const plan = planServeCommand({
			...base,
			project,
			opennextBin: undefined,
			wranglerBin: "/w.js",
		});
		expect(plan.kind).toBe("wrangler");
		expect(plan.args.slice(0, 2)).toEqual(["/w.js", "dev"]);
		expect(plan.args.join(" ")).toContain("--ip 127.0.0.1 --port 8787");
		expect(plan.args.join(" ")).toContain("--persist-to /tmp/d1");
	});
	it("leaves out --config after a Vite-plugin build, so wrangler follows the config it wrote for its output", () => {
		const dir = fixture();
		const project = loadProjectConfig({ cwd: dir });
		const args = () =>
			planServeCommand({ ...base, project, opennextBin: undefined, wranglerBin: "/w.js" }).args;
		expect(args()).toContain("--config");
		// What @cloudflare/vite-plugin's build leaves (wrangler findRedirectedWranglerConfig).
		mkdirSync(path.join(dir, ".wrangler/deploy"), { recursive: true });
		writeFileSync(
			path.join(dir, ".wrangler/deploy/config.json"),
			JSON.stringify({ configPath: "../../build/server/wrangler.json" }),
		);
		expect(args()).not.toContain("--config");
		expect(args().slice(0, 2)).toEqual(["/w.js", "dev"]);
	});
	it("runs `opennextjs-cloudflare preview` for an OpenNext app", () => {
		const project = loadProjectConfig({ cwd: REPO });
		const plan = planServeCommand({
			...base,
			project,
			opennextBin: "/bin/on",
			wranglerBin: "/w.js",
		});
		expect(plan).toMatchObject({ kind: "opennext", file: "/bin/on" });
		expect(plan.args[0]).toBe("preview");
		expect(plan.args).toContain("--persist-to");
	});
	it("passes the newest migration as the expected-head var, as deploy does, and nothing without one", () => {
		const project = loadProjectConfig({ cwd: fixture() });
		const plan = (expectedHead?: string) =>
			planServeCommand({
				...base,
				project,
				opennextBin: undefined,
				wranglerBin: "/w.js",
				expectedHead,
			});
		expect(plan("0003_tags.sql").args.join(" ")).toContain(
			"--var WORKERS_PIPELINE_EXPECTED_HEAD:0003_tags.sql",
		);
		expect(plan().args).not.toContain("--var");
	});
	it("refuses an OpenNext app without opennextjs-cloudflare installed", () => {
		const project = loadProjectConfig({ cwd: REPO });
		expect(() =>
			planServeCommand({ ...base, project, opennextBin: undefined, wranglerBin: "/w.js" }),
		).toThrow(/npm install/);
	});
});

describe("findSeedFile()", () => {
	it.each([
		["seed.sql at the root", undefined, "seed.sql"],
		["e2e.seed in the config", "db/other.sql", "db/other.sql"],
	])("finds %s", (_, configured, expected) => {
		const dir = fixture();
		if (configured) {
			writeFileSync(path.join(dir, configured.replace("db/", "")), "SELECT 1;");
			writeFileSync(
				path.join(dir, "workers-pipeline.jsonc"),
				JSON.stringify({ e2e: { seed: configured.replace("db/", "") } }),
			);
		}
		const project = loadProjectConfig({ cwd: dir });
		expect(path.relative(dir, findSeedFile(project) ?? "")).toBe(
			expected.replace(configured ? "db/" : "", ""),
		);
	});
	it("refuses a configured seed file that does not exist", () => {
		const dir = fixture();
		writeFileSync(
			path.join(dir, "workers-pipeline.jsonc"),
			JSON.stringify({ e2e: { seed: "nope.sql" } }),
		);
		expect(() => findSeedFile(loadProjectConfig({ cwd: dir }))).toThrow(
			/e2e\.seed .* nope\.sql, which does not exist/,
		);
	});
});

describe("waitForHttp200() / formatNotReady()", () => {
	it("reports a port where nothing listens as never answering", async () => {
		const url = `http://127.0.0.1:${await freePort()}/api/health`;
		const outcome = await waitForHttp200(url, { timeoutMs: 1200 });
		expect(outcome).toMatchObject({ ok: false, reason: "timeout" });
		expect(formatNotReady(url, outcome, "boot log").message).toMatch(
			/it never answered .*\n[\s\S]*boot log/,
		);
	});
	it.each([
		["exited", "the app's process exited before it answered 200"],
		["aborted", "interrupted before the app answered 200"],
	] as const)("explains %s", (reason, text) => {
		expect(formatNotReady("http://x", { ok: false, reason }, "").message).toContain(text);
	});
});

describe("findChromium() / findPlaywrightConfig()", () => {
	it("takes e2e.browser or $WORKERS_PIPELINE_CHROMIUM only when the file exists, else chromium on PATH", () => {
		const dir = fixture();
		const bin = path.join(dir, "bin");
		mkdirSync(bin);
		writeFileSync(path.join(bin, "chromium-browser"), "");
		const project = loadProjectConfig({ cwd: dir });
		expect(findChromium(project, { PATH: `/nonexistent:${bin}` })).toBe(
			path.join(bin, "chromium-browser"),
		);
		expect(
			findChromium(project, { PATH: bin, WORKERS_PIPELINE_CHROMIUM: path.join(dir, "nope") }),
		).toBeUndefined();
		expect(findChromium(project, { PATH: "/nonexistent" })).toBeUndefined();
		expect(findPlaywrightConfig(dir)).toBe("playwright.config.ts");
	});
});

describe("parsePlaywrightJson()", () => {
	it("counts results and lists failures with nested suite titles", () => {
		const report = {
			config: { rootDir: "/p/e2e" },
			stats: { expected: 3, unexpected: 1, flaky: 1, skipped: 2 },
			suites: [
				{
					title: "home.spec.ts",
					specs: [{ title: "ok", file: "home.spec.ts", line: 3, tests: [{ status: "expected" }] }],
					suites: [
						{
							title: "table",
							specs: [
								{
									title: "rows",
									file: "home.spec.ts",
									line: 9,
									tests: [
										{
											status: "unexpected",
											results: [{ error: { message: "\u001b[31mboom\u001b[39m" } }],
										},
									],
								},
							],
						},
					],
				},
			],
			errors: [{ message: "global setup failed" }],
		};
		const counts = parsePlaywrightJson(JSON.stringify(report));
		expect(counts).toMatchObject({ passed: 3, failed: 1, flaky: 1, skipped: 2, rootDir: "/p/e2e" });
		expect(counts.failures).toEqual([
			{ title: "table › rows", file: "home.spec.ts", line: 9, message: "boom" },
			{ title: "(outside a test)", message: "global setup failed" },
		]);
	});
});
