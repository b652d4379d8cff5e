// What a migrate costs in requests, read from the loopback's request log: a happy path of N
// pending is at most N + 3 (state read, claim, bookmark, one request per migration, the last of
// which releases the lock), and the paths where that last request must not release it.
import { describe, expect, it } from "vitest";
import {
	ENV,
	EXAMPLE_FILES,
	EXAMPLE_MIGRATIONS,
	type JsonReport,
	ledgerNames,
	type MigrateProject,
	nextMigrationName,
	setupLoopbackApi,
} from "./_support.ts";

const loopback = setupLoopbackApi({ log: () => {} });

/** A database migrated through the examples, then `count` new pending files. */
async function migratedWithPending(count: number): Promise<{ p: MigrateProject; names: string[] }> {
	const p = loopback.project({ migrations: EXAMPLE_FILES });
	const first = await p.cli(["migrate", "--env", ENV]);
	expect(first.code, first.stdout + first.stderr).toBe(0);
	const names = Array.from({ length: count }, (_, i) => nextMigrationName(`table_${i + 1}`, i + 1));
	for (const [i, name] of names.entries())
		p.writeMigration(name, `CREATE TABLE t${i + 1} (id INTEGER PRIMARY KEY, v TEXT);\n`);
	return { p, names };
}

/** Runs migrate and returns the requests it sent to this project's database. */
async function migrate(p: MigrateProject, argv: string[] = []) {
	const before = loopback.api.requests.length;
	const run = await p.cli(["migrate", "--env", ENV, "--json", ...argv]);
	const sent = loopback.api.requests.slice(before).filter((r) => r.path.includes(`/${p.uuid}`));
	return { run, sent, report: JSON.parse(run.stdout) as JsonReport };
}

const lockRows = (p: MigrateProject) =>
	p.db().prepare("SELECT run_id FROM workers_pipeline_lock").pluck().all() as string[];
const runStatuses = (p: MigrateProject) =>
	p
		.db()
		.prepare("SELECT status FROM workers_pipeline_runs ORDER BY started_at, rowid")
		.pluck()
		.all();
const isWrite = (r: { path: string; body?: string }) =>
	r.path.endsWith("/query") && /INSERT|DELETE|UPDATE|CREATE/i.test(r.body ?? "");

describe("a happy-path migrate", () => {
	it.each([1, 5])("of %i pending sends at most pending + 3 requests", async (count) => {
		const { p, names } = await migratedWithPending(count);
		const { run, sent, report } = await migrate(p);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(ledgerNames(p.db())).toEqual([...EXAMPLE_MIGRATIONS, ...names]);
		expect(sent.length).toBeLessThanOrEqual(count + 3);
		// The report counts the same requests.
		expect(report.steps[0]?.data.requests).toBe(sent.length);
		// The bookmark comes before the first migration is written.
		const bookmarkAt = sent.findIndex((r) => r.path.endsWith("/time_travel/bookmark"));
		const firstApply = sent.findIndex((r) => r.body?.includes(`values ('${names[0]}')`));
		expect(bookmarkAt).toBeGreaterThanOrEqual(0);
		expect(bookmarkAt).toBeLessThan(firstApply);
		// The last request applied the last migration and released the lock, recording success.
		expect(sent.at(-1)?.body).toContain(`values ('${names.at(-1)}')`);
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "succeeded"]);
		expect(report.steps[0]?.data.lock).toMatchObject({ released: true });
		expect(report.steps[0]?.data.validated).toBe(true);
		// Every migration's audit row has its duration on D1's clock.
		const durations = p
			.db()
			.prepare(
				`SELECT duration_ms FROM workers_pipeline_migrations WHERE name IN (${names.map(() => "?").join(", ")})`,
			)
			.pluck()
			.all(...names);
		expect(durations).toHaveLength(count);
		for (const d of durations) expect(d).toEqual(expect.any(Number));
	});

	it("releases with a request of its own when D1's schema text differs from the replay's only in form", async () => {
		const { p } = await migratedWithPending(0);
		// Applied by hand as wrangler would record it, with other whitespace than the file: the
		// schema checks (on the canonical form) pass, the release's raw-text condition does not.
		const byHand = nextMigrationName("by_hand", 1);
		const names = [nextMigrationName("after_hand", 2)];
		p.writeMigration(byHand, "CREATE TABLE by_hand (id INTEGER PRIMARY KEY, v TEXT);\n");
		p.writeMigration(names[0] as string, "CREATE TABLE after_hand (id INTEGER PRIMARY KEY);\n");
		p.db().exec(
			`CREATE TABLE by_hand (id INTEGER PRIMARY KEY,   v TEXT);\nINSERT INTO d1_migrations (name) VALUES ('${byHand}');`,
		);
		const { run, sent, report } = await migrate(p);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(ledgerNames(p.db())).toEqual([...EXAMPLE_MIGRATIONS, byHand, ...names]);
		expect(report.steps[0]?.data.validated).toBe(true);
		// The last migration's request did not release; a release request followed it.
		const last = sent.findIndex((r) => r.body?.includes(`values ('${names.at(-1)}')`));
		expect(sent.slice(last + 1).filter(isWrite)).toHaveLength(1);
		expect(sent.at(-1)?.body).toContain("DELETE FROM workers_pipeline_lock");
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "succeeded"]);
	});
});

describe("the release on other paths", () => {
	it("--to: the last migration of the cut plan carries it", async () => {
		const { p, names } = await migratedWithPending(3);
		const { run, sent } = await migrate(p, ["--to", (names[1] as string).slice(0, 4)]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(ledgerNames(p.db())).toEqual([...EXAMPLE_MIGRATIONS, ...names.slice(0, 2)]);
		expect(sent.length).toBeLessThanOrEqual(2 + 3);
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "succeeded"]);
	});

	it("a last migration through the import API: released by a request of its own", async () => {
		const { p } = await migratedWithPending(0);
		const bulk = nextMigrationName("bulk_rows", 1);
		const rows = Array.from(
			{ length: 3000 },
			(_, i) => `INSERT INTO bulk (v) VALUES ('row ${i} of the bulk load');`,
		);
		p.writeMigration(
			bulk,
			`CREATE TABLE bulk (id INTEGER PRIMARY KEY, v TEXT);\n${rows.join("\n")}\n`,
		);
		const { run, sent, report } = await migrate(p);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(sent.some((r) => r.path.endsWith("/import"))).toBe(true);
		expect(sent.at(-1)?.body).toContain("DELETE FROM workers_pipeline_lock");
		expect(report.steps[0]?.data.validated).toBe(true);
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "succeeded"]);
	});
});

describe("a lost answer to the last migration's request", () => {
	it("is settled by reads: applied once, the landed release recognised, no release request", async () => {
		const { p, names } = await migratedWithPending(2);
		let reset = false;
		loopback.api.setFaultHook((request) => {
			if (reset || !request.body?.includes(`values ('${names[1]}')`)) return undefined;
			reset = true;
			return { kind: "reset-after" };
		});
		const { run, sent, report } = await migrate(p);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(reset).toBe(true);
		expect(ledgerNames(p.db())).toEqual([...EXAMPLE_MIGRATIONS, ...names]);
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "succeeded"]);
		expect(report.steps[0]?.data.validated).toBe(true);
		// After the lost answer only reads: the ledger, then whether the release landed.
		const last = sent.findIndex((r) => r.body?.includes(`values ('${names[1]}')`));
		expect(sent.slice(last + 1).filter(isWrite)).toEqual([]);
		expect(sent.slice(last + 1).length).toBeGreaterThan(0);
	});
});

describe("a validation that fails after the last migration", () => {
	/** Someone adds a table by hand just before the last migration's request runs. */
	function alterBeforeLast(p: MigrateProject, name: string) {
		const seen = { altered: false, heldAfterLast: [] as string[] };
		let lastDone = false;
		loopback.api.setFaultHook((request) => {
			if (!request.path.includes(`/${p.uuid}/`)) return undefined;
			if (lastDone && seen.heldAfterLast.length === 0) seen.heldAfterLast = lockRows(p);
			if (!seen.altered && request.body?.includes(`values ('${name}')`)) {
				p.db().exec("CREATE TABLE made_by_hand (id INTEGER PRIMARY KEY);");
				seen.altered = true;
				lastDone = true;
			}
			return undefined;
		});
		return seen;
	}

	it("finds the lock still held after that request: reported, restore offered, released after", async () => {
		const { p, names } = await migratedWithPending(2);
		const seen = alterBeforeLast(p, names[1] as string);
		const { run, report } = await migrate(p);
		expect(run.code, run.stdout).toBe(1);
		expect(seen.altered).toBe(true);
		const codes = report.findings.map((f) => f.code);
		expect(codes).toContain("VALIDATE_SCHEMA_MISMATCH");
		expect(codes).toContain("RESTORE_AVAILABLE");
		// The request after the last migration found this run still holding the lock.
		const lock = report.steps[0]?.data.lock as { runId: string; released: boolean };
		expect(seen.heldAfterLast).toEqual([lock.runId]);
		expect(lock.released).toBe(true);
		// Then the run released it and recorded its failure.
		expect(lockRows(p)).toEqual([]);
		expect(runStatuses(p)).toEqual(["succeeded", "failed"]);
	});

	it("with --auto-restore restores under the lock it still holds", async () => {
		const { p, names } = await migratedWithPending(2);
		const seen = alterBeforeLast(p, names[1] as string);
		const { run, sent, report } = await migrate(p, ["--auto-restore"]);
		expect(run.code, run.stdout).toBe(1);
		expect(seen.heldAfterLast).toHaveLength(1);
		expect(report.steps[0]?.data.restore).toMatchObject({ performed: true, confirmed: true });
		expect(sent.filter((r) => r.path.endsWith("/time_travel/restore"))).toHaveLength(1);
		expect(ledgerNames(p.db())).toEqual(EXAMPLE_MIGRATIONS);
		expect(lockRows(p)).toEqual([]);
	});
});
