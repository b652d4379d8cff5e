// deploy and rollback without --env work on the top-level Worker, as wrangler does (issue 9,
// item 4): real wrangler against the loopback Cloudflare API, which Worker it asks about.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_FAILED, EXIT_USAGE, runCli } from "../../../ci/cli/main.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";

const TOKEN = "test-token-top-level";
const ACCOUNT = "0123456789abcdef0123456789abcdef";

let api: CloudflareApi;
let base: string;
beforeAll(async () => {
	api = await startCloudflareApi({ token: TOKEN, accountId: ACCOUNT, log: () => {} });
	base = mkdtempSync(path.join(tmpdir(), "wp-top-level-"));
	// env.staging has no name: wrangler calls its Worker "app-staging".
	writeFileSync(
		path.join(base, "wrangler.jsonc"),
		JSON.stringify({ name: "app", main: "index.js", env: { staging: {} } }),
	);
});
afterAll(async () => {
	await api.close();
	rmSync(base, { recursive: true, force: true });
});

async function cli(argv: string[]) {
	let stdout = "";
	let stderr = "";
	const home = path.join(base, "home");
	const code = await runCli(argv, {
		stdout: (t) => {
			stdout += t;
		},
		stderr: (t) => {
			stderr += t;
		},
		env: {
			PATH: process.env.PATH,
			HOME: home,
			XDG_CONFIG_HOME: path.join(home, ".config"),
			WRANGLER_LOG_PATH: path.join(home, "wrangler-logs"),
			WRANGLER_SEND_METRICS: "false",
			CLOUDFLARE_API_TOKEN: TOKEN,
			CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
			CLOUDFLARE_API_BASE_URL: api.url,
			NO_COLOR: "1",
		},
		cwd: base,
		isTTY: false,
	});
	return { code, stdout, stderr };
}

describe("rollback without --env", () => {
	it.each([
		{ argv: [], script: "app" },
		{ argv: ["--env", "staging"], script: "app-staging" },
	])("$argv asks wrangler about the Worker $script", async ({ argv, script }) => {
		const before = api.requests.length;
		const result = await cli(["rollback", ...argv, "--json"]);
		// Never deployed: nothing to roll back, a failed check.
		expect(result.code, result.stderr).toBe(EXIT_FAILED);
		const report = JSON.parse(result.stdout) as { findings: { code: string }[] };
		expect(report.findings.map((f) => f.code)).toContain("ROLLBACK_IMPOSSIBLE");
		const scripts = api.requests
			.slice(before)
			.map((r) => /\/workers\/scripts\/([^/]+)\//.exec(r.path)?.[1])
			.filter(Boolean);
		expect(scripts.length).toBeGreaterThan(0);
		expect(new Set(scripts)).toEqual(new Set([script]));
		expect(result.stdout + result.stderr).not.toContain("undefined");
	});
});

describe("the --env flag", () => {
	it.each(["deploy", "rollback"])("%s accepts no --env", async (command) => {
		const result = await cli([command, "--help"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(/--env <env>/);
		expect(result.stdout).not.toMatch(/--env <env>[^\n]*required/);
	});
	it("preview still requires --env", async () => {
		const result = await cli(["preview", "--pr", "1"]);
		expect(result.code).toBe(EXIT_USAGE);
		expect(result.stderr).toContain("--env");
	});
});
