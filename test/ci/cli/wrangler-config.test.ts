import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT_OK, EXIT_USAGE, runCli } from "../../../ci/cli/main.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";
import { type Files, makeProject, removeProjects } from "../../support/project.ts";

// The wrangler config as wrangler reads it, end to end through the CLI (issue 9, item 4):
// TOML, paths relative to the config file, --env optional, account_id honoured.

const TOKEN = "test-token-wrangler-config";
const ACCOUNT = "acc-from-config";
const DB_ID = "6f0e8a6e-0000-4000-8000-00000000c0f1";

let api: CloudflareApi;
beforeAll(async () => {
	api = await startCloudflareApi({
		token: TOKEN,
		accountId: ACCOUNT,
		databases: [{ uuid: DB_ID, name: "app-db" }],
		log: () => {},
	});
});
afterAll(async () => {
	await api.close();
});

afterEach(removeProjects);

const tree = (files: Files) => makeProject({ files, prefix: "wp-wrangler-config-" });

const APP_TOML = [
	'name = "app"',
	`account_id = "${ACCOUNT}"`,
	"[[d1_databases]]",
	'binding = "DB"',
	`database_id = "${DB_ID}"`,
	'migrations_dir = "db"',
	"",
].join("\n");

async function cli(argv: string[], cwd: string, env: Record<string, string> = {}) {
	let stdout = "";
	let stderr = "";
	const code = await runCli(argv, {
		stdout: (t) => {
			stdout += t;
		},
		stderr: (t) => {
			stderr += t;
		},
		env: {
			PATH: process.env.PATH,
			CLOUDFLARE_API_TOKEN: TOKEN,
			CLOUDFLARE_API_BASE_URL: api.url,
			...env,
		},
		cwd,
		isTTY: false,
	});
	return { code, stdout, stderr };
}

describe("workers-pipeline with a wrangler.toml", () => {
	it("plans the top-level Worker's database without --env, on the config's account_id", async () => {
		const base = tree({
			"wrangler.toml": APP_TOML,
			"db/0001_init.sql": "CREATE TABLE a (id INTEGER);\n",
		});
		const before = api.requests.length;
		const result = await cli(["plan", "--json"], base);
		expect(result.code, result.stderr).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as { migrations: { name: string; status: string }[] };
		expect(report.migrations).toEqual([expect.objectContaining({ name: "0001_init.sql" })]);
		const sent = api.requests.slice(before);
		expect(sent.length).toBeGreaterThan(0);
		for (const r of sent) expect(r.path).toContain(`/accounts/${ACCOUNT}/`);
	});

	it("refuses a CLOUDFLARE_ACCOUNT_ID that is not the config's account, before any request", async () => {
		const base = tree({
			"wrangler.toml": APP_TOML,
			"db/0001_init.sql": "CREATE TABLE a (id INTEGER);\n",
		});
		const before = api.requests.length;
		const result = await cli(["migrate", "--json"], base, {
			CLOUDFLARE_ACCOUNT_ID: "someone-else",
		});
		expect(result.code).toBe(EXIT_USAGE);
		expect(result.stderr).toContain("CLOUDFLARE_ACCOUNT_ID (someone-else)");
		expect(result.stderr).toContain(`$.account_id: ${ACCOUNT}`);
		expect(api.requests.length).toBe(before);
	});

	it("judges the other app's migrations with --config ../other/wrangler.toml", async () => {
		const base = tree({
			"app/wrangler.jsonc": '{ "name": "app", "d1_databases": [{ "binding": "DB" }] }',
			"app/migrations/0001_app.sql": "CREATE TABLE app_only (id INTEGER);\n",
			"other/wrangler.toml": APP_TOML,
			"other/db/0001_other.sql": "CREATE TABLE other_only (id INTEGER);\n",
			"other/db/0002_more.sql": "CREATE TABLE more (id INTEGER);\n",
		});
		const app = path.join(base, "app");
		const result = await cli(
			["migration-test", "--config", "../other/wrangler.toml", "--update-snapshot", "--json"],
			app,
		);
		expect(result.code, result.stderr).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as { migrations: { name: string }[] };
		expect(report.migrations.map((m) => m.name)).toEqual(["0001_other.sql", "0002_more.sql"]);
	});

	it("reports a TOML syntax error with file:line:column, exit 2", async () => {
		const base = tree({ "wrangler.toml": 'name = "app"\n[[d1_databases]\n' });
		const result = await cli(["lint"], base);
		expect(result.code).toBe(EXIT_USAGE);
		expect(result.stderr).toContain(`${path.join(base, "wrangler.toml")}:2:`);
		expect(result.stderr).toContain("invalid TOML");
	});
});
