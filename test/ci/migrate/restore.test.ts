// Time Travel in migrate: --auto-restore after a failed apply or a failed validation, the printed
// restore command and the `restore` command itself, and --rehearse stopping data-dependent failures
// before production is touched. All against the loopback Cloudflare API.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { FaultRequest } from "../../support/cloudflare-api.ts";
import {
	auditChecksums,
	ENV,
	EXAMPLE_FILES,
	EXAMPLE_MIGRATIONS,
	hasTable,
	type JsonReport,
	ledgerNames,
	type MigrateProject,
	nextMigrationName,
	setupLoopbackApi,
	userState,
} from "./_support.ts";

const loopback = setupLoopbackApi({ assertNoTokenLeak: true });
const { token } = loopback;

// Applied in the first run, then given duplicate labels directly in the remote data.
const TAGS = nextMigrationName("create_tags", 1);
// Pending in the second run: a harmless one first, then one that fails only on that data.
const LABELS = nextMigrationName("create_labels", 2);
const UNIQUE_LABEL = nextMigrationName("unique_tag_label", 3);
const NOT_NULL_WEIGHT = nextMigrationName("add_tag_weight", 3);
const FILES: Record<string, string> = {
	[TAGS]: "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL);\n",
	[LABELS]: "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
	[UNIQUE_LABEL]: "CREATE UNIQUE INDEX tags_label_uq ON tags (label);\n",
	// Fine on an empty table; SQLite refuses it on a table with rows.
	[NOT_NULL_WEIGHT]: "ALTER TABLE tags ADD COLUMN weight INTEGER NOT NULL;\n",
};
const APPLIED_FIRST = [...EXAMPLE_MIGRATIONS, TAGS];

/** A database migrated through TAGS, whose tags hold a duplicate label; `pending` files added after. */
async function migratedWithDuplicates(pending: string[]): Promise<MigrateProject> {
	const p = loopback.project({
		migrations: { ...EXAMPLE_FILES, [TAGS]: FILES[TAGS] ?? "" },
	});
	const first = await p.cli(["migrate", "--env", ENV]);
	expect(first.code, first.stdout + first.stderr).toBe(0);
	expect(ledgerNames(p.db())).toEqual(APPLIED_FIRST);
	p.db().exec("INSERT INTO tags (label) VALUES ('dup'), ('other'), ('dup');");
	for (const name of pending) p.writeMigration(name, FILES[name] ?? "");
	return p;
}

const json = (stdout: string) => JSON.parse(stdout) as JsonReport;
const stepData = (report: JsonReport) => report.steps[0]?.data ?? {};
const statusOf = (report: JsonReport, name: string) =>
	report.migrations.find((m) => m.name === name)?.status;

/** The `/query` requests this project's database received, as [status, sql]. */
const queries = (p: MigrateProject) =>
	loopback.api.requests
		.filter((r) => r.path.endsWith(`/${p.uuid}/query`))
		.map((r) => [r.status, String(JSON.parse(r.body ?? "{}").sql ?? "")] as const);
const appliedRequest = (p: MigrateProject, name: string) =>
	queries(p).find(([, sql]) => sql.includes(`values ('${name}')`));

/**
 * Serializes the database when the bookmark is read (nothing else runs then, so these are the
 * bookmark's bytes) and again on the first request after a Time Travel restore.
 */
function watchRestore(p: MigrateProject, onRequest?: (request: FaultRequest) => void) {
	const seen: { atBookmark?: Buffer; afterRestore?: Buffer; restored: boolean } = {
		restored: false,
	};
	loopback.api.setFaultHook((request) => {
		if (!request.path.includes(`/${p.uuid}/`)) return undefined;
		onRequest?.(request);
		// The run's bookmark is its first; later reads (the restore-safety check) compare, not record.
		if (request.path.endsWith("/time_travel/bookmark"))
			seen.atBookmark ??= loopback.api.serialize(p.uuid);
		else if (request.path.endsWith("/time_travel/restore")) seen.restored = true;
		else if (seen.restored && seen.afterRestore === undefined)
			seen.afterRestore = loopback.api.serialize(p.uuid);
		return undefined;
	});
	return seen;
}

describe("migrate --auto-restore", () => {
	it("restores the bookmark after a migration fails on remote data, undoing the earlier ones", async () => {
		const p = await migratedWithDuplicates([LABELS, UNIQUE_LABEL]);
		const before = userState(p.db());
		const seen = watchRestore(p);

		const run = await p.cli(["migrate", "--env", ENV, "--auto-restore", "--json"]);
		expect(run.code, run.stderr).toBe(1);

		// LABELS really was applied in this run before UNIQUE_LABEL failed.
		expect(appliedRequest(p, LABELS)?.[0]).toBe(200);
		expect(appliedRequest(p, UNIQUE_LABEL)?.[0]).toBe(400);
		// Right after the restore the database is the bookmark's, byte for byte.
		expect(seen.atBookmark).toBeDefined();
		expect(seen.afterRestore?.equals(seen.atBookmark as Buffer)).toBe(true);
		// And after the run (which then released its lock): everything as before the run.
		expect(userState(p.db())).toEqual(before);
		expect(ledgerNames(p.db()).at(-1)).toBe(TAGS);
		expect(hasTable(p.db(), "labels")).toBe(false);

		const report = json(run.stdout);
		const failed = report.findings.find((f) => f.code === "APPLY_FAILED");
		expect(failed?.file).toBe(`migrations/${UNIQUE_LABEL}`);
		expect(failed?.message).toContain("UNIQUE constraint failed");
		expect(stepData(report).restore).toMatchObject({
			performed: true,
			confirmed: true,
			headAfterRestore: TAGS,
		});
		expect(report.steps[0]?.summary).toContain("database restored to the bookmark");
		expect(statusOf(report, LABELS)).toBe("not-run");
		expect(statusOf(report, UNIQUE_LABEL)).toBe("failed");
		// The written reports say the same.
		expect(p.report("migrate").steps[0]?.data.restore).toMatchObject({ confirmed: true });
		const runs = p.db().prepare("SELECT status FROM workers_pipeline_runs").pluck().all();
		expect(runs).toEqual(["succeeded", "restored"]);
	});

	it("restores when the remote schema differs from the replay after applying", async () => {
		const p = await migratedWithDuplicates([LABELS]);
		const before = userState(p.db());
		// Someone changes the schema by hand after the preflight, just before the last migration's
		// request (which reads the schema back for validation) runs: after it nothing else writes,
		// so restoring undoes only this run's window.
		let altered = false;
		const seen = watchRestore(p, (request) => {
			if (!request.path.endsWith("/query")) return;
			if (!altered && request.body?.includes(`values ('${LABELS}')`)) {
				p.db().exec("CREATE TABLE made_by_hand (id INTEGER PRIMARY KEY);");
				altered = true;
			}
		});

		const run = await p.cli(["migrate", "--env", ENV, "--auto-restore", "--json"]);
		expect(run.code, run.stderr).toBe(1);
		expect(altered).toBe(true);
		expect(appliedRequest(p, LABELS)?.[0]).toBe(200);
		const report = json(run.stdout);
		const mismatch = report.findings.find((f) => f.code === "VALIDATE_SCHEMA_MISMATCH");
		expect(mismatch?.message).toContain("made_by_hand");
		expect(stepData(report).restore).toMatchObject({
			performed: true,
			confirmed: true,
			headAfterRestore: TAGS,
		});
		expect(seen.afterRestore?.equals(seen.atBookmark as Buffer)).toBe(true);
		expect(userState(p.db())).toEqual(before);
		expect(hasTable(p.db(), "made_by_hand")).toBe(false);
		expect(hasTable(p.db(), "labels")).toBe(false);
	});
});

describe("migrate without --auto-restore, then `restore`", () => {
	it("prints the exact restore command, which puts the database back and shows the head", async () => {
		const p = await migratedWithDuplicates([LABELS, UNIQUE_LABEL]);
		const before = userState(p.db());

		const run = await p.cli(["migrate", "--env", ENV]);
		expect(run.code, run.stderr).toBe(1);
		// Nothing was restored: LABELS stays applied, the failure left the rest.
		expect(ledgerNames(p.db())).toEqual([...APPLIED_FIRST, LABELS]);
		const report = p.report("migrate");
		const bookmark = stepData(report).bookmark as string;
		expect(bookmark).toMatch(/\S{20,}/);
		const command = `workers-pipeline restore --env ${ENV} --binding DB --bookmark ${bookmark}`;
		expect(stepData(report).restore).toMatchObject({ performed: false });
		const available = report.findings.find((f) => f.code === "RESTORE_AVAILABLE");
		expect(available?.message).toContain(command);
		expect(available?.message).toContain(
			`wrangler d1 time-travel restore ${p.databaseName} --env ${ENV} --bookmark=${bookmark}`,
		);
		expect(run.stdout + run.stderr).toContain(command);
		expect(readFileSync(path.join(p.dir, ".reports/migrate.md"), "utf8")).toContain(command);

		// Run exactly what was printed (minus the program name).
		const argv = command.split(" ").slice(1);
		const restore = await p.cli(argv);
		expect(restore.code, restore.stdout + restore.stderr).toBe(0);
		expect(restore.stdout).toContain(`ledger head is now ${TAGS}`);
		expect(p.report("restore").steps[0]?.data).toMatchObject({ bookmark, head: TAGS });
		expect(userState(p.db())).toEqual(before);
		expect(p.db().prepare("SELECT count(*) FROM workers_pipeline_lock").pluck().get()).toBe(0);
		// The restored database migrates again once the data is fixed.
		p.db().exec("DELETE FROM tags WHERE id = 3;");
		const again = await p.cli(["migrate", "--env", ENV]);
		expect(again.code, again.stdout + again.stderr).toBe(0);
		expect(ledgerNames(p.db())).toEqual([...APPLIED_FIRST, LABELS, UNIQUE_LABEL]);
	});
});

describe("migrate --rehearse", () => {
	const cases = [
		{ title: "duplicate rows under a new UNIQUE index", failing: UNIQUE_LABEL, error: "UNIQUE" },
		{
			title: "a NOT NULL column without default on a table with rows",
			failing: NOT_NULL_WEIGHT,
			error: "NOT NULL",
		},
	] as const;
	for (const { title, failing, error } of cases) {
		it(`stops before production on ${title}`, async () => {
			const p = await migratedWithDuplicates([LABELS, failing]);
			const before = userState(p.db());
			const bytesBefore = loopback.api.serialize(p.uuid);
			const requestsBefore = loopback.api.requests.length;

			const run = await p.cli(["migrate", "--env", ENV, "--rehearse", "--json"]);
			expect(run.code, run.stderr).toBe(1);
			const report = json(run.stdout);
			const rehearsal = report.findings.find((f) => f.code === "REHEARSAL_FAILED");
			expect(rehearsal?.file).toBe(`migrations/${failing}`);
			expect(rehearsal?.message).toContain(error);
			expect(report.steps[0]?.summary).toContain("production was not touched");
			expect(stepData(report).rehearsal).toMatchObject({ ok: false, copy: { complete: true } });

			// The copy was read with queries, never with the export API (it refuses FTS5 and blocks
			// every query while it runs), and no migration request was ever sent.
			const mine = loopback.api.requests
				.slice(requestsBefore)
				.filter((r) => r.path.includes(p.uuid));
			expect(mine.some((r) => r.path.endsWith("/export"))).toBe(false);
			expect(appliedRequest(p, LABELS)).toBeUndefined();
			expect(appliedRequest(p, failing)).toBeUndefined();
			// The rehearsal runs before the lock: not one byte of the database changed.
			expect(loopback.api.serialize(p.uuid).equals(bytesBefore)).toBe(true);
			expect(userState(p.db())).toEqual(before);
			expect(ledgerNames(p.db())).toEqual(APPLIED_FIRST);
			expect([...auditChecksums(p.db()).keys()].sort()).toEqual([...APPLIED_FIRST].sort());
		});
	}
});

describe("migrate --rehearse on a database with FTS5", () => {
	it("copies it with paged reads, rebuilds the index locally, and predicts each migration's time", async () => {
		const DOCS = nextMigrationName("create_docs_fts", 1);
		const SEARCH = nextMigrationName("docs_search_view", 2);
		const p = loopback.project({
			migrations: {
				...EXAMPLE_FILES,
				[DOCS]: "CREATE VIRTUAL TABLE docs USING fts5(title, body);\n",
			},
		});
		expect((await p.cli(["migrate", "--env", ENV])).code).toBe(0);
		p.db().exec("INSERT INTO docs (title, body) VALUES ('one', 'alpha beta'), ('two', 'gamma');");
		p.writeMigration(
			SEARCH,
			"CREATE TABLE doc_hits (title TEXT NOT NULL);\nINSERT INTO doc_hits SELECT title FROM docs WHERE docs MATCH 'alpha';\n",
		);
		const requestsBefore = loopback.api.requests.length;
		const run = await p.cli(["migrate", "--env", ENV, "--rehearse", "--json"]);
		expect(run.code, run.stderr).toBe(0);
		const rehearsal = stepData(json(run.stdout)).rehearsal as {
			ok: boolean;
			copy: { rows: number; complete: boolean };
			predictions: { name: string; predictedMs: number }[];
		};
		expect(rehearsal).toMatchObject({ ok: true, copy: { complete: true } });
		expect(rehearsal.predictions.map((x) => x.name)).toEqual([SEARCH]);
		expect(rehearsal.predictions[0]?.predictedMs).toBeGreaterThanOrEqual(0);
		const mine = loopback.api.requests.slice(requestsBefore).filter((r) => r.path.includes(p.uuid));
		expect(mine.some((r) => r.path.endsWith("/export"))).toBe(false);
		expect(p.db().prepare("SELECT title FROM doc_hits").pluck().all()).toEqual(["one"]);
	});
});

describe("the API token", () => {
	it("is redacted even where D1's own error quotes it, in output and in reports", async () => {
		const bad = nextMigrationName("quotes_the_token", 1);
		const p = loopback.project({
			migrations: { ...EXAMPLE_FILES, [bad]: `INSERT INTO "${token}" (id) VALUES (1);\n` },
		});
		const run = await p.cli(["migrate", "--env", ENV]);
		expect(run.code).toBe(1);
		expect(run.stdout).toContain("no such table: ***");
		expect(p.report("migrate").findings.map((f) => f.code)).toContain("REPLAY_FAILED");
		// The scan every test ends with finds nothing here, and does find a planted leak.
		p.assertNoTokenLeak();
		p.outputs.push(`leaked ${token}`);
		expect(() => p.assertNoTokenLeak()).toThrow("captured output");
		p.outputs.pop();
		writeFileSync(path.join(p.dir, ".reports/planted.txt"), token);
		expect(() => p.assertNoTokenLeak()).toThrow(".reports/planted.txt");
		rmSync(path.join(p.dir, ".reports/planted.txt"));
	});
});
