import { describe, expect, it } from "vitest";
import { D1RateLimitError } from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";
import type { QueryOptions, StatementResult } from "../../../ci/migrations/executor.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";
import { AUDIT_TABLE, LOCK_TABLE, RUNS_TABLE, recordSql } from "../../../ci/migrations/ledger.ts";
import {
	acquireLock,
	DatabaseNotEmptyError,
	LockHeldError,
	ledgerHasUniqueName,
	MAX_RETRY_AFTER_MS,
	parseState,
	readAppliedNames,
	readRemoteState,
	readStateIfMigrated,
	readWithRetry,
	releaseLock,
	tryClaimLock,
	withMigrationLock,
} from "../../../ci/migrations/remote.ts";

/** A sleep that waits for nothing and records each pause (and the signal it was given). */
const recordedSleep = () => {
	const waits: number[] = [];
	const signals: (AbortSignal | undefined)[] = [];
	const sleep = async (ms: number, signal?: AbortSignal) => {
		waits.push(ms);
		signals.push(signal);
	};
	return { waits, signals, sleep };
};

/** No answer from D1 (status undefined): the request may or may not have run. */
const lostAnswer = () => new D1ApiError("fetch failed: socket hang up");

/** Runs each request, except that the next write requests throw the queued errors unrun. */
class ScriptedExecutor extends SqliteExecutor {
	writeFailures: unknown[] = [];
	readFailures: unknown[] = [];
	sent: string[] = [];
	override async query(sql: string, options: QueryOptions = {}): Promise<StatementResult[]> {
		this.sent.push(sql);
		const queue = options.write ? this.writeFailures : this.readFailures;
		if (queue.length > 0) throw queue.shift();
		return super.query(sql, options);
	}
}

const table = (sql: string, name = "d1_migrations") => ({
	type: "table",
	name,
	tbl_name: name,
	sql,
});

describe("ledgerHasUniqueName()", () => {
	it.each([
		[
			"wrangler's own table",
			"CREATE TABLE d1_migrations(\n id INTEGER PRIMARY KEY AUTOINCREMENT,\n name TEXT UNIQUE,\n applied_at TIMESTAMP)",
			true,
		],
		[
			"a table constraint",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT, UNIQUE (name))",
			true,
		],
		[
			"name without UNIQUE",
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)",
			false,
		],
		[
			"UNIQUE on another column",
			"CREATE TABLE d1_migrations (id INTEGER UNIQUE, name TEXT)",
			false,
		],
	])("%s → %s", (_label, sql, expected) => {
		expect(ledgerHasUniqueName([table(sql)], "d1_migrations")).toBe(expected);
	});

	it.each([
		["a quoted name", 'CREATE TABLE d1_migrations (id INTEGER, "name" TEXT UNIQUE)', true],
		["a bracketed name", "CREATE TABLE d1_migrations (id INTEGER, [name] TEXT UNIQUE)", true],
		["a backquoted name", "CREATE TABLE d1_migrations (id INTEGER, `name` TEXT UNIQUE)", true],
		[
			"spread over lines",
			"CREATE TABLE d1_migrations (\n\tid INTEGER,\n\tname\n\tTEXT\n\tUNIQUE\n)",
			true,
		],
		[
			"a quoted table constraint",
			'CREATE TABLE d1_migrations (id INTEGER, name TEXT, UNIQUE ( "name" ))',
			true,
		],
		[
			"UNIQUE over two columns",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT, UNIQUE (name, id))",
			false,
		],
		[
			"a column only named like it",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT, rename TEXT UNIQUE)",
			false,
		],
		[
			"a table constraint without spaces",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT,UNIQUE(name))",
			true,
		],
		[
			"a table constraint spread over lines",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT,\n  UNIQUE \n  (\n    name\n  )\n)",
			true,
		],
	])("%s → %s", (_label, sql, expected) => {
		expect(ledgerHasUniqueName([table(sql)], "d1_migrations")).toBe(expected);
	});

	it.each([
		[
			"another table's UNIQUE name",
			[
				table("CREATE TABLE other (name TEXT UNIQUE)", "other"),
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
			],
			false,
		],
		[
			"the ledger named in another case",
			[table("CREATE TABLE D1_Migrations (id INTEGER, name TEXT UNIQUE)", "D1_Migrations")],
			true,
		],
		["no ledger table at all", [], false],
		["a table row without SQL", [{ ...table(""), sql: null }], false],
		[
			"a unique index on another table",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "other",
					sql: "CREATE UNIQUE INDEX u ON other (name)",
				},
			],
			false,
		],
		[
			"a plain index on name",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "d1_migrations",
					sql: "CREATE INDEX u ON d1_migrations (name)",
				},
			],
			false,
		],
		[
			"a unique index over name and id",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "d1_migrations",
					sql: "CREATE UNIQUE INDEX u ON d1_migrations (name, id)",
				},
			],
			false,
		],
		[
			"a unique index spread over lines, quoted",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "d1_migrations",
					sql: 'CREATE UNIQUE INDEX u\n  ON d1_migrations ( "name" )\n',
				},
			],
			true,
		],
		[
			"a unique index spread over lines, unquoted",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "d1_migrations",
					sql: "CREATE UNIQUE INDEX u ON d1_migrations (\n\tname\n)",
				},
			],
			true,
		],
		[
			"a partial unique index (some names may repeat)",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "u",
					tbl_name: "d1_migrations",
					sql: "CREATE UNIQUE INDEX u ON d1_migrations (name) WHERE id > 5",
				},
			],
			false,
		],
		[
			"a plain index whose quoted name reads like a unique one",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "index",
					name: "CREATE UNIQUE INDEX u",
					tbl_name: "d1_migrations",
					sql: 'CREATE INDEX "CREATE UNIQUE INDEX u" ON d1_migrations (name)',
				},
			],
			false,
		],
		[
			"a trigger named like the ledger, before it (SQLite keeps triggers apart)",
			[
				{
					type: "trigger",
					name: "d1_migrations",
					tbl_name: "x",
					sql: "CREATE TRIGGER d1_migrations AFTER INSERT ON x BEGIN SELECT 'name TEXT UNIQUE'; END",
				},
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
			],
			false,
		],
		[
			"a table row whose name matches an index's table",
			[
				table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
				{
					type: "table",
					name: "u",
					tbl_name: "d1_migrations",
					sql: "CREATE UNIQUE INDEX u ON d1_migrations (name)",
				},
			],
			false,
		],
	] as const)("%s → %s", (_label, rows, expected) => {
		expect(ledgerHasUniqueName(rows as never, "d1_migrations")).toBe(expected);
	});

	it("accepts a separate unique index on name", () => {
		const rows = [
			table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
			{
				type: "index",
				name: "u",
				tbl_name: "d1_migrations",
				sql: "CREATE UNIQUE INDEX u ON d1_migrations (name)",
			},
		];
		expect(ledgerHasUniqueName(rows, "d1_migrations")).toBe(true);
	});
});

describe("readWithRetry()", () => {
	const counting = (error: unknown) => {
		let calls = 0;
		const read = async () => {
			calls++;
			throw error;
		};
		return { read, calls: () => calls };
	};

	it.each([
		["a TypeError", 1, new TypeError("x is not a function")],
		["a definite D1 refusal", 1, new D1ApiError("no such table", { status: 400 })],
		["no answer", 3, new D1ApiError("timeout")],
		["a 503", 3, new D1ApiError("x", { status: 503 })],
		["a host name that does not resolve", 1, new D1ApiError("ENOTFOUND", { unsent: true })],
	])("%s is tried %i time(s)", async (_label, expected, error) => {
		const { read, calls } = counting(error);
		await expect(readWithRetry(read, { attempts: 3, baseDelayMs: 1 })).rejects.toBe(error);
		expect(calls()).toBe(expected);
	});

	it("gives up at once on a Retry-After longer than it waits", async () => {
		const { read, calls } = counting(new D1RateLimitError("limited", { retryAfterMs: 5 * 60_000 }));
		await expect(readWithRetry(read, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow("limited");
		expect(calls()).toBe(1);
	});

	it("waits out a short Retry-After, then succeeds", async () => {
		let calls = 0;
		const started = Date.now();
		const value = await readWithRetry(
			async () => {
				if (calls++ === 0) throw new D1RateLimitError("limited", { retryAfterMs: 50 });
				return "ok";
			},
			{ attempts: 3, baseDelayMs: 1 },
		);
		expect(value).toBe("ok");
		expect(Date.now() - started).toBeGreaterThanOrEqual(45);
	});
});

describe("withMigrationLock()", () => {
	const options = (runId: string) => ({
		migrationsTable: "d1_migrations",
		runId,
		owner: runId,
		ttlSeconds: 60,
		timeoutMs: 0,
	});
	const lockRows = (db: SqliteExecutor) => db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).all();

	it("releases the lock when the body throws, in one request, and rethrows", async () => {
		const db = new SqliteExecutor();
		const boom = new Error("boom");
		let before = 0;
		await expect(
			withMigrationLock(db, options("a"), async () => {
				expect(lockRows(db)).toEqual([{ run_id: "a" }]);
				before = db.requestCount;
				throw boom;
			}),
		).rejects.toBe(boom);
		expect(lockRows(db)).toEqual([]);
		expect(db.requestCount - before).toBe(1);
	});

	it("sends the body's final statements in the release request", async () => {
		const db = new SqliteExecutor();
		let before = 0;
		const { value, release } = await withMigrationLock(db, options("a"), async (lock) => {
			lock.finalStatements = [
				`INSERT INTO ${RUNS_TABLE} (run_id, owner, status) VALUES ('a', 'a', 'running');`,
				`UPDATE ${RUNS_TABLE} SET status = 'succeeded' WHERE run_id = 'a';`,
			];
			before = db.requestCount;
			return 42;
		});
		expect(db.requestCount - before).toBe(1);
		expect(value).toBe(42);
		expect(release).toEqual({ released: true });
		expect(db.db.prepare(`SELECT status FROM ${RUNS_TABLE}`).pluck().all()).toEqual(["succeeded"]);
		expect(lockRows(db)).toEqual([]);
	});

	it.each([
		["a table", "CREATE TABLE t (id INTEGER)"],
		["a view", "CREATE VIEW v AS SELECT 1 AS x"],
		["wrangler's ledger alone, empty", "CREATE TABLE d1_migrations (id INTEGER, name TEXT UNIQUE)"],
	])(
		"with requireEmpty, claims nothing and writes nothing on a database with %s",
		async (_label, sql) => {
			const db = new SqliteExecutor();
			db.db.exec(sql);
			const before = db.db.prepare("SELECT type, name, sql FROM sqlite_master").all();
			const error = await withMigrationLock(
				db,
				{ ...options("a"), requireEmpty: true },
				async () => 1,
			).catch((e) => e);
			expect(error).toBeInstanceOf(DatabaseNotEmptyError);
			expect(db.db.prepare("SELECT type, name, sql FROM sqlite_master").all()).toEqual(before);
		},
	);

	it("with requireEmpty, claims an empty database and reads its state in the same request", async () => {
		const db = new SqliteExecutor();
		await withMigrationLock(db, { ...options("a"), requireEmpty: true }, async (lock) => {
			expect(lockRows(db)).toEqual([{ run_id: "a" }]);
			expect(lock.state?.ledger.applied).toEqual([]);
			expect(lock.state?.ledgerUnique).toBe(true);
			expect(db.requestCount).toBe(1);
		});
	});

	it("throws LockHeldError naming the holder, and leaves that lock alone", async () => {
		const db = new SqliteExecutor();
		await withMigrationLock(db, options("a"), async () => {
			const error = await withMigrationLock(db, options("b"), async () => 1).catch((e) => e);
			expect(error).toBeInstanceOf(LockHeldError);
			expect((error as LockHeldError).holder?.runId).toBe("a");
			expect(lockRows(db)).toEqual([{ run_id: "a" }]);
		});
	});
});

const claimOptions = (runId: string, ttlSeconds = 60) => ({
	migrationsTable: "d1_migrations",
	runId,
	owner: `owner ${runId}`,
	ttlSeconds,
});
const expireLock = (db: SqliteExecutor) =>
	db.db.exec(
		`UPDATE ${LOCK_TABLE} SET expires_at = expires_at - 3600, acquired_at = acquired_at - 3600;`,
	);

/** Runs each request, then answers as if the network had lost the answer (status undefined: ambiguous). */
class LostAnswerExecutor extends SqliteExecutor {
	lose = 0;
	apply = true;
	override async query(sql: string, options: QueryOptions = {}): Promise<StatementResult[]> {
		if (this.lose > 0) {
			this.lose--;
			if (this.apply) await super.query(sql, options);
			throw new D1ApiError("fetch failed: socket hang up");
		}
		return super.query(sql, options);
	}
}

describe("tryClaimLock()", () => {
	it("claims a fresh database: creates the tables and reads the state in the same request", async () => {
		const db = new SqliteExecutor();
		const outcome = await tryClaimLock(db, claimOptions("a"));
		expect(outcome).toMatchObject({ acquired: true, tookOverFrom: undefined });
		expect(outcome.acquired && outcome.state?.ledger.applied).toEqual([]);
		expect(outcome.acquired && outcome.state?.tables.has("d1_migrations")).toBe(true);
		expect(db.requestCount).toBe(1);
	});

	it("reads the state it locked: the ledger as it is", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		db.db.exec(`DELETE FROM ${LOCK_TABLE};`);
		db.db.exec(
			recordSql(
				"d1_migrations",
				{
					name: "0001_a.sql",
					checksum: "c",
					gitSha: null,
					appliedBy: null,
					durationMs: 3,
					bookmark: null,
					runId: "a",
					recordedBy: "migrate",
				},
				{ wrangler: true },
			),
		);
		const outcome = await tryClaimLock(db, claimOptions("b"));
		if (!outcome.acquired) throw new Error("not acquired");
		expect(outcome.state?.ledger.applied.map((r) => r.name)).toEqual(["0001_a.sql"]);
		expect(outcome.state?.ledger.audit.get("0001_a.sql")?.checksum).toBe("c");
	});

	it("leaves a live lock to its holder and names it", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a", 120));
		const outcome = await tryClaimLock(db, claimOptions("b"));
		expect(outcome.acquired).toBe(false);
		if (outcome.acquired) return;
		expect(outcome.holder).toMatchObject({ runId: "a", owner: "owner a" });
		const holder = outcome.holder;
		expect(holder && holder.expiresAt - holder.acquiredAt).toBe(120);
		expect(holder && Math.abs(holder.now - holder.acquiredAt)).toBeLessThanOrEqual(1);
	});

	it("takes over an expired lock and says from whom; its own fresh claim is no takeover", async () => {
		const db = new SqliteExecutor();
		const first = await tryClaimLock(db, claimOptions("a"));
		expect(first).toMatchObject({ acquired: true, tookOverFrom: undefined });
		expireLock(db);
		const outcome = await tryClaimLock(db, claimOptions("b"));
		expect(outcome).toMatchObject({
			acquired: true,
			tookOverFrom: { runId: "a", owner: "owner a" },
		});
		const rows = db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all();
		expect(rows).toEqual(["b"]);
	});

	it("an answer lost after the claim landed: reads the holder, and it is ours", async () => {
		const db = new LostAnswerExecutor();
		db.lose = 1;
		const outcome = await tryClaimLock(db, claimOptions("a"));
		expect(outcome).toEqual({ acquired: true, tookOverFrom: undefined });
	});

	it("an answer lost after another run's claim: not acquired, naming that holder", async () => {
		const db = new LostAnswerExecutor();
		await tryClaimLock(db, claimOptions("a"));
		db.lose = 1;
		const outcome = await tryClaimLock(db, claimOptions("b"));
		expect(outcome).toMatchObject({ acquired: false, holder: { runId: "a" } });
	});

	it("an answer lost on a fresh database before anything landed: not held, no holder", async () => {
		const db = new LostAnswerExecutor();
		db.lose = 1;
		db.apply = false;
		expect(await tryClaimLock(db, claimOptions("a"))).toEqual({
			acquired: false,
			holder: undefined,
		});
	});

	it("rethrows a definite refusal", async () => {
		const db = new SqliteExecutor();
		db.db.exec(`CREATE TABLE ${LOCK_TABLE} (id INTEGER);`);
		await expect(tryClaimLock(db, claimOptions("a"))).rejects.toBeInstanceOf(D1ApiError);
	});
});

describe("acquireLock()", () => {
	it("waits for the holder, then throws LockHeldError with its owner and lease", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a", 90));
		const waits: unknown[] = [];
		const error = await acquireLock(db, {
			...claimOptions("b"),
			timeoutMs: 120,
			pollMs: 50,
			onWait: (holder) => waits.push(holder?.runId),
		}).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(LockHeldError);
		expect((error as LockHeldError).code).toBe("E_LOCK_HELD");
		expect((error as Error).message).toMatch(
			/held by owner a \(run a, expires in (89|90) s\); waited 0 s/,
		);
		expect(waits.length).toBeGreaterThanOrEqual(1);
		expect(waits.every((w) => w === "a")).toBe(true);
	});

	it("gets the lock once the holder's lease runs out", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		let polls = 0;
		const claimed = await acquireLock(db, {
			...claimOptions("b"),
			timeoutMs: 5000,
			pollMs: 10,
			onWait: () => {
				if (++polls === 2) expireLock(db);
			},
		});
		expect(polls).toBe(2);
		expect(claimed.tookOverFrom?.runId).toBe("a");
		expect(claimed.state?.tables.has(LOCK_TABLE)).toBe(true);
	});

	it("names no holder when none is known", () => {
		const error = new LockHeldError(undefined, 3);
		expect(error.message).toBe(
			"the migration lock is held by another run; waited 3 s. Wait for it to finish, or raise --lock-timeout.",
		);
		expect(error.name).toBe("LockHeldError");
		expect(error.code).toBe("E_LOCK_HELD");
	});

	it("never says a lease expires in the past", () => {
		const holder = { runId: "a", owner: "o", acquiredAt: 0, expiresAt: 10, now: 25 };
		expect(new LockHeldError(holder, 61).message).toBe(
			"the migration lock is held by o (run a, expires in 0 s); waited 61 s. Wait for it to finish, or raise --lock-timeout.",
		);
	});
});

describe("withMigrationLock() release", () => {
	const options = { ...claimOptions("a"), timeoutMs: 0 };
	const lockRows = (db: SqliteExecutor) =>
		db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all();

	it("clearAll removes the lock row whoever it names (after a restore)", async () => {
		const db = new SqliteExecutor();
		const { release } = await withMigrationLock(db, options, async (lock) => {
			db.db.exec(`UPDATE ${LOCK_TABLE} SET run_id = 'from-the-bookmark';`);
			lock.clearAll = true;
		});
		expect(release).toEqual({ released: true });
		expect(lockRows(db)).toEqual([]);
	});

	it("without clearAll, leaves a lock that is not its own", async () => {
		const db = new SqliteExecutor();
		await withMigrationLock(db, options, async () => {
			db.db.exec(`UPDATE ${LOCK_TABLE} SET run_id = 'other';`);
		});
		expect(lockRows(db)).toEqual(["other"]);
	});

	it("releases with a bare request when the final statements are refused", async () => {
		const db = new SqliteExecutor();
		const { release } = await withMigrationLock(db, options, async (lock) => {
			lock.finalStatements = ["INSERT INTO no_such_table VALUES (1);"];
		});
		expect(release).toEqual({ released: true });
		expect(lockRows(db)).toEqual([]);
	});

	it("reports a release that did not get through", async () => {
		const db = new SqliteExecutor();
		const { release } = await withMigrationLock(db, options, async () => {
			db.db.exec(`DROP TABLE ${LOCK_TABLE};`);
		});
		expect(release).toEqual({ released: false, error: expect.stringMatching(/no such table/) });
	});

	it("sends no release when the body's last request released the lock itself", async () => {
		const db = new SqliteExecutor();
		const sent: string[] = [];
		const { release } = await withMigrationLock(db, options, async (lock) => {
			const query = db.query.bind(db);
			db.query = async (sql, queryOptions) => {
				sent.push(sql);
				return query(sql, queryOptions);
			};
			await db.query(`DELETE FROM ${LOCK_TABLE} WHERE run_id = 'a';`, { write: true });
			lock.released = true;
			lock.finalStatements = ["INSERT INTO no_such_table VALUES (1);"];
		});
		expect(release).toEqual({ released: true });
		expect(sent).toHaveLength(1);
		expect(lockRows(db)).toEqual([]);
	});

	it("reports a release that failed with its final statements and then bare", async () => {
		const db = new SqliteExecutor();
		const { release } = await withMigrationLock(db, options, async (lock) => {
			lock.finalStatements = ["SELECT 1;"];
			db.db.exec(`DROP TABLE ${LOCK_TABLE};`);
		});
		expect(release).toEqual({ released: false, error: expect.stringMatching(/no such table/) });
	});
});

describe("readRemoteState()", () => {
	const record = (db: SqliteExecutor, name: string, wrangler = true) =>
		db.db.exec(
			recordSql(
				"d1_migrations",
				{
					name,
					checksum: `sum ${name}`,
					gitSha: null,
					appliedBy: null,
					durationMs: null,
					bookmark: null,
					runId: null,
					recordedBy: "migrate",
				},
				{ wrangler },
			),
		);

	it("reads a never-migrated database as empty, without writing", async () => {
		const db = new SqliteExecutor();
		db.db.exec(
			"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT); CREATE INDEX users_email ON users (email); CREATE VIEW emails AS SELECT email FROM users;",
		);
		const state = await readRemoteState(db, "d1_migrations");
		expect(state.ledger.applied).toEqual([]);
		expect(state.ledger.audit.size).toBe(0);
		expect(state.schema.objects.map((o) => o.name)).toEqual(["users", "users_email", "emails"]);
		expect([...state.tables]).toEqual(["users"]);
		expect(state.ledgerUnique).toBe(true);
	});

	it("reads wrangler's ledger when only it exists (a project adopted from wrangler)", async () => {
		const db = new SqliteExecutor();
		db.db.exec(
			"CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);",
		);
		db.db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_a.sql'), ('0002_b.sql');");
		const state = await readRemoteState(db, "d1_migrations");
		expect(state.ledger.applied.map((r) => [r.id, r.name])).toEqual([
			[1, "0001_a.sql"],
			[2, "0002_b.sql"],
		]);
		expect(state.ledger.audit.size).toBe(0);
		expect(state.ledgerUnique).toBe(true);
	});

	it("reads the audit table when only it exists", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		db.db.exec("DROP TABLE d1_migrations;");
		record(db, "0001_a.sql", false);
		const state = await readRemoteState(db, "d1_migrations");
		expect(state.ledger.applied).toEqual([]);
		expect([...state.ledger.audit.keys()]).toEqual(["0001_a.sql"]);
	});

	it("reads both ledgers in one request once the tables exist, pipeline tables left out of the schema", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		record(db, "0001_a.sql");
		const before = db.requestCount;
		const state = await readRemoteState(db, "d1_migrations");
		expect(db.requestCount - before).toBe(1);
		expect(state.ledger.applied.map((r) => r.name)).toEqual(["0001_a.sql"]);
		expect(state.ledger.audit.get("0001_a.sql")?.checksum).toBe("sum 0001_a.sql");
		expect(state.schema.objects).toEqual([]);
		expect(state.tables.has(AUDIT_TABLE)).toBe(true);
	});

	it("reads the ledger's own shape, not a trigger's of the same name", async () => {
		const db = new SqliteExecutor();
		db.db.exec(
			"CREATE TABLE x (a); CREATE TRIGGER d1_migrations AFTER INSERT ON x BEGIN SELECT 'name TEXT UNIQUE'; END; CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT);",
		);
		expect((await readRemoteState(db, "d1_migrations")).ledgerUnique).toBe(false);
	});

	it("flags a ledger without a UNIQUE name", async () => {
		const db = new SqliteExecutor();
		db.db.exec("CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT);");
		expect((await readRemoteState(db, "d1_migrations")).ledgerUnique).toBe(false);
	});

	it("rethrows what is not a missing table", async () => {
		const db = new SqliteExecutor();
		const error = new D1ApiError("D1 query failed (HTTP 400): not authorized", { status: 400 });
		db.query = async () => {
			throw error;
		};
		await expect(readRemoteState(db, "d1_migrations")).rejects.toBe(error);
	});
});

describe("readAppliedNames()", () => {
	it("reads the names in wrangler's ledger", async () => {
		const db = new SqliteExecutor();
		db.db.exec('CREATE TABLE "my ledger" (id INTEGER PRIMARY KEY, name TEXT);');
		db.db.exec("INSERT INTO \"my ledger\" (name) VALUES ('0001_a.sql'), ('0002_b.sql');");
		expect(await readAppliedNames(db, "my ledger")).toEqual(new Set(["0001_a.sql", "0002_b.sql"]));
	});
});

describe("parseState()", () => {
	it("reads missing results as empty", () => {
		const state = parseState([], "d1_migrations");
		expect(state.ledger.applied).toEqual([]);
		expect(state.ledger.audit.size).toBe(0);
		expect(state.tables.size).toBe(0);
		expect(state.ledgerUnique).toBe(true);
	});
});

describe("readStateIfMigrated()", () => {
	it.each([
		["not D1's", new TypeError("no such table: d1_migrations")],
		["no clear answer", new D1ApiError("no such table: d1_migrations", { status: 503 })],
		["another refusal", new D1ApiError("not authorized", { status: 400 })],
	])("rethrows an error that is %s, even one naming a missing table", async (_label, error) => {
		const db = new SqliteExecutor();
		db.query = async () => {
			throw error;
		};
		await expect(readStateIfMigrated(db, "d1_migrations")).rejects.toBe(error);
	});

	it("names wrangler's ledger as missing on a never-migrated database, in one request", async () => {
		const db = new SqliteExecutor();
		expect(await readStateIfMigrated(db, "d1_migrations")).toEqual({ missing: "d1_migrations" });
		expect(db.requestCount).toBe(1);
	});

	it("names the audit table when only wrangler's ledger exists; readRemoteState reads it", async () => {
		const db = new SqliteExecutor();
		db.db.exec(
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TEXT); INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');",
		);
		expect(await readStateIfMigrated(db, "d1_migrations")).toEqual({
			missing: "workers_pipeline_migrations",
		});
		const state = await readRemoteState(db, "d1_migrations");
		expect(state.ledger.applied.map((r) => r.name)).toEqual(["0001_a.sql"]);
	});
});

describe("readWithRetry() pauses", () => {
	const failing = (error: unknown) => async (): Promise<never> => {
		throw error;
	};

	it.each([
		["six attempts by default, doubling from 250 ms", {}, [250, 500, 1000, 2000, 4000]],
		["never more than 5 s apart", { baseDelayMs: 1000 }, [1000, 2000, 4000, 5000, 5000]],
		["no pause after the last attempt", { attempts: 2, baseDelayMs: 10 }, [10]],
		["a single attempt: no pause at all", { attempts: 1 }, []],
	])("%s", async (_label, options, waits) => {
		const paused = recordedSleep();
		let calls = 0;
		const error = lostAnswer();
		const read = async () => {
			calls++;
			throw error;
		};
		await expect(readWithRetry(read, { ...options, sleep: paused.sleep })).rejects.toBe(error);
		expect(paused.waits).toEqual(waits);
		expect(calls).toBe(waits.length + 1);
	});

	it.each([
		["longer than the backoff: waited instead", 3000, [3000, 3000]],
		["shorter than the backoff: the backoff", 100, [250, 500]],
		[
			"exactly the longest it waits out",
			MAX_RETRY_AFTER_MS,
			[MAX_RETRY_AFTER_MS, MAX_RETRY_AFTER_MS],
		],
		["unknown: the backoff", undefined, [250, 500]],
	])("a Retry-After %s", async (_label, retryAfterMs, waits) => {
		const paused = recordedSleep();
		const error = new D1RateLimitError("limited", { retryAfterMs });
		await expect(readWithRetry(failing(error), { attempts: 3, sleep: paused.sleep })).rejects.toBe(
			error,
		);
		expect(paused.waits).toEqual(waits);
	});

	it("gives up without a pause on a Retry-After just over the longest it waits", async () => {
		const paused = recordedSleep();
		const error = new D1RateLimitError("limited", { retryAfterMs: MAX_RETRY_AFTER_MS + 1 });
		await expect(readWithRetry(failing(error), { sleep: paused.sleep })).rejects.toBe(error);
		expect(paused.waits).toEqual([]);
	});

	it("pauses with the caller's signal, so an interrupt ends the wait", async () => {
		const paused = recordedSleep();
		const signal = new AbortController().signal;
		await expect(
			readWithRetry(failing(lostAnswer()), { attempts: 2, signal, sleep: paused.sleep }),
		).rejects.toThrow("socket hang up");
		expect(paused.signals).toEqual([signal]);
	});
});

describe("acquireLock() wait", () => {
	/** A clock that moves only when the wait sleeps: every pause is exact. */
	const fakeClock = () => {
		let now = 1_000_000;
		const waits: number[] = [];
		return {
			waits,
			now: () => now,
			sleep: async (ms: number) => {
				waits.push(ms);
				now += ms;
			},
		};
	};

	it.each([
		[
			"every second by default, the last pause cut to the timeout",
			{ timeoutMs: 2500 },
			[1000, 1000, 500],
			3,
		],
		["every pollMs", { timeoutMs: 1000, pollMs: 300 }, [300, 300, 300, 100], 1],
		["never less than 50 ms", { timeoutMs: 1030, pollMs: 500 }, [500, 500, 50], 1],
		["not at all with no timeout: one claim", { timeoutMs: 0 }, [], 0],
	])(
		"polls %s, then names the holder and the time waited",
		async (_label, wait, waits, seconds) => {
			const db = new SqliteExecutor();
			await tryClaimLock(db, claimOptions("a"));
			const clock = fakeClock();
			const seen: unknown[] = [];
			const before = db.requestCount;
			const error = await acquireLock(db, {
				...claimOptions("b"),
				...wait,
				now: clock.now,
				sleep: clock.sleep,
				onWait: (holder) => seen.push(holder?.runId),
			}).catch((e: unknown) => e);
			expect(error).toBeInstanceOf(LockHeldError);
			expect((error as Error).message).toContain(`; waited ${seconds} s.`);
			expect(clock.waits).toEqual(waits);
			expect(db.requestCount - before).toBe(waits.length + 1);
			expect(seen).toEqual(waits.map(() => "a"));
		},
	);

	it("waits without an onWait", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		const clock = fakeClock();
		const error = await acquireLock(db, {
			...claimOptions("b"),
			timeoutMs: 1500,
			now: clock.now,
			sleep: clock.sleep,
		}).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(LockHeldError);
		expect(clock.waits).toEqual([1000, 500]);
	});

	it("stops waiting when interrupted, leaving the holder's lock alone", async () => {
		const db = new SqliteExecutor();
		await tryClaimLock(db, claimOptions("a"));
		const controller = new AbortController();
		const interrupt = new Error("interrupted");
		const error = await acquireLock(db, {
			...claimOptions("b"),
			timeoutMs: 60_000,
			signal: controller.signal,
			onWait: () => setTimeout(() => controller.abort(interrupt), 5),
		}).catch((e: unknown) => e);
		expect(error).toBe(interrupt);
		expect(db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all()).toEqual(["a"]);
	});
});

describe("tryClaimLock() refusals", () => {
	it.each([
		[
			"a refusal that is not the emptiness proof's",
			true,
			new D1ApiError("no such column: x", { status: 400 }),
		],
		[
			"the proof's refusal when no emptiness was asked",
			false,
			new D1ApiError("malformed JSON", { status: 400 }),
		],
		["an error that is not D1's", true, new TypeError("malformed JSON")],
	])("rethrows %s as it is", async (_label, requireEmpty, error) => {
		const db = new ScriptedExecutor();
		db.writeFailures = [error];
		await expect(tryClaimLock(db, { ...claimOptions("a"), requireEmpty })).rejects.toBe(error);
		expect(db.sent).toHaveLength(1);
	});

	it("turns the emptiness proof's refusal into DatabaseNotEmptyError, keeping D1's error as its cause", async () => {
		const db = new SqliteExecutor();
		db.db.exec("CREATE TABLE t (id INTEGER);");
		const error = await tryClaimLock(db, { ...claimOptions("a"), requireEmpty: true }).catch(
			(e: unknown) => e,
		);
		expect(error).toBeInstanceOf(DatabaseNotEmptyError);
		expect((error as DatabaseNotEmptyError).code).toBe("E_D1_API");
		expect((error as DatabaseNotEmptyError).name).toBe("DatabaseNotEmptyError");
		expect((error as Error).message).toBe(
			"the database is not empty: its state must be read before the lock",
		);
		expect((error as Error).cause).toBeInstanceOf(D1ApiError);
		expect(((error as Error).cause as Error).message).toMatch(/malformed JSON/);
	});

	it("reads a lost answer as lost even when it mentions malformed JSON", async () => {
		const db = new ScriptedExecutor();
		db.writeFailures = [new D1ApiError("malformed JSON in the gateway's answer")];
		const outcome = await tryClaimLock(db, { ...claimOptions("a"), requireEmpty: true });
		expect(outcome).toEqual({ acquired: false, holder: undefined });
		expect(db.sent[1]).toMatch(/^SELECT run_id, owner/);
	});

	it("after a lost answer, retries the holder read until it answers", async () => {
		const db = new LostAnswerExecutor();
		db.lose = 2;
		const paused = recordedSleep();
		const outcome = await tryClaimLock(db, { ...claimOptions("a"), sleep: paused.sleep });
		expect(outcome).toEqual({ acquired: true, tookOverFrom: undefined });
		expect(paused.waits).toEqual([250]);
	});

	it("after a lost answer, rethrows a holder read refused for another reason than a missing table", async () => {
		const db = new ScriptedExecutor();
		const refusal = new D1ApiError("not authorized", { status: 403 });
		db.writeFailures = [lostAnswer()];
		db.readFailures = [refusal];
		await expect(tryClaimLock(db, claimOptions("a"))).rejects.toBe(refusal);
	});
});

describe("releaseLock()", () => {
	const runsRecord = `INSERT INTO ${RUNS_TABLE} (run_id, owner, status) VALUES ('a', 'a', 'succeeded');`;
	async function held() {
		const db = new ScriptedExecutor();
		await tryClaimLock(db, claimOptions("a"));
		db.sent = [];
		return db;
	}
	const lockRows = (db: SqliteExecutor) =>
		db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all();
	const runs = (db: SqliteExecutor) =>
		db.db.prepare(`SELECT status FROM ${RUNS_TABLE}`).pluck().all();

	it.each([
		["gets through on the fourth try", 3, { released: true }, [] as string[]],
		[
			"gives up after four tries",
			4,
			{ released: false, error: "fetch failed: socket hang up" },
			["a"],
		],
	])("without final statements, %s", async (_label, lost, release, rows) => {
		const db = await held();
		db.writeFailures = Array.from({ length: lost }, lostAnswer);
		const paused = recordedSleep();
		const lock = { runId: "a", finalStatements: [], clearAll: false };
		expect(await releaseLock(db, lock, { sleep: paused.sleep })).toEqual(release);
		expect(db.sent).toHaveLength(Math.min(lost + 1, 4));
		expect(paused.waits).toEqual([250, 500, 1000].slice(0, Math.min(lost, 3)));
		expect(lockRows(db)).toEqual(rows);
	});

	it.each([
		["without its ;", runsRecord.replace(/;$/, "")],
		["ending in a line comment, no ;", `${runsRecord.replace(/;$/, "")} -- the run's record`],
		["ending in a block comment, no ;", `${runsRecord.replace(/;$/, "")} /* record */`],
		["with its ;", runsRecord],
		["with its ; and a comment after", `${runsRecord} -- done`],
	])("a final statement %s goes in the one release request, terminated", async (_label, sql) => {
		const db = await held();
		const lock = { runId: "a", finalStatements: [sql], clearAll: false };
		expect(await releaseLock(db, lock)).toEqual({ released: true });
		expect(db.sent).toHaveLength(1);
		expect(runs(db)).toEqual(["succeeded"]);
		expect(lockRows(db)).toEqual([]);
	});

	it("sends a refused release once when there is nothing to leave out", async () => {
		const db = await held();
		const refusal = new D1ApiError("no such table: workers_pipeline_lock", { status: 400 });
		db.writeFailures = [refusal];
		const lock = { runId: "a", finalStatements: [], clearAll: false };
		expect(await releaseLock(db, lock)).toEqual({ released: false, error: refusal.message });
		expect(db.sent).toHaveLength(1);
	});

	it("after four lost answers with its final statements, releases bare: the lock goes, the record does not", async () => {
		const db = await held();
		db.writeFailures = Array.from({ length: 4 }, lostAnswer);
		const paused = recordedSleep();
		const lock = { runId: "a", finalStatements: [runsRecord], clearAll: false };
		expect(await releaseLock(db, lock, { sleep: paused.sleep })).toEqual({ released: true });
		expect(db.sent).toHaveLength(5);
		expect(db.sent.at(-1)).not.toContain(RUNS_TABLE);
		expect(lockRows(db)).toEqual([]);
		expect(runs(db)).toEqual([]);
	});

	it("retries the bare release four times too, then says why it failed", async () => {
		const db = await held();
		db.writeFailures = [...Array.from({ length: 7 }, lostAnswer), new D1ApiError("the last one")];
		const paused = recordedSleep();
		const lock = { runId: "a", finalStatements: [runsRecord], clearAll: false };
		expect(await releaseLock(db, lock, { sleep: paused.sleep })).toEqual({
			released: false,
			error: "the last one",
		});
		expect(db.sent).toHaveLength(8);
		expect(lockRows(db)).toEqual(["a"]);
	});

	it("withMigrationLock pauses its release retries with the lock's sleep", async () => {
		const db = new ScriptedExecutor();
		const paused = recordedSleep();
		const { release } = await withMigrationLock(
			db,
			{ ...claimOptions("a"), timeoutMs: 0, sleep: paused.sleep },
			async () => {
				db.writeFailures = [lostAnswer()];
			},
		);
		expect(release).toEqual({ released: true });
		expect(paused.waits).toEqual([250]);
		expect(lockRows(db)).toEqual([]);
	});
});
