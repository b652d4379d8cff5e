// Every bad input to the remote commands (migrate, plan, baseline, restore) against a database
// where 0001-0004 were applied by migrate: the exit code, a distinctive part of the message, no
// stack trace, and a remote database that is byte-for-byte unchanged (or was not even contacted)
// wherever nothing should have been written.
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../../../ci/cli/main.ts";
import {
	type CloudflareApi,
	type FaultHook,
	type RequestRecord,
	startCloudflareApi,
} from "../../support/cloudflare-api.ts";
import {
	ACCOUNT_ID,
	apiEnv,
	type CliRun,
	cli,
	type Files,
	ledgerNames,
	lockRows,
	MIGRATIONS_DIR,
	makeProject,
	type Project,
	removeProjects,
	STACK_LINE,
	stagingWrangler,
	TOKEN,
	tableNames,
	writeFiles,
} from "./_inputs.ts";

/** The example migrations, in order; a prefix of a valid history is always a valid history. */
const EXAMPLES = readdirSync(MIGRATIONS_DIR)
	.filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
	.sort();
const BASE = EXAMPLES.slice(0, 4);
const [M1, M2, M3, M4] = BASE as [string, string, string, string];
const MIGRATE = ["migrate", "--env", "staging"];
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const example = (name: string) => readFileSync(path.join(MIGRATIONS_DIR, name), "utf8");

// Migrations of this test's own, numbered after the base.
const NOTES = "CREATE TABLE notes (\n\tid INTEGER PRIMARY KEY,\n\tbody TEXT NOT NULL\n);\n";
const TAGS = "CREATE TABLE tags (\n\tid INTEGER PRIMARY KEY,\n\tlabel TEXT NOT NULL\n);\n";
const pending = (sql: string | Buffer): Files => ({ "migrations/0005_pending.sql": sql });

interface Context {
	api: CloudflareApi;
	project: Project;
	run: CliRun;
	/** The requests the run under test sent. */
	sent: RequestRecord[];
	db: Database.Database;
	env: Record<string, string | undefined>;
}

interface Case {
	label: string;
	/** "applied": 0001-0004 applied by migrate (default); "empty": a fresh database. */
	seed?: "applied" | "empty";
	/** Migrations of our own applied together with the base. */
	alsoApplied?: Files;
	/** Changes to the project after seeding. */
	files?: Files | ((project: Project) => Files);
	/** Direct changes to the remote database after seeding (by hand, outside any tool). */
	setup?: (db: Database.Database) => void;
	argv?: string[];
	/** Overrides of the API environment; undefined removes a variable. */
	env?: Record<string, string | undefined>;
	fault?: FaultHook;
	code: number;
	output: RegExp[];
	absent?: RegExp[];
	/** "unsent": not one request; "untouched": requests at most, bytes identical; "written". */
	remote: "unsent" | "untouched" | "written";
	check?: (ctx: Context) => void | Promise<void>;
}

const NOT_A_BUG = [/internal error:/, /This is a bug in workers-pipeline/];
const HOLDER = "alice@laptop pid 4242";

const CASES: Case[] = [
	// --- files: applied migrations changed after the fact ---
	{
		label: "an applied file edited (new statement)",
		files: {
			[`migrations/${M2}`]: `${example(M2)}CREATE INDEX sessions_created_at_idx ON sessions (created_at);\n`,
		},
		code: EXIT_FAILED,
		output: [
			new RegExp(
				`LEDGER_CHECKSUM_MISMATCH migrations/${esc(M2)}: ${esc(M2)} was edited after it was applied`,
			),
			/Revert the edit/,
		],
		remote: "untouched",
	},
	{
		label: "an applied file edited (comment only)",
		files: { [`migrations/${M1}`]: `-- reviewed\n${example(M1)}` },
		code: EXIT_FAILED,
		output: [new RegExp(`LEDGER_CHECKSUM_MISMATCH migrations/${esc(M1)}`)],
		remote: "untouched",
	},
	{
		label: "an applied file with CRLF line endings only (not an edit)",
		files: { [`migrations/${M3}`]: example(M3).replace(/\n/g, "\r\n") },
		code: EXIT_OK,
		output: [/nothing to apply: 4 migration\(s\) applied, all verified/],
		absent: [/LEDGER_CHECKSUM_MISMATCH/],
		remote: "untouched",
	},
	{
		label: "an applied file with a UTF-8 BOM added (not an edit)",
		files: { [`migrations/${M4}`]: `\uFEFF${example(M4)}` },
		code: EXIT_OK,
		output: [/nothing to apply/],
		absent: [/LEDGER_CHECKSUM_MISMATCH/],
		remote: "untouched",
	},
	{
		label: "an applied file deleted",
		files: { [`migrations/${M4}`]: null },
		code: EXIT_FAILED,
		output: [
			new RegExp(
				`LEDGER_FILE_MISSING migrations/${esc(M4)}: ${esc(M4)} is applied on this database but the file is gone`,
			),
			new RegExp(`rename it to ${esc(M4)}\\.retired`),
		],
		remote: "untouched",
	},
	{
		label: "an applied file renamed",
		files: (p) => {
			renameSync(
				path.join(p.dir, "migrations", M2),
				path.join(p.dir, "migrations", "0002_renamed_sessions.sql"),
			);
			return {};
		},
		code: EXIT_FAILED,
		output: [
			new RegExp(`LEDGER_FILE_MISSING migrations/${esc(M2)}: .*\\(deleted or renamed\\)`),
			// The new name is pending, numbered below the newest applied one.
			/PLAN_OUT_OF_ORDER migrations\/0002_renamed_sessions\.sql/,
		],
		remote: "untouched",
	},
	{
		label: "an applied file retired (.sql.retired)",
		files: (p) => {
			renameSync(
				path.join(p.dir, "migrations", M4),
				path.join(p.dir, "migrations", `${M4}.retired`),
			);
			return {};
		},
		code: EXIT_OK,
		output: [/nothing to apply/, new RegExp(`retired +${esc(M4)}`)],
		absent: [/LEDGER_FILE_MISSING/],
		remote: "untouched",
	},

	// --- order and DEPENDS ---
	{
		label: "a pending migration numbered below the newest applied one",
		alsoApplied: { "migrations/0006_create_tags.sql": TAGS },
		files: { "migrations/0005_create_notes.sql": NOTES },
		code: EXIT_FAILED,
		output: [
			/PLAN_OUT_OF_ORDER migrations\/0005_create_notes\.sql: .*numbered below the newest applied migration \(6\)/,
			/--allow-out-of-order/,
		],
		remote: "untouched",
	},
	{
		label: "the same with --allow-out-of-order (applies it late)",
		alsoApplied: { "migrations/0006_create_tags.sql": TAGS },
		files: { "migrations/0005_create_notes.sql": NOTES },
		argv: [...MIGRATE, "--allow-out-of-order"],
		code: EXIT_OK,
		output: [/applied 1 migration\(s\); schema validated/, /warning PLAN_OUT_OF_ORDER/],
		remote: "written",
		check: ({ api, project }) => {
			expect(ledgerNames(api, project.uuid)).toEqual([
				...BASE,
				"0006_create_tags.sql",
				"0005_create_notes.sql",
			]);
			expect(tableNames(api, project.uuid)).toContain("notes");
		},
	},
	{
		label: "DEPENDS naming a missing migration",
		files: pending(`-- DEPENDS: 0042_missing.sql\n${NOTES}`),
		code: EXIT_FAILED,
		output: [
			/CATALOG_DEPENDS_MISSING migrations\/0005_pending\.sql:1: DEPENDS names 0042_missing\.sql, which is not a migration/,
			/nothing was sent to D1/,
		],
		remote: "unsent",
	},
	{
		label: "DEPENDS naming a later migration",
		files: {
			"migrations/0005_create_notes.sql": `${NOTES}-- DEPENDS: 0006_create_tags.sql\n`,
			"migrations/0006_create_tags.sql": TAGS,
		},
		code: EXIT_FAILED,
		output: [
			/CATALOG_DEPENDS_ORDER migrations\/0005_create_notes\.sql:5: DEPENDS names 0006_create_tags\.sql, which runs after this one/,
		],
		remote: "unsent",
	},

	// --- SQL that cannot work ---
	{
		label: "bad SQL in the middle of the pending list",
		files: {
			"migrations/0005_create_notes.sql": NOTES,
			"migrations/0006_broken.sql":
				"CREATE TABLE broken (\n\tid INTEGER PRIMARY KEY,\n\tx TEXT\n;\n",
			"migrations/0007_create_tags.sql": TAGS,
		},
		code: EXIT_FAILED,
		output: [/REPLAY_FAILED migrations\/0006_broken\.sql:\d+: /, /nothing was sent to D1/],
		remote: "unsent",
	},
	...(
		[
			["BEGIN TRANSACTION", `BEGIN TRANSACTION;\n${NOTES}COMMIT;\n`, "D1_TRANSACTION"],
			["SAVEPOINT", `SAVEPOINT s1;\n${NOTES}RELEASE s1;\n`, "D1_TRANSACTION"],
			["PRAGMA foreign_keys=OFF", `PRAGMA foreign_keys=OFF;\n${NOTES}`, "D1_FOREIGN_KEYS_OFF"],
			["another PRAGMA", `PRAGMA journal_mode = WAL;\n${NOTES}`, "D1_PRAGMA"],
			["a _cf_ table", "CREATE TABLE _cf_notes (id INTEGER PRIMARY KEY);\n", "D1_RESERVED_NAME"],
			["ATTACH", `ATTACH DATABASE 'other.db' AS other;\n${NOTES}`, "D1_ATTACH"],
			["a TEMP table", "CREATE TEMP TABLE scratch (id INTEGER);\n", "D1_TEMP_OBJECT"],
			[
				"a virtual table module D1 lacks",
				"CREATE VIRTUAL TABLE notes_search USING fts4(body);\n",
				"D1_VIRTUAL_TABLE",
			],
			["no final semicolon", NOTES.trimEnd().slice(0, -1), "D1_MISSING_SEMICOLON"],
			[
				"a statement over 100 KB",
				`INSERT INTO users (email) VALUES ('${"x".repeat(110_000)}@example.com');\n`,
				"D1_STATEMENT_TOO_LARGE",
			],
		] as const
	).map(
		([what, sql, code]): Case => ({
			label: `D1-forbidden SQL: ${what}`,
			files: pending(sql),
			code: EXIT_FAILED,
			output: [
				new RegExp(`error +${code} migrations/0005_pending\\.sql:\\d+`),
				/preflight failed: nothing was sent to D1/,
			],
			remote: "unsent",
		}),
	),
	{
		label: "two migrations with one number",
		files: { "migrations/0004_create_notes.sql": NOTES },
		code: EXIT_FAILED,
		output: [
			new RegExp(
				`CATALOG_DUPLICATE_NUMBER migrations/0004_create_notes\\.sql: number 4 is also used by ${esc(M4)}`,
			),
		],
		remote: "unsent",
	},
	{
		label: "a file name outside NNNN_snake_case.sql",
		files: { "migrations/0005-Create-Notes.sql": NOTES },
		code: EXIT_FAILED,
		output: [
			/CATALOG_BAD_NAME migrations\/0005-Create-Notes\.sql: "0005-Create-Notes\.sql" does not follow NNNN_snake_case\.sql/,
		],
		remote: "unsent",
	},
	{
		label: "a three-digit prefix",
		files: { "migrations/005_create_notes.sql": NOTES },
		code: EXIT_FAILED,
		output: [/CATALOG_BAD_NAME migrations\/005_create_notes\.sql/],
		remote: "unsent",
	},
	{
		label: "a file that is not UTF-8",
		files: pending(
			Buffer.concat([
				Buffer.from("-- caf"),
				Buffer.from([0xe9]),
				Buffer.from(" in Latin-1\nCREATE TABLE notes (id INTEGER PRIMARY KEY);\n"),
			]),
		),
		code: EXIT_FAILED,
		output: [/CATALOG_INVALID_UTF8 migrations\/0005_pending\.sql:1: byte 6 is not valid UTF-8/],
		remote: "unsent",
	},
	{
		label: "an empty migrations directory",
		files: Object.fromEntries(BASE.map((name) => [`migrations/${name}`, null])),
		code: EXIT_FAILED,
		output: [
			/warning CATALOG_EMPTY migrations: no migration files match migrations\/\*\.sql/,
			/LEDGER_FILE_MISSING/,
		],
		remote: "untouched",
		check: ({ run }) => {
			expect(run.stdout.match(/error +LEDGER_FILE_MISSING/g)).toHaveLength(4);
		},
	},
	{
		label: "a missing migrations directory",
		files: { migrations: null },
		code: EXIT_USAGE,
		output: [/Migrations directory migrations not found in .* \(D1 binding "DB"\)/],
		remote: "unsent",
	},

	// --- wrangler config ---
	{
		label: "an unknown environment",
		argv: ["migrate", "--env", "prod"],
		code: EXIT_USAGE,
		output: [/Unknown environment "prod" in .*wrangler\.jsonc\. Known environments: staging\./],
		remote: "unsent",
	},
	{
		label: "an environment without a D1 binding (top-level bindings are not inherited)",
		files: (p) => {
			const config = stagingWrangler(p.uuid, p.databaseName);
			config.env.staging.d1_databases = [];
			return { "wrangler.jsonc": JSON.stringify(config) };
		},
		code: EXIT_USAGE,
		output: [
			/env\.staging\.d1_databases has no D1 binding\. D1 bindings are not inherited from the top level/,
		],
		remote: "unsent",
	},
	{
		// Looked up by name as wrangler does (test/ci/cli/d1-without-id.test.ts): one read, a 404.
		label: "a binding without database_id whose database_name the account lacks",
		files: () => ({
			"wrangler.jsonc": JSON.stringify({
				name: "x",
				env: { staging: { d1_databases: [{ binding: "DB", database_name: "not-created" }] } },
			}),
		}),
		code: EXIT_USAGE,
		output: [
			/env\.staging\.d1_databases binding "DB" has no database_id, and the account has no D1 database named "not-created": create it \(`wrangler d1 create not-created`\)/,
		],
		remote: "untouched",
		check: ({ sent }) => {
			expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
				expect.stringMatching(/^GET \/accounts\/\w+\/d1\/database\/not-created$/),
			]);
		},
	},
	...(["", " --binding NOPE"] as const).map(
		(flag): Case => ({
			label: flag ? "--binding naming no binding" : "two bindings without --binding",
			files: (p) => ({
				"wrangler.jsonc": JSON.stringify({
					name: "x",
					env: {
						staging: {
							d1_databases: [
								{ binding: "DB", database_name: p.databaseName, database_id: p.uuid },
								{ binding: "ANALYTICS", database_name: "analytics", database_id: randomUUID() },
							],
						},
					},
				}),
			}),
			argv: [...MIGRATE, ...flag.trim().split(" ").filter(Boolean)],
			code: EXIT_USAGE,
			output: [
				flag
					? /env\.staging\.d1_databases has no binding "NOPE" \(has: DB, ANALYTICS\)/
					: /env\.staging\.d1_databases has 2 D1 bindings \(DB, ANALYTICS\); choose one with --binding/,
			],
			remote: "unsent",
		}),
	),
	{
		label: "an invalid wrangler.jsonc",
		files: { "wrangler.jsonc": '{\n\t"name": "x",\n\t"env": {\n}' },
		code: EXIT_USAGE,
		output: [/wrangler\.jsonc:4:2: invalid JSONC/],
		remote: "unsent",
	},

	// --- credentials and the API's answers ---
	{
		label: "no CLOUDFLARE_API_TOKEN",
		env: { CLOUDFLARE_API_TOKEN: undefined },
		code: EXIT_USAGE,
		output: [/CLOUDFLARE_API_TOKEN is not set\. .*nothing was sent/],
		remote: "unsent",
	},
	{
		label: "no CLOUDFLARE_ACCOUNT_ID",
		env: { CLOUDFLARE_ACCOUNT_ID: undefined },
		code: EXIT_USAGE,
		output: [/CLOUDFLARE_ACCOUNT_ID is not set/],
		remote: "unsent",
	},
	{
		label: "neither credential",
		env: { CLOUDFLARE_API_TOKEN: "", CLOUDFLARE_ACCOUNT_ID: undefined },
		code: EXIT_USAGE,
		output: [/CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID are not set/],
		remote: "unsent",
	},
	{
		label: "a wrong token (401)",
		env: { CLOUDFLARE_API_TOKEN: "wrong-token-abcdef0123456789" },
		code: EXIT_USAGE,
		output: [
			/D1 query failed \(HTTP 401\) \[9109\]: Invalid access token — check CLOUDFLARE_API_TOKEN/,
		],
		absent: [...NOT_A_BUG, /wrong-token-abcdef0123456789/],
		remote: "untouched",
	},
	{
		label: "a wrong token with --json (one document, the API's error code)",
		env: { CLOUDFLARE_API_TOKEN: "wrong-token-abcdef0123456789" },
		argv: [...MIGRATE, "--json"],
		code: EXIT_USAGE,
		output: [/HTTP 401/],
		absent: [...NOT_A_BUG, /wrong-token-abcdef0123456789/],
		remote: "untouched",
		check: ({ run }) => {
			const document = JSON.parse(run.stdout) as { ok: boolean; error: { code: string } };
			expect(document.ok).toBe(false);
			expect(document.error.code).toBe("E_D1_AUTH");
		},
	},
	{
		label: "a token of another account / a wrong account id (403)",
		env: { CLOUDFLARE_ACCOUNT_ID: "fedcba9876543210fedcba9876543210" },
		code: EXIT_USAGE,
		output: [
			/HTTP 403\) \[10000\]: Authentication error — the token has no access to this account/,
		],
		absent: NOT_A_BUG,
		remote: "untouched",
	},
	{
		label: "an unknown database id (404)",
		files: (p) => ({
			"wrangler.jsonc": JSON.stringify(stagingWrangler(randomUUID(), p.databaseName)),
		}),
		code: EXIT_USAGE,
		output: [/HTTP 404\) \[7404\]: The database [0-9a-f-]+ could not be found — check database_id/],
		absent: NOT_A_BUG,
		remote: "untouched",
	},
	{
		label: "the API answering 5xx to every request",
		files: pending(NOTES),
		fault: () => ({ kind: "status", status: 503 }),
		code: EXIT_FAILED,
		output: [/D1 query failed \(HTTP 503\) \[7500\]/],
		absent: NOT_A_BUG,
		remote: "untouched",
		check: ({ sent }) => {
			// Only the preflight's first read was ever tried (and retried): no lock, no apply request.
			const bodies = sent.map((r) => r.body ?? "");
			expect(bodies.length).toBeGreaterThan(1);
			expect(bodies.every((b) => b.includes("sqlite_master"))).toBe(true);
		},
	},

	// --- the lock ---
	{
		label: "the lock held by a live run",
		files: pending(NOTES),
		setup: (db) => {
			db.prepare(
				"INSERT INTO workers_pipeline_lock (id, run_id, owner, acquired_at, expires_at) VALUES (1, 'run-alice', ?, unixepoch(), unixepoch() + 3600)",
			).run(HOLDER);
		},
		argv: [...MIGRATE, "--lock-timeout", "1"],
		code: EXIT_FAILED,
		output: [
			new RegExp(
				`LOCK_HELD: the migration lock is held by ${esc(HOLDER)} \\(run run-alice, expires in \\d+ s\\)`,
			),
			/lock held by another run: nothing was applied/,
		],
		remote: "untouched",
		check: ({ api, project }) => {
			expect(lockRows(api, project.uuid)).toEqual([
				expect.objectContaining({ run_id: "run-alice", owner: HOLDER }),
			]);
		},
	},
	...["soon", "-5", "1m"].map(
		(value): Case => ({
			label: `--lock-timeout ${value}`,
			argv: [...MIGRATE, "--lock-timeout", value],
			code: EXIT_USAGE,
			output: [new RegExp(`--lock-timeout expects a number of seconds, not "${value}"`)],
			remote: "unsent",
		}),
	),
	{
		label: "--lock-timeout without a value",
		argv: [...MIGRATE, "--lock-timeout"],
		code: EXIT_USAGE,
		output: [/Option --lock-timeout needs a value: --lock-timeout <seconds>/],
		remote: "unsent",
	},
	{
		label: "a bad --lock-ttl",
		argv: [...MIGRATE, "--lock-ttl", "forever"],
		code: EXIT_USAGE,
		output: [/--lock-ttl expects a number of seconds, not "forever"/],
		remote: "unsent",
	},

	// --- usage ---
	{
		label: "an unknown flag",
		argv: [...MIGRATE, "--dryrun"],
		code: EXIT_USAGE,
		output: [/Unknown option --dryrun for `migrate`\. Did you mean --dry-run\?/],
		remote: "unsent",
	},
	{
		// As in wrangler, no --env is the top-level Worker: its binding's database (one the
		// loopback does not know), never the staging one.
		label: "no --env: the top-level binding",
		argv: ["migrate"],
		code: EXIT_USAGE,
		output: [/The database [0-9a-f-]+ could not be found/],
		remote: "untouched",
	},
	{
		label: "a positional argument",
		argv: ["migrate", "staging"],
		code: EXIT_USAGE,
		output: [/Unexpected argument "staging" for `migrate`/],
		remote: "unsent",
	},
	{
		label: "a switch given a value",
		argv: [...MIGRATE, "--dry-run=yes"],
		code: EXIT_USAGE,
		output: [/Option --dry-run is a switch/],
		remote: "unsent",
	},

	// --- what is (not) written ---
	{
		label: "--dry-run with a pending migration",
		files: pending(NOTES),
		argv: [...MIGRATE, "--dry-run"],
		code: EXIT_OK,
		output: [
			/dry run: would apply 1 migration\(s\); nothing was written/,
			/pending +0005_pending\.sql/,
		],
		remote: "untouched",
	},
	{
		label: "nothing pending",
		code: EXIT_OK,
		output: [/nothing to apply: 4 migration\(s\) applied, all verified/],
		remote: "untouched",
	},
	{
		label: "a table created by hand (schema drift)",
		files: pending(NOTES),
		setup: (db) => db.exec("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT);"),
		code: EXIT_FAILED,
		output: [
			/PREFLIGHT_SCHEMA_DRIFT: the remote schema differs from what the applied migrations produce/,
			/audit_log/,
		],
		remote: "untouched",
	},
	{
		label: "a column added by hand (schema drift)",
		setup: (db) => db.exec("ALTER TABLE users ADD COLUMN nickname TEXT;"),
		code: EXIT_FAILED,
		output: [/PREFLIGHT_SCHEMA_DRIFT/, /nickname/],
		remote: "untouched",
	},
	{
		label: "a table created by hand on a never-migrated database (schema drift)",
		seed: "empty",
		setup: (db) => db.exec("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT);"),
		code: EXIT_FAILED,
		output: [/PREFLIGHT_SCHEMA_DRIFT/, /audit_log/, /preflight failed: nothing was written/],
		remote: "untouched",
	},
	{
		label: "a never-migrated, empty database: no schema read, the lock claim proves it empty",
		seed: "empty",
		code: EXIT_OK,
		output: [/applied 4 migration\(s\)/],
		remote: "written",
		check: ({ api, project, sent }) => {
			expect(ledgerNames(api, project.uuid)).toEqual(BASE);
			// State read, claim, bookmark, one request per migration (the last releases the lock).
			expect(sent.filter((r) => r.path.includes(project.uuid))).toHaveLength(3 + BASE.length);
		},
	},
	{
		label: "a pending migration D1 refuses on this data (atomic: the earlier one stays applied)",
		files: {
			"migrations/0005_create_notes.sql": NOTES,
			"migrations/0006_unique_display_name.sql":
				"CREATE UNIQUE INDEX users_display_name_idx ON users (display_name);\n",
		},
		setup: (db) =>
			db.exec(
				"INSERT INTO users (email, display_name) VALUES ('a@example.com', 'Sam'), ('b@example.com', 'Sam');",
			),
		code: EXIT_FAILED,
		output: [
			/APPLY_FAILED migrations\/0006_unique_display_name\.sql: 0006_unique_display_name\.sql failed on D1/,
			/nothing of this migration was applied/,
			/RESTORE_AVAILABLE/,
		],
		remote: "written",
		check: ({ api, project }) => {
			expect(ledgerNames(api, project.uuid)).toEqual([...BASE, "0005_create_notes.sql"]);
			const indexes = api
				.database(project.uuid)
				.prepare("SELECT name FROM sqlite_schema WHERE name = 'users_display_name_idx'")
				.all();
			expect(indexes).toEqual([]);
			expect(lockRows(api, project.uuid)).toEqual([]);
		},
	},

	// --- baseline, plan, restore ---
	{
		label: "baseline of a database that lacks what the migrations create",
		seed: "empty",
		setup: (db) => db.exec(example(M1)),
		argv: ["baseline", "--env", "staging", "--through", "0004"],
		code: EXIT_FAILED,
		output: [
			new RegExp(
				`BASELINE_SCHEMA_MISSING: the database does not contain what ${esc(M4)} and earlier create`,
			),
			/baseline refused: nothing was written/,
		],
		remote: "untouched",
	},
	{
		label: "baseline of a database the migrations produced, then plan",
		seed: "empty",
		setup: (db) => {
			for (const name of BASE) db.exec(example(name));
		},
		argv: ["baseline", "--env", "staging", "--through", "0004"],
		code: EXIT_OK,
		output: [
			new RegExp(`recorded 4 migration\\(s\\) through ${esc(M4)} as applied; bookmark before: `),
		],
		remote: "written",
		check: async ({ api, project, env }) => {
			expect(ledgerNames(api, project.uuid)).toEqual(BASE);
			expect(lockRows(api, project.uuid)).toEqual([]);
			const plan = await cli(["plan", "--env", "staging"], project.dir, env);
			expect(plan.code, plan.stdout + plan.stderr).toBe(EXIT_OK);
			expect(plan.stdout).toContain(
				`4 applied (4 verified, 0 without checksum yet), 0 pending; head ${M4}`,
			);
			for (const name of BASE) expect(plan.stdout).toMatch(new RegExp(`verified +${esc(name)}`));
		},
	},
	{
		label: "baseline --through that is not a number",
		argv: ["baseline", "--env", "staging", "--through", "latest"],
		code: EXIT_USAGE,
		output: [/--through expects a migration number such as 0007, not "latest"/],
		remote: "unsent",
	},
	{
		label: "baseline --through below every migration",
		argv: ["baseline", "--env", "staging", "--through", "0000"],
		code: EXIT_USAGE,
		output: [/no migration is numbered 0000 or lower in migrations/],
		remote: "unsent",
	},
	{
		label: "plan after an applied file was edited",
		files: { [`migrations/${M2}`]: `${example(M2)}-- edited\n` },
		argv: ["plan", "--env", "staging"],
		code: EXIT_FAILED,
		output: [
			new RegExp(`failed +${esc(M2)} +[0-9a-f]{12}  checksum-mismatch`),
			/LEDGER_CHECKSUM_MISMATCH/,
		],
		remote: "untouched",
	},
	{
		label: "restore to a bookmark D1 does not know",
		argv: ["restore", "--env", "staging", "--bookmark", "00000000-not-a-bookmark"],
		code: EXIT_FAILED,
		output: [
			/workers-pipeline restore: D1 time_travel\/restore failed \(HTTP 400\) \[7400\]: The request is malformed: invalid bookmark: 00000000-not-a-bookmark/,
		],
		absent: NOT_A_BUG,
		remote: "written",
		check: async ({ api, project, env }) => {
			// Nothing restored, and the lock taken for the restore is released: migrate runs at once.
			expect(ledgerNames(api, project.uuid)).toEqual(BASE);
			expect(lockRows(api, project.uuid)).toEqual([]);
			writeFiles(project.dir, pending(NOTES));
			const next = await cli([...MIGRATE, "--lock-timeout", "0"], project.dir, env);
			expect(next.code, next.stdout + next.stderr).toBe(EXIT_OK);
		},
	},
	{
		label: "restore without --bookmark",
		argv: ["restore", "--env", "staging"],
		code: EXIT_USAGE,
		output: [/`restore` needs --bookmark <bookmark>/],
		remote: "unsent",
	},
	{
		label: "an unknown command",
		argv: ["migrat", "--env", "staging"],
		code: EXIT_USAGE,
		output: [/unknown command "migrat"\. Did you mean `migrate`\?/],
		remote: "unsent",
	},
];

let api: CloudflareApi;

beforeAll(async () => {
	api = await startCloudflareApi({ token: TOKEN, accountId: ACCOUNT_ID });
});

afterEach(() => {
	api.faults.clear();
	removeProjects();
});

afterAll(async () => {
	await api?.close();
	removeProjects();
});

/** A project whose staging database has 0001-0004 (and `alsoApplied`) applied by migrate. */
async function seededProject(c: Case): Promise<Project> {
	const project = makeProject(api, { migrations: BASE });
	if (c.seed === "empty") return project;
	writeFiles(project.dir, c.alsoApplied ?? {});
	const seed = await cli(MIGRATE, project.dir, apiEnv(api));
	if (seed.code !== EXIT_OK) throw new Error(`seeding failed:\n${seed.stdout}${seed.stderr}`);
	return project;
}

describe("remote commands given bad input", () => {
	it("starts from the first four example migrations", () => {
		expect(BASE).toHaveLength(4);
		expect(BASE.map((name) => name.slice(0, 4))).toEqual(["0001", "0002", "0003", "0004"]);
	});

	it.each(CASES)("$label", async (c) => {
		const project = await seededProject(c);
		const files = typeof c.files === "function" ? c.files(project) : (c.files ?? {});
		writeFiles(project.dir, files);
		c.setup?.(api.database(project.uuid));
		const env: Record<string, string | undefined> = { ...apiEnv(api), ...c.env };
		const before = api.serialize(project.uuid);
		const sentBefore = api.requests.length;
		if (c.fault) api.setFaultHook(c.fault);
		const run = await cli(c.argv ?? MIGRATE, project.dir, env);
		api.setFaultHook(undefined);
		const output = run.stdout + run.stderr;

		expect(run.code, output).toBe(c.code);
		for (const pattern of c.output) expect(output).toMatch(pattern);
		for (const pattern of c.absent ?? []) expect(output).not.toMatch(pattern);
		expect(output).not.toMatch(STACK_LINE);
		expect(output).not.toContain(TOKEN);
		if (c.remote === "unsent") expect(api.requests.slice(sentBefore)).toEqual([]);
		else expect(api.requests.length).toBeGreaterThan(sentBefore);
		if (c.remote !== "written") expect(api.serialize(project.uuid).equals(before)).toBe(true);
		const sent = api.requests.slice(sentBefore);
		await c.check?.({ api, project, run, sent, db: api.database(project.uuid), env });
	});
});
