// A D1 binding with no database_id (wrangler's auto-provisioning, or database_name alone): the
// remote commands find the database by name as wrangler does, and real wrangler, run against the
// same loopback API, finds the same database and the same ledger.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_OK, EXIT_USAGE } from "../../../ci/cli/main.ts";
import { captureCli } from "../../support/cli.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";
import { createWranglerProject, type WranglerProject } from "../../support/wrangler-process.ts";

const TOKEN = "test-token-d1-without-id";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
// wrangler deploy provisions binding MAIN_DB of Worker "notes" as "notes-main-db".
const PROVISIONED = { uuid: "7c1f2a3b-0000-4000-8000-00000000a001", name: "notes-main-db" };
const NAMED = { uuid: "7c1f2a3b-0000-4000-8000-00000000a002", name: "notes-archive" };

let api: CloudflareApi;
let project: WranglerProject;
beforeAll(async () => {
	api = await startCloudflareApi({
		token: TOKEN,
		accountId: ACCOUNT,
		databases: [PROVISIONED, NAMED],
		log: () => {},
	});
	project = await createWranglerProject({
		apiUrl: api.url,
		token: TOKEN,
		accountId: ACCOUNT,
		database: PROVISIONED,
		migrations: {
			"0001_create_notes.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
			"0002_add_title.sql": "ALTER TABLE notes ADD COLUMN title TEXT;\n",
		},
	});
}, 60_000);
afterAll(async () => {
	await project?.dispose();
	await api?.close();
});

async function useConfig(databases: Record<string, string>[]): Promise<void> {
	const config = { name: "notes", compatibility_date: "2025-01-01", d1_databases: databases };
	await writeFile(path.join(project.dir, "wrangler.jsonc"), JSON.stringify(config, null, "\t"));
}

const cli = (argv: string[]) =>
	captureCli(argv, {
		cwd: project.dir,
		env: { ...project.env, WORKERS_PIPELINE_REQUEST_TIMEOUT_MS: "10000" },
	});

const ledger = (uuid: string) =>
	(
		api.database(uuid).prepare("SELECT name FROM d1_migrations ORDER BY id").all() as {
			name: string;
		}[]
	).map((r) => r.name);

describe("a binding without database_id", () => {
	it("migrate finds the auto-provisioned database by wrangler's name for it; wrangler then sees nothing pending", async () => {
		await useConfig([{ binding: "MAIN_DB", migrations_dir: "migrations" }]);
		const before = api.requests.length;
		const result = await cli(["migrate", "--json"]);
		expect(result.code, result.stdout + result.stderr).toBe(EXIT_OK);
		expect(ledger(PROVISIONED.uuid)).toEqual(["0001_create_notes.sql", "0002_add_title.sql"]);
		const report = JSON.parse(result.stdout) as {
			steps: { data: { database: { id: string | null } } }[];
		};
		expect(report.steps[0]?.data.database.id).toBe(PROVISIONED.uuid);
		// One lookup by name, then every request by the UUID it answered.
		const paths = api.requests.slice(before).map((r) => r.path);
		expect(paths.filter((p) => p.includes(`/d1/database/${PROVISIONED.name}`))).toHaveLength(1);
		expect(
			paths.filter((p) => p.includes(`/d1/database/${PROVISIONED.uuid}`)).length,
		).toBeGreaterThan(2);

		const wrangler = await project.run(["d1", "migrations", "list", "MAIN_DB", "--remote"]);
		expect(wrangler.exitCode, wrangler.stdout + wrangler.stderr).toBe(0);
		expect(wrangler.stdout).toContain("No migrations to apply");
	}, 120_000);

	it("plan finds a database_name-only binding by its name", async () => {
		await useConfig([
			{ binding: "ARCHIVE", database_name: NAMED.name, migrations_dir: "migrations" },
		]);
		const result = await cli(["plan", "--json"]);
		expect(result.code, result.stdout + result.stderr).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as {
			steps: { data: { database: { id: string | null }; migrations: { status: string }[] } }[];
		};
		expect(report.steps[0]?.data.database.id).toBe(NAMED.uuid);
		expect(report.steps[0]?.data.migrations.map((m) => m.status)).toEqual(["pending", "pending"]);
	});

	it("a database not provisioned yet is a configuration error naming what to run; wrangler looks up the same name", async () => {
		await useConfig([{ binding: "USERS_DB", migrations_dir: "migrations" }]);
		const result = await cli(["plan"]);
		expect(result.code).toBe(EXIT_USAGE);
		expect(result.stderr).toContain('"notes-users-db"');
		expect(result.stderr).toContain("wrangler deploy");

		const wrangler = await project.run(["d1", "migrations", "list", "USERS_DB", "--remote"]);
		expect(wrangler.exitCode).not.toBe(0);
		expect(wrangler.stdout + wrangler.stderr).toContain("notes-users-db");

		await useConfig([{ binding: "OLD", database_name: "gone", migrations_dir: "migrations" }]);
		const named = await cli(["plan"]);
		expect(named.code).toBe(EXIT_USAGE);
		expect(named.stderr).toContain('no D1 database named "gone"');
		expect(named.stderr).toContain("wrangler d1 create gone");
	}, 120_000);
});
