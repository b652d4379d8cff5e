import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { type CatalogFile, parseCatalog, readCatalog } from "../../../ci/migrations/catalog.ts";
import { D1_LIKE_PATTERN_MESSAGE } from "../../../ci/migrations/d1-rules.ts";
import {
	findWideTable,
	openD1LikeDatabase,
	replayMigrations,
	replayWithDuplicates,
	tablesGainingColumns,
	wranglerMigrationQuery,
} from "../../../ci/migrations/replay.ts";
import { diffSchema, parseSnapshot } from "../../../ci/migrations/schema.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");

/** Migrations parsed from name → SQL, in wrangler's order. */
const migrations = (files: Record<string, string>) =>
	parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired: [],
		files: Object.entries(files).map(
			([name, sql]): CatalogFile => ({ name, bytes: Buffer.from(sql) }),
		),
	}).migrations;

const replay = (files: Record<string, string>) => replayMigrations(migrations(files));
const objectNames = (result: ReturnType<typeof replayMigrations>) =>
	result.schema.objects.map((o) => `${o.type} ${o.name}`);

describe("replayMigrations()", () => {
	it("should replay the example migrations clean, matching the committed snapshot", () => {
		const catalog = parseCatalog(
			readCatalog({
				root: ROOT,
				database: {
					binding: "DB",
					databaseName: undefined,
					databaseId: undefined,
					migrationsDir: "migrations",
					migrationsTable: "d1_migrations",
					migrationsPattern: "migrations/*.sql",
				},
			}),
		);
		const result = replayMigrations(catalog.migrations);
		expect(result.failure).toBeUndefined();
		expect(result.ok).toBe(true);
		expect(result.applied.map((a) => a.name)).toEqual(catalog.migrations.map((m) => m.name));
		expect(result.dqsFallbacks).toEqual([]);
		const snapshot = parseSnapshot(readFileSync(path.join(ROOT, "migrations.schema.sql"), "utf8"));
		expect(snapshot.objects.length).toBeGreaterThan(0);
		expect(diffSchema(snapshot, result.schema)).toEqual([]);
	});

	it("should record every migration in wrangler's ledger table", () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(
				migrations({
					"0002_b.sql": "CREATE TABLE b (x);\n",
					"0001_a.sql": "CREATE TABLE a (x);\n",
				}),
				{ database: db, migrationsTable: "ledger" },
			);
			expect(result.ok).toBe(true);
			expect(db.prepare("SELECT id, name FROM ledger ORDER BY id").all()).toEqual([
				{ id: 1, name: "0001_a.sql" },
				{ id: 2, name: "0002_b.sql" },
			]);
			expect(objectNames(result)).toEqual(["table a", "table b"]);
		} finally {
			db.close();
		}
	});

	it("should stop at a failing statement with its file, line and SQLite's message", () => {
		const result = replay({
			"0001_ok.sql": "CREATE TABLE kept (id INTEGER PRIMARY KEY);\n",
			"0002_bad.sql":
				"CREATE TABLE partial (x);\n\n-- the typo\nINSERT INTO nope\n  VALUES (1);\nCREATE TABLE after_failure (x);\n",
			"0003_next.sql": "CREATE TABLE never (x);\n",
		});
		expect(result.ok).toBe(false);
		expect(result.failure).toEqual({
			migration: "0002_bad.sql",
			path: "migrations/0002_bad.sql",
			line: 4,
			statement: expect.stringContaining("INSERT INTO nope"),
			message: "no such table: nope",
			code: "SQLITE_ERROR",
		});
		expect(result.applied.map((a) => a.name)).toEqual(["0001_ok.sql"]);
		// Its own transaction: nothing of 0002 stays, and 0003 never ran.
		expect(objectNames(result)).toEqual(["table kept"]);
	});

	it("should leave no ledger row for a failed migration", () => {
		const db = openD1LikeDatabase();
		try {
			replayMigrations(
				migrations({
					"0001_a.sql": "CREATE TABLE a (x);\n",
					"0002_b.sql": "CREATE TABLE b (x);\nSELECT * FROM missing;\n",
				}),
				{ database: db },
			);
			expect(db.prepare("SELECT name FROM d1_migrations").pluck().all()).toEqual(["0001_a.sql"]);
			expect(db.inTransaction).toBe(false);
		} finally {
			db.close();
		}
	});

	it("should enforce foreign keys, as D1 does", () => {
		const result = replay({
			"0001_a.sql":
				"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id));\nINSERT INTO c VALUES (42);\n",
		});
		expect(result.failure).toMatchObject({
			migration: "0001_a.sql",
			line: 3,
			message: "FOREIGN KEY constraint failed",
			code: "SQLITE_CONSTRAINT_FOREIGNKEY",
		});
		expect(result.schema.objects).toEqual([]);
	});

	it("should fail a deferred foreign key violation at commit, pointing at the file's end", () => {
		const result = replay({
			"0001_a.sql": [
				"PRAGMA defer_foreign_keys = ON;",
				"CREATE TABLE p (id INTEGER PRIMARY KEY);",
				"CREATE TABLE c (p INTEGER REFERENCES p (id));",
				"INSERT INTO c VALUES (42);",
				"CREATE TABLE z (x);",
				"",
				"",
			].join("\n"),
			"0002_b.sql": "CREATE TABLE never (x);\n",
		});
		expect(result.failure).toEqual({
			migration: "0001_a.sql",
			path: "migrations/0001_a.sql",
			line: 5,
			statement: "(at commit)",
			message: "FOREIGN KEY constraint failed",
			code: "SQLITE_CONSTRAINT_FOREIGNKEY",
		});
		expect(result.applied).toEqual([]);
		expect(result.schema.objects).toEqual([]);
	});

	// SQLite and D1 alike: deferring checks does not stop DROP TABLE's implicit DELETE, so a
	// parent-table rebuild with children either fails at commit or cascades (cloudflare-docs#16396).
	const rebuild = (onDelete: string) => ({
		"0001_a.sql": `CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id)${onDelete});\nINSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1);\n`,
		"0002_rebuild.sql": [
			"PRAGMA defer_foreign_keys = ON;",
			"CREATE TABLE p_new (id INTEGER PRIMARY KEY, name TEXT);",
			"INSERT INTO p_new (id) SELECT id FROM p;",
			"DROP TABLE p;",
			"ALTER TABLE p_new RENAME TO p;",
			"",
		].join("\n"),
	});

	it("should fail a parent rebuild with NO ACTION children at commit despite defer_foreign_keys", () => {
		const result = replay(rebuild(""));
		expect(result.failure).toMatchObject({
			migration: "0002_rebuild.sql",
			statement: "(at commit)",
			code: "SQLITE_CONSTRAINT_FOREIGNKEY",
		});
		expect(result.applied.map((a) => a.name)).toEqual(["0001_a.sql"]);
	});

	it("should cascade-delete ON DELETE CASCADE children in a parent rebuild despite defer_foreign_keys", () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(migrations(rebuild(" ON DELETE CASCADE")), { database: db });
			expect(result.ok).toBe(true);
			expect(db.prepare("SELECT count(*) FROM c").pluck().get()).toBe(0);
		} finally {
			db.close();
		}
	});

	it.each([
		[" ON DELETE CASCADE", "CASCADE"],
		[" ON DELETE SET NULL", "SET NULL"],
	])(
		"should report the children a parent rebuild's DROP TABLE touches (%s)",
		(onDelete, action) => {
			const result = replay(rebuild(onDelete));
			expect(result.dropCascades).toEqual([
				{
					migration: "0002_rebuild.sql",
					path: "migrations/0002_rebuild.sql",
					line: 4,
					table: "p",
					children: [{ table: "c", onDelete: action }],
				},
			]);
		},
	);

	it.each([
		[
			"a leaf table (nothing references it)",
			"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id) ON DELETE CASCADE);\nDROP TABLE c;\n",
		],
		[
			"children dropped first",
			"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id) ON DELETE CASCADE);\nDROP TABLE c;\nDROP TABLE p;\n",
		],
		[
			"a NO ACTION child",
			"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id));\nDROP TABLE c;\nDROP TABLE IF EXISTS p;\n",
		],
		[
			"a DROP TABLE inside a string",
			"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id) ON DELETE CASCADE, note TEXT DEFAULT 'DROP TABLE p');\n",
		],
	])("should not report a DROP TABLE that cascades nowhere: %s", (_label, sql) => {
		expect(replay({ "0001_a.sql": sql }).dropCascades).toEqual([]);
	});

	it('should fail a last statement without ";" like D1 does (near "INSERT")', () => {
		const result = replay({
			"0001_a.sql": "CREATE TABLE a (x);\nCREATE TABLE b (y) -- no semicolon\n",
		});
		expect(result.failure).toMatchObject({
			migration: "0001_a.sql",
			line: 2,
			message: 'near "INSERT": syntax error',
		});
		expect(result.schema.objects).toEqual([]);
	});

	it.each([
		["BEGIN TRANSACTION;", 2],
		["BEGIN;", 2],
	])("should fail a migration that opens a transaction (%s)", (begin, line) => {
		const result = replay({
			"0001_a.sql": `CREATE TABLE a (x);\n${begin}\nCREATE TABLE b (x);\nCOMMIT;\n`,
		});
		expect(result.failure).toMatchObject({
			line,
			code: "SQLITE_AUTH",
			message: expect.stringContaining("To execute a transaction, please use"),
		});
		expect(result.schema.objects).toEqual([]);
	});

	it('should replay `SELECT "nope"` as the string D1 reads, reporting the fallback line', () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(
				migrations({
					"0001_a.sql":
						'CREATE TABLE t (a);\nCREATE TABLE t2 (b);\nINSERT INTO t VALUES (1);\n\nINSERT INTO t2 SELECT "nope" FROM t;\n',
					"0002_b.sql": "CREATE TABLE after (x);\n",
				}),
				{ database: db },
			);
			expect(result.ok).toBe(true);
			expect(result.dqsFallbacks).toEqual([
				{ migration: "0001_a.sql", path: "migrations/0001_a.sql", line: 5, identifier: "nope" },
			]);
			expect(db.prepare("SELECT b FROM t2").pluck().all()).toEqual(["nope"]);
			expect(result.applied.map((a) => a.name)).toEqual(["0001_a.sql", "0002_b.sql"]);
		} finally {
			db.close();
		}
	});

	it("should not fall back for a double-quoted name that is a real column", () => {
		const result = replay({
			"0001_a.sql":
				'CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\nCREATE VIEW v AS SELECT "a" FROM t;\n',
		});
		expect(result.ok).toBe(true);
		expect(result.dqsFallbacks).toEqual([]);
	});

	it("should still fail when the DQS fallback cannot make the migration pass", () => {
		const result = replay({
			"0001_a.sql": 'CREATE TABLE t (a);\nINSERT INTO t SELECT "nope" FROM missing_table;\n',
		});
		expect(result.ok).toBe(false);
		expect(result.dqsFallbacks).toEqual([]);
		expect(result.failure?.message).toContain("no such table: missing_table");
		expect(result.failure?.line).toBe(2);
	});

	it("should run trigger bodies containing ';' as one statement", () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(
				migrations({
					"0001_a.sql": [
						"CREATE TABLE t (a);",
						"CREATE TABLE log (m);",
						"CREATE TRIGGER t_log AFTER INSERT ON t BEGIN",
						"  INSERT INTO log VALUES ('a;b');",
						"  INSERT INTO log VALUES (NEW.a);",
						"END;",
						"INSERT INTO t VALUES (7);",
						"",
					].join("\n"),
				}),
				{ database: db },
			);
			expect(result.failure).toBeUndefined();
			expect(db.prepare("SELECT m FROM log ORDER BY rowid").pluck().all()).toEqual(["a;b", 7]);
			expect(objectNames(result)).toEqual(["table log", "table t", "trigger t_log"]);
		} finally {
			db.close();
		}
	});

	it("should locate a failure inside a later statement after a trigger body", () => {
		const result = replay({
			"0001_a.sql": [
				"CREATE TABLE t (a);",
				"CREATE TRIGGER tr AFTER INSERT ON t BEGIN",
				"  SELECT 1; SELECT 2;",
				"END;",
				"INSERT INTO t (missing_col) VALUES (1);",
				"",
			].join("\n"),
		});
		expect(result.failure).toMatchObject({
			line: 5,
			message: expect.stringContaining("missing_col"),
		});
	});

	it("should stop at an unreadable migration without running it or the rest", () => {
		const list = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [
				{ name: "0001_a.sql", bytes: Buffer.from("CREATE TABLE a (x);\n") },
				{ name: "0002_b.sql", bytes: Buffer.from([0x43, 0xff, 0x3b]) },
				{ name: "0003_c.sql", bytes: Buffer.from("CREATE TABLE c (x);\n") },
			],
		}).migrations;
		const result = replayMigrations(list);
		expect(result.failure).toMatchObject({
			migration: "0002_b.sql",
			line: 1,
			statement: "",
			message: "the file is unreadable or not valid UTF-8",
		});
		expect(result.applied.map((a) => a.name)).toEqual(["0001_a.sql"]);
		expect(objectNames(result)).toEqual(["table a"]);
	});

	it("should report migrations as they start", () => {
		const seen: string[] = [];
		replayMigrations(migrations({ "0001_a.sql": "SELECT 1;\n", "0002_b.sql": "SELECT 2;\n" }), {
			onMigration: (name, index, total) => seen.push(`${index + 1}/${total} ${name}`),
		});
		expect(seen).toEqual(["1/2 0001_a.sql", "2/2 0002_b.sql"]);
	});
});

describe("wranglerMigrationQuery()", () => {
	it("should append wrangler's ledger INSERT after a newline, quoting the name", () => {
		expect(
			wranglerMigrationQuery(
				{ name: "0001_it's.sql", sql: "CREATE TABLE a (x);" },
				"d1_migrations",
			),
		).toMatchInlineSnapshot(`
			"CREATE TABLE a (x);
			INSERT INTO "d1_migrations" (name)
			values ('0001_it''s.sql');"
		`);
	});

	it("should refuse ATTACH as D1 does, without creating the attached file", () => {
		const cwd = process.cwd();
		const dir = mkdtempSync(path.join(tmpdir(), "wp-attach-"));
		process.chdir(dir);
		try {
			const result = replay({
				"0001_a.sql": "CREATE TABLE a (x);\n",
				"0002_attach.sql": "-- copy\nATTACH DATABASE 'other.db' AS other;\nCREATE TABLE b (y);\n",
			});
			expect(result.failure).toMatchObject({
				migration: "0002_attach.sql",
				line: 2,
				code: "SQLITE_AUTH",
			});
			expect(result.applied.map((a) => a.name)).toEqual(["0001_a.sql"]);
			expect(existsSync(path.join(dir, "other.db"))).toBe(false);
		} finally {
			process.chdir(cwd);
			rmSync(dir, { recursive: true, force: true });
		}
	});
});

describe("replayMigrations() with fillRows (the data-carrying replay)", () => {
	const files = (second: string) =>
		migrations({
			"0001_users.sql":
				"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, plan TEXT CHECK (plan IN ('free', 'pro')), score INT);\nCREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), body TEXT);\n",
			"0002_change.sql": second,
		});

	it.each([
		["ALTER TABLE users ADD COLUMN team TEXT NOT NULL;\n", "Cannot add a NOT NULL column"],
		[
			"CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, plan TEXT, score INT CHECK (score > 1000000000));\nINSERT INTO users_new SELECT id, email, plan, score FROM users;\n",
			"CHECK constraint failed",
		],
	])("fails %j only once the tables have rows", (sql, message) => {
		expect(replayMigrations(files(sql)).ok).toBe(true);
		const result = replayMigrations(files(sql), { fillRows: 3 });
		expect(result.failure?.migration).toBe("0002_change.sql");
		expect(result.failure?.message).toContain(message);
	});

	it("fills parents and children with rows that satisfy NOT NULL, UNIQUE, CHECK and foreign keys", () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(files("SELECT 1;\n"), { database: db, fillRows: 3 });
			expect(result.ok).toBe(true);
			expect(db.prepare("SELECT count(*) FROM users").pluck().get()).toBe(3);
			expect(db.prepare("SELECT count(*) FROM posts").pluck().get()).toBe(3);
			expect(db.prepare("SELECT DISTINCT plan FROM users").pluck().all()).toEqual(["free"]);
			expect(db.prepare("SELECT count(*) FROM pragma_foreign_key_check").pluck().get()).toBe(0);
			expect(db.prepare("SELECT count(*) FROM d1_migrations").pluck().get()).toBe(2);
		} finally {
			db.close();
		}
	});
});

describe("replayWithDuplicates() (UNIQUE over existing data)", () => {
	const USERS =
		"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, plan TEXT NOT NULL DEFAULT 'free');\n";
	const run = (files: Record<string, string>) =>
		replayWithDuplicates(migrations(files), { fillRows: 3 });

	it.each([
		["a unique index", "CREATE UNIQUE INDEX users_email ON users (email);\n"],
		[
			"a rebuild that adds UNIQUE",
			"CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, plan TEXT NOT NULL DEFAULT 'free');\nINSERT INTO users_new SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n",
		],
	])("reports %s over duplicated values, then goes on", (_, sql) => {
		const result = run({
			"0001_users.sql": USERS,
			"0002_unique.sql": sql,
			"0003_more.sql": "CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT);\n",
		});
		expect(replay({ "0001_users.sql": USERS, "0002_unique.sql": sql }).ok).toBe(true);
		expect(result.duplicateFailures.map((f) => [f.migration, f.code])).toEqual([
			["0002_unique.sql", "SQLITE_CONSTRAINT_UNIQUE"],
		]);
		expect(result.duplicateFailures[0]?.message).toContain("UNIQUE constraint failed: users");
		expect(result.result.ok).toBe(true);
		expect(result.result.applied.map((a) => a.name)).toContain("0003_more.sql");
	});

	it("is no duplicate finding when the rows fail for another reason (REPLAY_DATA_FAILED stays)", () => {
		const result = run({
			"0001_users.sql": USERS,
			"0002_team.sql": "ALTER TABLE users ADD COLUMN team TEXT NOT NULL;\n",
		});
		expect(result.duplicateFailures).toEqual([]);
		expect(result.result.failure?.message).toContain("Cannot add a NOT NULL column");
	});

	it("is no duplicate finding when distinct rows fail too (a UNIQUE index over a constant default)", () => {
		const result = run({
			"0001_users.sql": USERS,
			"0002_plan.sql": "CREATE UNIQUE INDEX users_plan ON users (plan);\n",
		});
		expect(result.duplicateFailures).toEqual([]);
		expect(result.result.failure?.migration).toBe("0002_plan.sql");
	});

	it("finds each such statement of one migration", () => {
		const result = run({
			"0001_users.sql": `${USERS}CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT);\n`,
			"0002_unique.sql":
				"CREATE UNIQUE INDEX users_email ON users (email);\nCREATE UNIQUE INDEX teams_name ON teams (name);\n",
		});
		expect(result.duplicateFailures.map((f) => [f.migration, f.line])).toEqual([
			["0002_unique.sql", 1],
			["0002_unique.sql", 2],
		]);
		expect(result.result.ok).toBe(true);
	});

	it("finds each such migration once, in order", () => {
		const result = run({
			"0001_users.sql": USERS,
			"0002_email.sql": "CREATE UNIQUE INDEX users_email ON users (email);\n",
			"0003_posts.sql":
				"CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT);\n",
			"0004_one_post.sql": "CREATE UNIQUE INDEX posts_user ON posts (user_id);\n",
		});
		expect(result.duplicateFailures.map((f) => f.migration)).toEqual([
			"0002_email.sql",
			"0004_one_post.sql",
		]);
		expect(result.result.ok).toBe(true);
	});
});

describe("tablesGainingColumns()", () => {
	it.each([
		["ALTER TABLE t ADD COLUMN c INTEGER;", ["t"]],
		["alter table main.t add c;", ["t"]],
		['ALTER TABLE t RENAME TO u;\nALTER TABLE "Q" ADD x;', ["Q"]],
		["SELECT 1;\nALTER TABLE a ADD x;\nALTER TABLE b ADD COLUMN y;", ["a", "b"]],
		["ALTER TABLE t RENAME COLUMN a TO add_me;", []],
		["CREATE TABLE t (a);\n-- later: alter table t add b", []],
		["INSERT INTO log VALUES ('alter table t add b');", []],
	])("%j widens %j", (sql, tables) => {
		expect(tablesGainingColumns(sql)).toEqual(tables);
	});
});

describe("findWideTable()", () => {
	const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");

	it("names the first table over D1's 100 columns, and none at exactly 100", () => {
		const db = openD1LikeDatabase();
		try {
			db.exec(
				`CREATE TABLE full (${columns(100)}); CREATE TABLE wide (${columns(101)}); CREATE TABLE wider (${columns(102)});`,
			);
			expect(findWideTable(db, ["full", "wide", "wider"])).toBe("wide");
			expect(findWideTable(db, ["full"])).toBeUndefined();
			expect(findWideTable(db, [])).toBeUndefined();
		} finally {
			db.close();
		}
	});

	it("fails the replay of an ADD COLUMN over the limit at the ALTER, as D1 does", () => {
		const result = replay({
			"0001_wide.sql": `CREATE TABLE w (${columns(100)});\nCREATE TABLE other (x);\nALTER TABLE w ADD COLUMN extra;\nALTER TABLE other ADD COLUMN y;\nINSERT INTO w (c0) VALUES ('add');\n`,
		});
		expect(result.ok).toBe(false);
		expect(result.failure).toMatchObject({
			migration: "0001_wide.sql",
			line: 3,
			statement: "ALTER TABLE w ADD COLUMN extra",
			message: "too many columns on sqlite_altertab_w",
			code: "SQLITE_ERROR",
		});
	});
});

describe("openD1LikeDatabase() LIKE and GLOB", () => {
	const value = (sql: string, ...args: unknown[]) => {
		const db = openD1LikeDatabase();
		try {
			return db
				.prepare(sql)
				.pluck()
				.get(...args);
		} finally {
			db.close();
		}
	};

	it.each([
		["SELECT 'ABC' LIKE 'a%'", 1],
		["SELECT 'abc' LIKE 'x%'", 0],
		["SELECT 'a_b' LIKE 'a!_b' ESCAPE '!'", 1],
		["SELECT 'axb' LIKE 'a!_b' ESCAPE '!'", 0],
		["SELECT 'abc' GLOB 'a*'", 1],
		["SELECT 'ABC' GLOB 'a*'", 0],
		["SELECT NULL LIKE 'a'", null],
	])("keeps SQLite's answer: %s is %j", (sql, expected) => {
		expect(value(sql)).toBe(expected);
	});

	it.each([
		["LIKE", "x".repeat(50), true],
		["LIKE", "x".repeat(51), false],
		["LIKE", "é".repeat(25), true],
		["LIKE", "é".repeat(26), false],
		["GLOB", "x".repeat(50), true],
		["GLOB", "x".repeat(51), false],
	])("%s with a pattern of %j: allowed %s (50 bytes at most, as D1)", (op, pattern, allowed) => {
		const run = () => value(`SELECT 'x' ${op} ?`, pattern);
		if (allowed) expect(run).not.toThrow();
		else expect(run).toThrow(D1_LIKE_PATTERN_MESSAGE);
	});
});

describe("replayMigrations() edges", () => {
	it("reports a DROP TABLE IF EXISTS of a parent whose children cascade", () => {
		const result = replay({
			"0001_a.sql":
				"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id) ON DELETE CASCADE);\nDROP TABLE IF EXISTS p;\n",
		});
		expect(result.dropCascades.map((d) => [d.table, d.line, d.children])).toEqual([
			["p", 3, [{ table: "c", onDelete: "CASCADE" }]],
		]);
	});

	it("turns each unresolvable double-quoted name of a statement into its string, a ' included", () => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations(
				migrations({
					"0001_a.sql":
						'CREATE TABLE t (a, b, c);\nINSERT INTO t SELECT "it\'s", "two words", "plain";\n',
				}),
				{ database: db },
			);
			expect(result.ok).toBe(true);
			expect(result.dqsFallbacks.map((f) => [f.line, f.identifier])).toEqual([
				[2, "it's"],
				[2, "two words"],
				[2, "plain"],
			]);
			expect(db.prepare("SELECT a, b, c FROM t").raw().get()).toEqual([
				"it's",
				"two words",
				"plain",
			]);
		} finally {
			db.close();
		}
	});

	it.each([
		[
			"ATTACH DATABASE 'x.db' AS x;",
			"SQLITE_AUTH",
			"not authorized (D1 does not allow ATTACH or DETACH)",
		],
		[
			"SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7;",
			"SQLITE_ERROR",
			undefined,
		],
	])("refuses %s before running it, with code %s", (sql, code, message) => {
		const result = replay({ "0001_a.sql": `${sql}\n` });
		expect(result.failure).toMatchObject({ line: 1, code, statement: sql.replace(/;$/, "") });
		if (message) expect(result.failure?.message).toBe(message);
		else expect(result.failure?.message).not.toContain("not authorized");
	});

	it("installs D1's limits on a database it is given, and leaves it open", () => {
		const db = new Database(":memory:");
		try {
			const result = replayMigrations(
				migrations({
					"0001_a.sql": `CREATE TABLE t (a);\nINSERT INTO t VALUES ('x');\nSELECT count(*) FROM t WHERE a LIKE '${"x".repeat(51)}';\n`,
				}),
				{ database: db },
			);
			expect(result.failure?.message).toContain(D1_LIKE_PATTERN_MESSAGE);
			expect(db.open).toBe(true);
		} finally {
			db.close();
		}
	});

	it("times each migration within the whole replay's time", () => {
		const t0 = performance.now();
		const result = replay({
			"0001_a.sql": "CREATE TABLE a (x);\n",
			"0002_b.sql": "CREATE TABLE b (x);\n",
		});
		const elapsed = performance.now() - t0;
		const sum = result.applied.reduce((total, a) => total + a.durationMs, 0);
		expect(result.applied.every((a) => a.durationMs >= 0)).toBe(true);
		expect(sum).toBeLessThanOrEqual(result.durationMs);
		expect(result.durationMs).toBeLessThanOrEqual(elapsed);
	});
});
