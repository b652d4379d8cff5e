import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import {
	AUDIT_TABLE,
	claimLockParts,
	clockStartSql,
	clockStopSql,
	composeRequest,
	continuitySql,
	FENCE_TABLE,
	fenceSql,
	GUARD_TABLE,
	guardSql,
	LOCK_TABLE,
	ledgerDigestSql,
	lockHolderSql,
	lockReleasedSql,
	PIPELINE_TABLES,
	parseLedger,
	ROW_COUNTS_TABLE,
	ROW_GUARD_TABLE,
	RUNS_TABLE,
	recordSql,
	releaseLockSql,
	runRecordSql,
	schemaDigestSql,
	setupSql,
} from "../../../ci/migrations/ledger.ts";

const result = (tag: string) => ({ results: [{ tag }], success: true });

describe("composeRequest()", () => {
	it("reads each part's results by name, whatever the parts before it hold", () => {
		const request = composeRequest([
			["a", "SELECT 1;\nSELECT 2;"],
			["empty", ""],
			["b", "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;"],
			["c", "SELECT 3;"],
		]);
		expect(request.counts).toEqual({ a: 2, empty: 0, b: 1, c: 1 });
		const results = ["a1", "a2", "b1", "c1"].map(result);
		expect(request.part(results, "a").map((r) => r.results[0]?.tag)).toEqual(["a1", "a2"]);
		expect(request.part(results, "empty")).toEqual([]);
		expect(request.part(results, "b").map((r) => r.results[0]?.tag)).toEqual(["b1"]);
		expect(request.part(results, "c").map((r) => r.results[0]?.tag)).toEqual(["c1"]);
		expect(request.part(results, "unknown" as "a")).toEqual([]);
		expect(request.sql).toBe(
			"SELECT 1;\nSELECT 2;\n\nCREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;\nSELECT 3;",
		);
	});

	it.each([3, 5])("refuses an answer of %i results for 4 statements", (n) => {
		const request = composeRequest([["a", "SELECT 1; SELECT 2; SELECT 3; SELECT 4;"]]);
		expect(() =>
			request.part(
				Array.from({ length: n }, () => result("x")),
				"a",
			),
		).toThrow(
			expect.objectContaining({
				code: "E_D1_API",
				message: expect.stringMatching(/cannot be matched/),
			}),
		);
	});
});

describe("claimLockParts()", () => {
	it("reads the stale holder before removing it, and the holder after the claim", () => {
		const parts = claimLockParts("run-1", "me", 60);
		expect(parts.stale).toMatch(/^SELECT .* WHERE id = 1 AND expires_at < /);
		expect(parts.claim).toMatch(/^DELETE .*\nINSERT OR IGNORE .*'run-1', 'me'/s);
		expect(parts.holder).toMatch(/^SELECT run_id, owner, .* WHERE id = 1;$/);
	});
});

describe("guardSql()", () => {
	it("fails the request when the ledger already names the migration", () => {
		expect(guardSql("d1_migrations", "0001_it's.sql")).toBe(
			`INSERT INTO workers_pipeline_guard (already_applied) SELECT name FROM "d1_migrations" WHERE name = '0001_it''s.sql';`,
		);
	});
});

describe("recordSql()", () => {
	const entry = {
		name: "0001_a.sql",
		checksum: "abc",
		gitSha: null,
		appliedBy: "me",
		durationMs: 12.4,
		bookmark: "b",
		runId: "r",
		recordedBy: "migrate" as const,
	};
	it.each([
		[true, 2],
		[false, 1],
	])("wrangler: %s writes %i statement(s)", (wrangler, count) => {
		const sql = recordSql("d1_migrations", entry, { wrangler });
		expect(sql.split(";\n").length).toBe(count);
		expect(sql).toContain("'abc', NULL, 'me', 12, 'b', 'r', 'migrate'");
	});
});

// The ledger SQL run on a real SQLite database (D1 is SQLite): what each statement does, not its text.
describe("ledger SQL on SQLite", () => {
	const open = () => {
		const db = new Database(":memory:");
		db.exec(setupSql("d1_migrations"));
		return db;
	};
	const lockRow = (db: Database.Database) =>
		db.prepare(`SELECT run_id, owner, acquired_at, expires_at FROM ${LOCK_TABLE}`).get() as
			| { run_id: string; owner: string; acquired_at: number; expires_at: number }
			| undefined;
	const now = (db: Database.Database) =>
		(db.prepare("SELECT CAST(strftime('%s', 'now') AS INTEGER) AS n").get() as { n: number }).n;
	const claim = (db: Database.Database, runId: string, ttl = 60) => {
		const parts = claimLockParts(runId, `owner of ${runId}`, ttl);
		const stale = db.prepare(parts.stale).all();
		db.exec(parts.claim);
		return { stale, holder: db.prepare(parts.holder).get() as Record<string, unknown> };
	};

	it("setupSql() is idempotent and creates every pipeline table and the ledger", () => {
		const db = open();
		db.exec(setupSql("d1_migrations"));
		const tables = (
			db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
		).map((t) => t.name);
		expect(tables).toEqual(expect.arrayContaining([...PIPELINE_TABLES, "d1_migrations"]));
	});

	it.each([FENCE_TABLE, GUARD_TABLE, ROW_GUARD_TABLE])("%s refuses every row", (table) => {
		const db = open();
		const column = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[])[0]?.name;
		expect(() => db.exec(`INSERT INTO ${table} (${column}) VALUES ('x');`)).toThrow(/CHECK/);
	});

	it("the lock table holds one row at most", () => {
		const db = open();
		expect(() =>
			db.exec(
				`INSERT INTO ${LOCK_TABLE} (id, run_id, owner, acquired_at, expires_at) VALUES (2, 'r', 'o', 0, 0);`,
			),
		).toThrow(/CHECK/);
	});

	it("claimLockParts() claims a free lock for its ttl, and reads no stale holder", () => {
		const db = open();
		const { stale, holder } = claim(db, "run-1", 90);
		expect(stale).toEqual([]);
		expect(holder).toMatchObject({ run_id: "run-1", owner: "owner of run-1" });
		const row = lockRow(db);
		expect(row?.expires_at).toBe((row?.acquired_at ?? 0) + 90);
		expect(Math.abs((row?.acquired_at ?? 0) - now(db))).toBeLessThanOrEqual(1);
	});

	it("claimLockParts() leaves a live lock to its holder", () => {
		const db = open();
		claim(db, "run-1");
		const { stale, holder } = claim(db, "run-2");
		expect(stale).toEqual([]);
		expect(holder).toMatchObject({ run_id: "run-1" });
	});

	it("claimLockParts() takes over an expired lock and names the holder it removed", () => {
		const db = open();
		claim(db, "run-1");
		db.exec(`UPDATE ${LOCK_TABLE} SET expires_at = expires_at - 3600;`);
		const { stale, holder } = claim(db, "run-2");
		expect(stale).toEqual([expect.objectContaining({ run_id: "run-1", owner: "owner of run-1" })]);
		expect(holder).toMatchObject({ run_id: "run-2", owner: "owner of run-2" });
	});

	it("lockHolderSql reads the holder and the database's clock", () => {
		const db = open();
		expect(db.prepare(lockHolderSql).get()).toBeUndefined();
		claim(db, "run-1");
		const row = db.prepare(lockHolderSql).get() as { now: number; run_id: string };
		expect(Math.abs(row.now - now(db))).toBeLessThanOrEqual(1);
		expect(row).toMatchObject({ run_id: "run-1", owner: "owner of run-1" });
	});

	it("fenceSql() passes for the holder and extends its lease", () => {
		const db = open();
		claim(db, "run-1", 10);
		db.exec(fenceSql("run-1", 500));
		const row = lockRow(db);
		expect((row?.expires_at ?? 0) - now(db)).toBeGreaterThanOrEqual(499);
		expect((row?.expires_at ?? 0) - now(db)).toBeLessThanOrEqual(500);
	});

	it.each([
		["another run holds the lock", "run-2"],
		["nobody holds it", null],
	])("fenceSql() fails the request when %s, and leaves the lease alone", (_, holder) => {
		const db = open();
		if (holder) claim(db, holder, 10);
		const before = lockRow(db);
		expect(() => db.exec(`BEGIN; ${fenceSql("run-1", 500)} COMMIT;`)).toThrow(/CHECK/);
		db.exec("ROLLBACK;");
		expect(lockRow(db)).toEqual(before);
	});

	it("releaseLockSql() releases only its own lock", () => {
		const db = open();
		claim(db, "run-1");
		db.exec(releaseLockSql("run-2"));
		expect(lockRow(db)?.run_id).toBe("run-1");
		db.exec(releaseLockSql("run-1"));
		expect(lockRow(db)).toBeUndefined();
	});

	it.each([
		[["1 = 1", "2 = 2"], false],
		[["1 = 1", "1 = 2"], true],
		[["1 = 2"], true],
	])("releaseLockSql() with conditions %j keeps the lock: %s", (conditions, kept) => {
		const db = open();
		claim(db, "run-1");
		const released = () =>
			db
				.prepare(`SELECT ${lockReleasedSql("run-1")} AS r`)
				.pluck()
				.get();
		expect(released()).toBe(0);
		db.exec(releaseLockSql("run-1", conditions));
		expect(lockRow(db)?.run_id).toBe(kept ? "run-1" : undefined);
		expect(released()).toBe(kept ? 0 : 1);
	});

	it("continuitySql() passes while the ledger names the migration, and fails once it does not", () => {
		const db = open();
		db.exec(`INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');`);
		expect(() => db.exec(continuitySql("d1_migrations", "0001_a.sql"))).not.toThrow();
		expect(() => db.exec(continuitySql("d1_migrations", "0002_b.sql"))).toThrow(/CHECK/);
	});

	it("guardSql() passes for a new migration and fails for an applied one", () => {
		const db = open();
		db.exec(`INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');`);
		expect(() => db.exec(guardSql("d1_migrations", "0002_b.sql"))).not.toThrow();
		expect(() => db.exec(guardSql("d1_migrations", "0001_a.sql"))).toThrow(/CHECK/);
	});

	it("recordSql() writes wrangler's row and the audit row, which parseLedger() reads back", () => {
		const db = open();
		const entry = {
			name: "0001_a.sql",
			checksum: "abc",
			gitSha: "sha",
			appliedBy: "me",
			durationMs: 12.6,
			bookmark: "b",
			runId: "r",
			recordedBy: "migrate" as const,
		};
		db.exec(recordSql("d1_migrations", entry, { wrangler: true }));
		db.exec(recordSql("d1_migrations", { ...entry, checksum: "def" }, { wrangler: false }));
		const ledger = parseLedger(
			db.prepare("SELECT id, name, applied_at FROM d1_migrations").all() as Record<
				string,
				unknown
			>[],
			db.prepare(`SELECT * FROM ${AUDIT_TABLE}`).all() as Record<string, unknown>[],
		);
		expect(ledger.applied).toEqual([{ id: 1, name: "0001_a.sql", appliedAt: expect.any(String) }]);
		expect(ledger.audit.get("0001_a.sql")).toEqual({
			...entry,
			checksum: "def",
			durationMs: 13,
			recordedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
		});
	});

	it("clockStartSql()/clockStopSql() give one migration the time D1 spent on it, and clean up", () => {
		const db = open();
		const entry = {
			checksum: "c",
			gitSha: null,
			appliedBy: null,
			durationMs: null,
			bookmark: null,
			runId: null,
			recordedBy: "adopted" as const,
		};
		db.exec(recordSql("d1_migrations", { ...entry, name: "0001_a.sql" }, { wrangler: false }));
		db.exec(recordSql("d1_migrations", { ...entry, name: "0002_b.sql" }, { wrangler: false }));
		db.exec(clockStartSql);
		// As if the file between start and stop took at least 5 s on D1's clock.
		db.exec(`UPDATE ${ROW_COUNTS_TABLE} SET n = n - 5000;`);
		db.exec(clockStopSql("0001_a.sql"));
		const rows = db.prepare(`SELECT name, duration_ms FROM ${AUDIT_TABLE} ORDER BY name`).all() as {
			name: string;
			duration_ms: number | null;
		}[];
		expect(rows.map((r) => r.name)).toEqual(["0001_a.sql", "0002_b.sql"]);
		expect(rows[0]?.duration_ms).toBeGreaterThanOrEqual(5000);
		expect(rows[0]?.duration_ms).toBeLessThan(60_000);
		expect(rows[1]?.duration_ms).toBeNull();
		expect(db.prepare(`SELECT count(*) FROM ${ROW_COUNTS_TABLE}`).pluck().get()).toBe(0);
	});

	it("runRecordSql() inserts a running run, then upserts its final status and finish time", () => {
		const db = open();
		const run = {
			runId: "r",
			owner: "me",
			environment: "production",
			gitSha: "sha",
			bookmark: null,
			status: "running" as const,
			detail: null,
		};
		const read = () => db.prepare(`SELECT * FROM ${RUNS_TABLE}`).all() as Record<string, unknown>[];
		db.exec(runRecordSql(run));
		expect(read()).toEqual([
			expect.objectContaining({
				run_id: "r",
				owner: "me",
				environment: "production",
				git_sha: "sha",
				status: "running",
				finished_at: null,
			}),
		]);
		db.exec(runRecordSql({ ...run, status: "succeeded", detail: "2 applied", bookmark: "bm" }));
		expect(read()).toEqual([
			expect.objectContaining({
				run_id: "r",
				status: "succeeded",
				detail: "2 applied",
				bookmark: "bm",
				finished_at: expect.stringMatching(/^\d{4}-/),
			}),
		]);
	});

	it.each([
		["1 = 1", "succeeded"],
		["1 = 2", "running"],
	])("runRecordSql() with onlyIf %s leaves the run %s", (onlyIf, status) => {
		const db = open();
		const run = {
			runId: "r",
			owner: "me",
			environment: null,
			gitSha: null,
			bookmark: null,
			status: "running" as const,
			detail: null,
		};
		db.exec(runRecordSql(run));
		db.exec(runRecordSql({ ...run, status: "succeeded" }, { onlyIf }));
		expect(db.prepare(`SELECT status FROM ${RUNS_TABLE}`).pluck().all()).toEqual([status]);
	});
});

describe("schemaDigestSql() / ledgerDigestSql()", () => {
	const digest = (db: Database.Database, sql: string) => db.prepare(sql).pluck().get() as string;
	const schema = (statements: string) => {
		const db = new Database(":memory:");
		db.exec(setupSql("d1_migrations"));
		db.exec(statements);
		return digest(db, schemaDigestSql(["d1_migrations", ...PIPELINE_TABLES]));
	};

	it("is the same for the same objects, whatever order they were created in", () => {
		expect(schema("CREATE TABLE a (x);\nCREATE TABLE b (y);")).toBe(
			schema("CREATE TABLE b (y);\nCREATE TABLE a (x);"),
		);
	});

	it.each([
		["a table more", "CREATE TABLE a (x);", "CREATE TABLE a (x);\nCREATE TABLE b (y);"],
		["whitespace in the CREATE text", "CREATE TABLE a (x, y);", "CREATE TABLE a (x,  y);"],
		["an index", "CREATE TABLE a (x);", "CREATE TABLE a (x);\nCREATE INDEX a_x ON a (x);"],
	])("differs for %s", (_, a, b) => {
		expect(schema(a)).not.toBe(schema(b));
	});

	it("leaves out the excluded tables (the ledger, the pipeline's own)", () => {
		expect(schema("CREATE TABLE a (x);")).toBe(
			schema(`CREATE TABLE a (x);\nINSERT INTO ${LOCK_TABLE} VALUES (1, 'r', 'o', 1, 2);`),
		);
		expect(schema("")).toBe("");
	});

	it("reads wrangler's ledger names in id order", () => {
		const db = new Database(":memory:");
		db.exec(setupSql("d1_migrations"));
		expect(digest(db, ledgerDigestSql("d1_migrations"))).toBe("");
		db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_a.sql'), ('0002_b.sql');");
		expect(digest(db, ledgerDigestSql("d1_migrations"))).toBe("10:0001_a.sql10:0002_b.sql");
	});
});

describe("parseLedger()", () => {
	it("maps nulls and missing values to null, numbers to numbers", () => {
		const ledger = parseLedger(
			[
				{ id: "3", name: "0001_a.sql", applied_at: null },
				{ id: 4, name: "0002_b.sql" },
			],
			[
				{ name: "0001_a.sql", checksum: "c", recorded_by: "baseline", duration_ms: "7" },
				{ name: "0002_b.sql", checksum: "d", recorded_by: "migrate", duration_ms: null },
			],
		);
		expect(ledger.audit.get("0002_b.sql")?.durationMs).toBeNull();
		expect(ledger.applied).toEqual([
			{ id: 3, name: "0001_a.sql", appliedAt: null },
			{ id: 4, name: "0002_b.sql", appliedAt: null },
		]);
		expect(ledger.audit.get("0001_a.sql")).toEqual({
			name: "0001_a.sql",
			checksum: "c",
			gitSha: null,
			appliedBy: null,
			durationMs: 7,
			bookmark: null,
			runId: null,
			recordedBy: "baseline",
			recordedAt: null,
		});
		expect(
			parseLedger(
				[],
				[{ name: "x", checksum: "c", recorded_by: "migrate", duration_ms: undefined }],
			).audit.get("x")?.durationMs,
		).toBeNull();
	});
});
