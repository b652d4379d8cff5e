// The invariants of issue 13 §4, each against the loopback Cloudflare API: a run that lost its
// lock never restores, a restore never undoes writes that are not this run's, applied means
// applied, and a retired file never switches the schema checks off.
import { renameSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../../ci/cli/main.ts";
import {
	ACCOUNT_ID,
	ENV,
	EXAMPLE_FILES,
	type JsonReport,
	ledgerNames,
	type MigrateProject,
	nextMigrationName,
	setupLoopbackApi,
} from "./_support.ts";

const loopback = setupLoopbackApi({ log: () => {} });
const { token } = loopback;

const NOTES = nextMigrationName("create_notes", 1);
const TAGS = nextMigrationName("create_tags", 2);
const UNIQUE_BODY = nextMigrationName("unique_note_body", 3);
const SQL: Record<string, string> = {
	[NOTES]: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
	[TAGS]: "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL);\n",
	// Fine on the fresh replay; fails on the remote data seeded with duplicate bodies.
	[UNIQUE_BODY]: "CREATE UNIQUE INDEX notes_body_uq ON notes (body);\n",
};

/** A database migrated through the examples and NOTES, then `pending` files added. */
async function migrated(pending: string[]): Promise<MigrateProject> {
	const p = loopback.project({
		migrations: { ...EXAMPLE_FILES, [NOTES]: SQL[NOTES] ?? "" },
	});
	const first = await p.cli(["migrate", "--env", ENV]);
	expect(first.code, first.stdout + first.stderr).toBe(0);
	for (const name of pending) p.writeMigration(name, SQL[name] ?? "");
	return p;
}

const report = (stdout: string) => JSON.parse(stdout) as JsonReport;
const codes = (r: JsonReport) => r.findings.map((f) => f.code);
const restores = (p: MigrateProject) =>
	loopback.api.requests.filter((r) => r.path.endsWith(`/${p.uuid}/time_travel/restore`)).length;
const notes = (p: MigrateProject) =>
	p.db().prepare("SELECT body FROM notes ORDER BY id").pluck().all() as string[];

/** When the request applying `name` arrives, another run takes the lock over and writes. */
function takeOverAt(p: MigrateProject, name: string) {
	loopback.api.setFaultHook((request) => {
		if (!request.path.endsWith(`/${p.uuid}/query`) || !request.body?.includes(`values ('${name}')`))
			return undefined;
		p.db().exec(
			"UPDATE workers_pipeline_lock SET run_id = 'other-run', owner = 'the other run', expires_at = expires_at + 600;",
		);
		p.db().exec("INSERT INTO notes (body) VALUES ('written after the takeover');");
		return undefined;
	});
}

describe("a run that has lost its lock", () => {
	it("never restores with --auto-restore, and names the lost lock", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		takeOverAt(p, UNIQUE_BODY);
		const run = await p.cli(["migrate", "--env", ENV, "--auto-restore", "--json"]);
		expect(run.code, run.stderr).toBe(1);
		const r = report(run.stdout);
		expect(codes(r)).toContain("LOCK_LOST");
		expect(codes(r)).toContain("RESTORE_REFUSED");
		const lost = r.findings.find((f) => f.code === "LOCK_LOST");
		expect(lost?.message).toMatch(/lost the migration lock/);
		expect(lost?.message).not.toMatch(/CHECK constraint failed/);
		expect(restores(p)).toBe(0);
		// The other run's write and its lock survive.
		expect(notes(p)).toEqual(["written after the takeover"]);
		expect(p.db().prepare("SELECT run_id FROM workers_pipeline_lock").pluck().all()).toEqual([
			"other-run",
		]);
	});

	it("without --auto-restore, advises against the restore instead of printing it", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		takeOverAt(p, UNIQUE_BODY);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code).toBe(1);
		const r = report(run.stdout);
		expect(codes(r)).toContain("RESTORE_UNSAFE");
		expect(codes(r)).not.toContain("RESTORE_AVAILABLE");
	});
});

describe("an automatic restore", () => {
	it("is refused when something else wrote after this run's last write", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		p.db().exec("INSERT INTO notes (body) VALUES ('dup'), ('dup');");
		let failed = false;
		let wrote = false;
		loopback.api.setFaultHook((request) => {
			if (!request.path.includes(`/${p.uuid}/`)) return undefined;
			if (request.body?.includes("notes_body_uq")) failed = true;
			else if (failed && !wrote && request.path.endsWith("/time_travel/bookmark")) {
				p.db().exec("INSERT INTO notes (body) VALUES ('the app kept writing');");
				wrote = true;
			}
			return undefined;
		});
		const run = await p.cli(["migrate", "--env", ENV, "--auto-restore", "--json"]);
		expect(run.code, run.stderr).toBe(1);
		const refused = report(run.stdout).findings.find((f) => f.code === "RESTORE_REFUSED");
		expect(refused?.message).toMatch(/written after this run's last write/);
		expect(restores(p)).toBe(0);
		expect(notes(p)).toContain("the app kept writing");
		expect(ledgerNames(p.db())).toContain(TAGS);
	});
});

describe("applied means applied", () => {
	it("refuses, never re-applies, a migration whose audit row stayed but whose ledger row is gone", async () => {
		const p = await migrated([]);
		p.db().exec(`DELETE FROM d1_migrations WHERE name = '${NOTES}';`);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code).toBe(1);
		const missing = report(run.stdout).findings.find((f) => f.code === "LEDGER_ROW_MISSING");
		expect(missing?.file).toBe(`migrations/${NOTES}`);
		expect(ledgerNames(p.db())).not.toContain(NOTES);
	});

	it("refuses a ledger table without wrangler's UNIQUE on name, writing nothing", async () => {
		const p = loopback.project({ migrations: { [NOTES]: SQL[NOTES] ?? "" } });
		p.db().exec(
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, applied_at TEXT);",
		);
		const before = loopback.api.serialize(p.uuid);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code).toBe(1);
		expect(codes(report(run.stdout))).toContain("LEDGER_TABLE_SHAPE");
		expect(loopback.api.serialize(p.uuid).equals(before)).toBe(true);
	});
});

describe("a retired file", () => {
	it("keeps the drift check on: a table dropped by hand is still found", async () => {
		const p = await migrated([]);
		renameSync(
			path.join(p.dir, "migrations", NOTES),
			path.join(p.dir, "migrations", `${NOTES}.retired`),
		);
		p.db().exec("DROP TABLE notes;");
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code).toBe(1);
		const drift = report(run.stdout).findings.find((f) => f.code === "PREFLIGHT_SCHEMA_DRIFT");
		expect(drift?.message).toContain("notes");
	});
});

describe("Ctrl-C / SIGTERM", () => {
	/** migrate in-process with a signal aborted when `when` matches a request of this database. */
	async function interrupted(p: MigrateProject, when: (body: string) => boolean) {
		const controller = new AbortController();
		loopback.api.setFaultHook((request) => {
			if (request.path.includes(`/${p.uuid}/`) && when(request.body ?? "")) controller.abort();
			return undefined;
		});
		let stdout = "";
		const code = await runCli(["migrate", "--env", ENV, "--json", "--cwd", p.dir], {
			stdout: (t) => {
				stdout += t;
			},
			stderr: () => {},
			env: p.env,
			cwd: p.dir,
			isTTY: false,
			signal: controller.signal,
		});
		return { code, report: report(stdout) };
	}

	it("before the first write: nothing written, exit 130", async () => {
		const p = await migrated([TAGS]);
		const before = loopback.api.serialize(p.uuid);
		const run = await interrupted(p, () => true);
		expect(run.code).toBe(130);
		expect(codes(run.report)).toContain("INTERRUPTED");
		expect(loopback.api.serialize(p.uuid).equals(before)).toBe(true);
	});

	it("during apply: the migration in flight finishes, no more, the lock is released, exit 130", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		const run = await interrupted(p, (body) => body.includes(`values ('${TAGS}')`));
		expect(run.code).toBe(130);
		expect(ledgerNames(p.db())).toContain(TAGS);
		expect(ledgerNames(p.db())).not.toContain(UNIQUE_BODY);
		expect(run.report.migrations.find((m) => m.name === UNIQUE_BODY)?.status).toBe("not-run");
		expect(p.db().prepare("SELECT count(*) FROM workers_pipeline_lock").pluck().get()).toBe(0);
	});
});

describe("a rate limit", () => {
	it("is waited out when Retry-After is short, and the migration applies once", async () => {
		const p = await migrated([TAGS]);
		loopback.api.setFaultHook((request) =>
			request.path.endsWith(`/${p.uuid}/query`) &&
			request.body?.includes(`values ('${TAGS}')`) &&
			!loopback.api.faults.injected.some((f) => f.request.body?.includes(`values ('${TAGS}')`))
				? { kind: "status", status: 429, d1Code: 10100, retryAfterSeconds: 1 }
				: undefined,
		);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code, run.stdout).toBe(0);
		expect(ledgerNames(p.db()).filter((n) => n === TAGS)).toHaveLength(1);
	});

	it("stops the run and says when to retry when Retry-After is long", async () => {
		const p = await migrated([TAGS]);
		loopback.api.setFaultHook((request) =>
			request.path.endsWith(`/${p.uuid}/query`) && request.body?.includes(`values ('${TAGS}')`)
				? { kind: "status", status: 429, d1Code: 10100, retryAfterSeconds: 300 }
				: undefined,
		);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code).toBe(1);
		const failed = report(run.stdout).findings.find((f) => f.code === "APPLY_FAILED");
		expect(failed?.message).toMatch(/rate limited .*retry in 300 s \(at \d\d:\d\d:\d\d UTC\)/);
		expect(ledgerNames(p.db())).not.toContain(TAGS);
		expect(p.db().prepare("SELECT count(*) FROM workers_pipeline_lock").pluck().get()).toBe(0);
	});
});

describe("migrate --to NNNN", () => {
	it("applies pending migrations up to and including that number, and leaves the rest pending", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		const run = await p.cli(["migrate", "--env", ENV, "--to", TAGS.slice(0, 4), "--json"]);
		expect(run.code, run.stdout).toBe(0);
		expect(ledgerNames(p.db())).toContain(TAGS);
		expect(ledgerNames(p.db())).not.toContain(UNIQUE_BODY);
		expect(report(run.stdout).migrations.find((m) => m.name === UNIQUE_BODY)?.status).toBe(
			"pending",
		);
		const again = await p.cli(["migrate", "--env", ENV, "--to", TAGS.slice(0, 4)]);
		expect(again.code).toBe(0);
		expect(again.stdout).toMatch(new RegExp(`nothing to apply up to ${TAGS.slice(0, 4)}`));
	});

	it.each([
		["abc", /--to expects a migration number/],
		["9999", /no migration file is numbered 9999/],
	])("refuses --to %s before contacting D1 (exit 2)", async (to, message) => {
		const p = await migrated([TAGS]);
		const before = loopback.api.requests.length;
		const run = await p.cli(["migrate", "--env", ENV, "--to", to]);
		expect(run.code).toBe(2);
		expect(run.stderr).toMatch(message);
		expect(loopback.api.requests.slice(before).filter((r) => r.path.includes(p.uuid))).toEqual([]);
	});
});

describe("the row-count guard", () => {
	it("refuses, atomically, a rebuild of a parent whose CASCADE would delete its children's rows", async () => {
		const p = await migrated([]);
		const content = () => p.db().prepare("SELECT count(*) FROM content").pluck().get() as number;
		const before = content();
		expect(before).toBeGreaterThan(0);
		const rebuild = nextMigrationName("rebuild_projects", 2);
		p.writeMigration(
			rebuild,
			"PRAGMA defer_foreign_keys = ON;\nCREATE TABLE projects_new (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE, name TEXT NOT NULL, slug TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), archived INTEGER NOT NULL DEFAULT 0);\nINSERT INTO projects_new SELECT * FROM projects;\nDROP TABLE projects;\nALTER TABLE projects_new RENAME TO projects;\nPRAGMA defer_foreign_keys = OFF;\n",
		);
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code, run.stdout).toBe(1);
		const finding = report(run.stdout).findings.find((f) => f.code === "ROW_COUNT_GUARD");
		expect(finding?.file).toBe(`migrations/${rebuild}`);
		expect(finding?.message).toContain(
			`content: ${before} row(s) now, reached by ON DELETE CASCADE from projects`,
		);
		expect(content()).toBe(before);
		expect(ledgerNames(p.db())).not.toContain(rebuild);
	});
});

describe("a migration one request cannot carry", () => {
	it("goes through D1's import API, atomically with its ledger rows", async () => {
		const p = await migrated([]);
		const bulk = nextMigrationName("bulk_rows", 2);
		const inserts = Array.from(
			{ length: 2000 },
			(_, i) => `INSERT INTO bulk (id, v) VALUES (${i + 1}, 'row ${i + 1} of the bulk load');`,
		);
		p.writeMigration(
			bulk,
			`CREATE TABLE bulk (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n${inserts.join("\n")}\n`,
		);
		const before = loopback.api.requests.length;
		const run = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(run.code, run.stdout).toBe(0);
		const mine = loopback.api.requests.slice(before).filter((r) => r.path.includes(p.uuid));
		expect(mine.some((r) => r.path.endsWith("/import") && r.body?.includes('"ingest"'))).toBe(true);
		expect(
			mine.some((r) => r.path.endsWith("/query") && r.body?.includes("INSERT INTO bulk")),
		).toBe(false);
		expect(ledgerNames(p.db()).filter((n) => n === bulk)).toHaveLength(1);
		expect(p.db().prepare("SELECT count(*) FROM bulk").pluck().get()).toBe(2000);
		expect(
			p
				.db()
				.prepare("SELECT run_id FROM workers_pipeline_migrations WHERE name = ?")
				.pluck()
				.get(bulk),
		).toBeTruthy();
		const row = report(run.stdout).migrations.find((m) => m.name === bulk);
		expect(row?.note).toMatch(/applied through D1's import API: its SQL is \d+ bytes/);
	});
});

describe("an operator's restore during a run", () => {
	it("is recognised: the run builds nothing on the restored database and never restores again", async () => {
		const p = await migrated([TAGS, UNIQUE_BODY]);
		let bookmark: string | undefined;
		let restoring: Promise<Response> | undefined;
		loopback.api.setFaultHook((request) => {
			if (!request.path.endsWith(`/${p.uuid}/query`)) return undefined;
			if (request.body?.includes(`values ('${TAGS}')`))
				bookmark ??= loopback.api.currentBookmark(p.uuid);
			if (request.body?.includes(`values ('${UNIQUE_BODY}')`) && !restoring) {
				// The operator restores while this request is in flight (it is held 300 ms).
				restoring = fetch(
					`${loopback.api.url}/accounts/${ACCOUNT_ID}/d1/database/${p.uuid}/time_travel/restore?bookmark=${bookmark}`,
					{ method: "POST", headers: { authorization: `Bearer ${token}` } },
				);
				return { kind: "delay", ms: 300 };
			}
			return undefined;
		});
		const run = await p.cli(["migrate", "--env", ENV, "--auto-restore", "--json"]);
		expect((await restoring)?.status).toBe(200);
		expect(run.code, run.stdout).toBe(1);
		expect(codes(report(run.stdout))).toContain("LOCK_LOST");
		expect(codes(report(run.stdout))).toContain("RESTORE_REFUSED");
		// Only the operator's restore happened, and nothing was applied on top of it.
		expect(restores(p)).toBe(1);
		expect(ledgerNames(p.db())).not.toContain(TAGS);
		expect(ledgerNames(p.db())).not.toContain(UNIQUE_BODY);
	});
});
