// Real wrangler and workers-pipeline on the same remote database, both ways, through the loopback
// Cloudflare API: each must see the other's work as its own.
import { describe, expect, it } from "vitest";
import {
	auditChecksums,
	ENV,
	EXAMPLE_FILES,
	EXAMPLE_MIGRATIONS,
	type JsonReport,
	ledgerNames,
	type MigrateProject,
	setupLoopbackApi,
} from "./_support.ts";

const loopback = setupLoopbackApi({ assertNoTokenLeak: true });

const project = (migrations: readonly string[] = EXAMPLE_MIGRATIONS) =>
	loopback.project({ migrations });

const FIRST = EXAMPLE_MIGRATIONS.slice(0, 4);
const REST = EXAMPLE_MIGRATIONS.slice(4);

const wranglerArgs = (command: "list" | "apply") => [
	"d1",
	"migrations",
	command,
	"DB",
	"--remote",
	"--env",
	ENV,
];

const parseJson = (stdout: string) => JSON.parse(stdout) as JsonReport;
const statuses = (report: JsonReport) =>
	Object.fromEntries(report.migrations.map((m) => [m.name, m.status]));
const expectStatuses = (report: JsonReport, names: readonly string[], status: string) =>
	expect(statuses(report)).toEqual(
		expect.objectContaining(Object.fromEntries(names.map((n) => [n, status]))),
	);

interface LedgerRow {
	id: number;
	name: string;
	applied_at: string;
}
const ledgerRows = (p: MigrateProject) =>
	p.db().prepare("SELECT id, name, applied_at FROM d1_migrations ORDER BY id").all() as LedgerRow[];
const ledgerColumns = (p: MigrateProject) =>
	p
		.db()
		.prepare(
			"SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo('d1_migrations')",
		)
		.all();

describe("workers-pipeline migrate, then wrangler", () => {
	it("leaves wrangler nothing pending, with ledger rows in wrangler's own format", async () => {
		const ours = project();
		const migrate = await ours.cli(["migrate", "--env", ENV]);
		expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);

		const list = await ours.wrangler(wranglerArgs("list"));
		expect(list.code, list.stdout + list.stderr).toBe(0);
		expect(list.stdout).toContain("No migrations to apply");
		for (const name of EXAMPLE_MIGRATIONS) expect(list.stdout).not.toContain(name);
		// A second wrangler apply must not re-run anything either.
		const apply = await ours.wrangler(wranglerArgs("apply"));
		expect(apply.code, apply.stdout + apply.stderr).toBe(0);
		expect(apply.stdout).toContain("No migrations to apply");

		// The same files applied by wrangler alone, on a second database: the ledgers must match.
		const theirs = project();
		const reference = await theirs.wrangler(wranglerArgs("apply"));
		expect(reference.code, reference.stdout + reference.stderr).toBe(0);

		expect(ledgerColumns(ours)).toEqual(ledgerColumns(theirs));
		const strip = (rows: LedgerRow[]) => rows.map(({ id, name }) => ({ id, name }));
		expect(strip(ledgerRows(ours))).toEqual(strip(ledgerRows(theirs)));
		expect(strip(ledgerRows(ours))).toEqual(
			EXAMPLE_MIGRATIONS.map((name, i) => ({ id: i + 1, name })),
		);
		// wrangler's ledger default: CURRENT_TIMESTAMP, "YYYY-MM-DD HH:MM:SS" in UTC.
		const timestamp = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;
		for (const row of [...ledgerRows(ours), ...ledgerRows(theirs)])
			expect(row.applied_at).toMatch(timestamp);
		// wrangler never writes checksums; ours are recorded beside its table.
		expect([...auditChecksums(ours.db()).keys()].sort()).toEqual([...EXAMPLE_MIGRATIONS]);
		expect(auditChecksums(theirs.db()).size).toBe(0);
	});
});

describe("a migrations_table that needs quoting (wrangler quotes it: d1/migrations/helpers.ts)", () => {
	it("is one ledger for wrangler and workers-pipeline", async () => {
		const table = 'app ledger-"v2"';
		const p = loopback.project({ migrations: EXAMPLE_MIGRATIONS, migrationsTable: table });
		const migrate = await p.cli(["migrate", "--env", ENV]);
		expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
		const list = await p.wrangler(wranglerArgs("list"));
		expect(list.code, list.stdout + list.stderr).toBe(0);
		expect(list.stdout).toContain("No migrations to apply");
		const rows = p.db().prepare('SELECT name FROM "app ledger-""v2""" ORDER BY id').all();
		expect(rows).toEqual(EXAMPLE_MIGRATIONS.map((name) => ({ name })));
		// No second ledger under wrangler's default name.
		const other = p.db().prepare("SELECT name FROM sqlite_schema WHERE name = 'd1_migrations'");
		expect(other.all()).toEqual([]);
	});
});

describe("a Windows checkout (CRLF): the same rows as wrangler's apply", () => {
	it("keeps a quoted value's CR LF, as wrangler sends it (d1/splitter.ts normalizeSqlLineEndings)", async () => {
		const files = {
			"0001_notes.sql":
				"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\r\n-- a seed row\r\nINSERT INTO notes (body) VALUES ('line one\r\nline two');\r\n",
		};
		const ours = loopback.project({ migrations: files });
		const migrate = await ours.cli(["migrate", "--env", ENV]);
		expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
		const theirs = loopback.project({ migrations: files });
		const apply = await theirs.wrangler(wranglerArgs("apply"));
		expect(apply.code, apply.stdout + apply.stderr).toBe(0);
		const body = (p: MigrateProject) => p.db().prepare("SELECT body FROM notes").pluck().get();
		expect(body(theirs)).toBe("line one\r\nline two");
		expect(body(ours)).toBe(body(theirs));
	});
});

describe("wrangler migrations apply, then workers-pipeline", () => {
	it("records wrangler's migrations, applies the rest, and then verifies them all", async () => {
		const p = project(FIRST);
		const applied = await p.wrangler(wranglerArgs("apply"));
		expect(applied.code, applied.stdout + applied.stderr).toBe(0);
		expect(ledgerNames(p.db())).toEqual(FIRST);
		for (const name of REST) p.writeMigration(name, EXAMPLE_FILES[name] ?? "");

		const before = await p.cli(["plan", "--env", ENV, "--json"]);
		expect(before.code, before.stdout + before.stderr).toBe(0);
		const planned = parseJson(before.stdout);
		expect(planned.migrations.map((m) => m.name)).toEqual([...EXAMPLE_MIGRATIONS]);
		expectStatuses(planned, FIRST, "unrecorded");
		expectStatuses(planned, REST, "pending");
		expect(planned.steps[0]?.summary).toContain(`${FIRST.length} without checksum yet`);

		const migrate = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
		const migrated = parseJson(migrate.stdout);
		expectStatuses(migrated, FIRST, "recorded");
		expectStatuses(migrated, REST, "applied");
		expect(ledgerNames(p.db())).toEqual([...EXAMPLE_MIGRATIONS]);
		// The checksums recorded for wrangler's migrations are those of the files.
		const recorded = auditChecksums(p.db());
		for (const m of migrated.migrations) expect(recorded.get(m.name)).toBe(m.checksum);

		const after = await p.cli(["plan", "--env", ENV, "--json"]);
		expect(after.code, after.stdout + after.stderr).toBe(0);
		expectStatuses(parseJson(after.stdout), EXAMPLE_MIGRATIONS, "verified");

		const list = await p.wrangler(wranglerArgs("list"));
		expect(list.code, list.stdout + list.stderr).toBe(0);
		expect(list.stdout).toContain("No migrations to apply");
	});

	it("refuses to record a wrangler-applied migration edited since, and writes nothing", async () => {
		const p = project(FIRST);
		const applied = await p.wrangler(wranglerArgs("apply"));
		expect(applied.code, applied.stdout + applied.stderr).toBe(0);
		for (const name of REST) p.writeMigration(name, EXAMPLE_FILES[name] ?? "");
		// An edit that changes what the file creates: the database no longer matches the files.
		const edited = FIRST[2] as string;
		p.writeMigration(
			edited,
			`${EXAMPLE_FILES[edited]}\nCREATE TABLE edited_after_apply (id INTEGER PRIMARY KEY);\n`,
		);
		const bytes = loopback.api.serialize(p.uuid);

		const migrate = await p.cli(["migrate", "--env", ENV, "--json"]);
		expect(migrate.code, migrate.stdout + migrate.stderr).toBe(1);
		const report = parseJson(migrate.stdout);
		const drift = report.findings.find((f) => f.code === "PREFLIGHT_SCHEMA_DRIFT");
		expect(drift?.severity).toBe("error");
		expect(drift?.message).toContain("edited_after_apply");
		expect(drift?.message).toContain(edited);
		expect(report.steps[0]?.summary).toContain("nothing was written");
		expect(loopback.api.serialize(p.uuid).equals(bytes)).toBe(true);
		// The report files say the same as stdout.
		expect(p.report("migrate").findings.map((f) => f.code)).toContain("PREFLIGHT_SCHEMA_DRIFT");
	});
});
