import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { D1Client } from "../../../ci/cloudflare/d1-client.ts";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";
import {
	formatNotCopied,
	planCopy,
	readCopy,
	rehearseOnCopy,
} from "../../../ci/migrations/rehearse.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";

const row = (name: string, sql: string, type = "table") => ({ type, name, tbl_name: name, sql });

describe("planCopy()", () => {
	it("copies ordinary tables, refills virtual ones, and skips their shadow tables", () => {
		const plan = planCopy([
			row("users", "CREATE TABLE users (id INTEGER PRIMARY KEY)"),
			row("docs", "CREATE VIRTUAL TABLE docs USING fts5(body)"),
			...["data", "idx", "content", "docsize", "config"].map((s) =>
				row(`docs_${s}`, `CREATE TABLE 'docs_${s}'(id)`),
			),
			row("docs_notes", "CREATE TABLE docs_notes (id INTEGER)"),
		]);
		expect(plan.tables.map((t) => t.name)).toEqual(["users", "docs_notes"]);
		expect(plan.virtual.map((t) => t.name)).toEqual(["docs"]);
		expect([...plan.shadows].sort()).toEqual([
			"docs_config",
			"docs_content",
			"docs_data",
			"docs_docsize",
			"docs_idx",
		]);
	});
});

async function remote(): Promise<SqliteExecutor> {
	const db = new SqliteExecutor();
	await db.query(
		[
			"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, avatar BLOB);",
			"CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;",
			"CREATE VIRTUAL TABLE docs USING fts5(body);",
			"CREATE INDEX users_name ON users (name);",
			"CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN INSERT INTO kv VALUES ('t' || new.id, 'x'); END;",
			"INSERT INTO kv VALUES ('a', '1'), ('b', '2');",
			"INSERT INTO users (id, name, avatar) VALUES (7, 'ann', x'0102'), (9, 'bob', NULL);",
			"INSERT INTO docs (rowid, body) VALUES (3, 'alpha beta');",
		].join("\n"),
		{ write: true },
	);
	return db;
}

/** Pending migrations (name → SQL) rehearsed on a copy of remote(); `elapsed`: the rehearsal's ms. */
async function rehearse(environment: string, files: Record<string, string>) {
	const { copy } = await readCopy(await remote());
	const catalog = parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired: [],
		files: Object.entries(files).map(([name, sql]) => ({ name, bytes: Buffer.from(sql) })),
	});
	try {
		const t0 = performance.now();
		const result = rehearseOnCopy(copy, catalog.migrations, {
			migrationsTable: "d1_migrations",
			environment,
		});
		return { result, elapsed: performance.now() - t0 };
	} finally {
		copy.close();
	}
}

describe("readCopy()", () => {
	it("copies rows with their rowids and blobs, and rebuilds the FTS index locally", async () => {
		const db = await remote();
		const { copy, report } = await readCopy(db, { rows: 1000, bytes: 1e6, pageSize: 1 });
		expect(report.complete).toBe(true);
		expect(copy.prepare("SELECT id, name, avatar FROM users ORDER BY id").all()).toEqual([
			{ id: 7, name: "ann", avatar: Buffer.from([1, 2]) },
			{ id: 9, name: "bob", avatar: null },
		]);
		// The trigger was created after the copy: it did not fire for copied rows.
		expect(copy.prepare("SELECT k FROM kv ORDER BY k").pluck().all()).toEqual([
			"a",
			"b",
			"t7",
			"t9",
		]);
		expect(copy.prepare("SELECT rowid FROM docs WHERE docs MATCH 'alpha'").pluck().all()).toEqual([
			3,
		]);
		expect(
			copy.prepare("SELECT name FROM sqlite_schema WHERE type = 'index'").pluck().all(),
		).toContain("users_name");
		copy.close();
	});

	it("stops at its row budget and says which tables were cut short", async () => {
		const db = await remote();
		const { copy, report } = await readCopy(db, { rows: 3, bytes: 1e6, pageSize: 2 });
		expect(report.complete).toBe(false);
		expect(report.rows).toBe(3);
		expect(report.tables.filter((t) => !t.complete).map((t) => t.name)).toContain("docs");
		copy.close();
	});
});

describe("rehearseOnCopy()", () => {
	it("predicts each pending migration's time, and names the one that fails on the data", async () => {
		const { result } = await rehearse("production", {
			"0001_ok.sql": "ALTER TABLE users ADD COLUMN age INTEGER;\n",
			"0002_bad.sql": "ALTER TABLE users ADD COLUMN email TEXT NOT NULL;\n",
		});
		expect(result.predictions.map((p) => p.name)).toEqual(["0001_ok.sql"]);
		expect(result.findings.map((f) => [f.code, f.file])).toEqual([
			["REHEARSAL_FAILED", "migrations/0002_bad.sql"],
		]);
	});
});

// The same copy through the loopback D1 API (real better-sqlite3 behind D1's REST envelope).
describe("readCopy() from the loopback D1", () => {
	const token = "tok-rehearse";
	const accountId = "0123456789abcdef0123456789abcdef";
	const uuid = "00000000-0000-4000-8000-0000000000aa";
	let api: CloudflareApi;
	let client: D1Client;
	beforeAll(async () => {
		api = await startCloudflareApi({ token, accountId, databases: [{ uuid, name: "rehearse" }] });
		client = new D1Client({ apiToken: token, accountId, databaseId: uuid, baseURL: api.url });
		api.database(uuid).exec(
			[
				"CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);",
				"INSERT INTO items (name) VALUES ('a'), ('b'), ('c'), ('d');",
				// The two newest rows are gone, their ids never handed out again.
				"DELETE FROM items WHERE id > 2;",
				"CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, y0, y1, +label);",
				"INSERT INTO boxes VALUES (5, 0, 10, 0, 10, 'big'), (8, 2, 3, 2, 3, 'small');",
				"CREATE VIRTUAL TABLE notes USING fts5(body);",
				"CREATE VIRTUAL TABLE notes_terms USING fts5vocab(notes, 'row');",
				"INSERT INTO notes (rowid, body) VALUES (4, 'alpha beta');",
				"CREATE VIRTUAL TABLE blind USING fts5(body, content='');",
				"INSERT INTO blind (rowid, body) VALUES (6, 'gamma');",
			].join("\n"),
		);
	});
	afterAll(async () => {
		await api?.close();
	});

	it("copies the AUTOINCREMENT counters, so the copy hands out the ids D1 would", async () => {
		const { copy, report } = await readCopy(client);
		try {
			expect(report.sequences).toBe(1);
			copy.exec("INSERT INTO items (name) VALUES ('e')");
			const remoteNext = api.database(uuid);
			remoteNext.exec("SAVEPOINT probe; INSERT INTO items (name) VALUES ('e');");
			const expected = remoteNext.prepare("SELECT max(id) FROM items").pluck().get();
			remoteNext.exec("ROLLBACK TO probe; RELEASE probe;");
			expect(expected).toBe(5);
			expect(copy.prepare("SELECT max(id) FROM items").pluck().get()).toBe(expected);
		} finally {
			copy.close();
		}
	});

	it("refills an rtree from its rows, so spatial queries answer as on D1", async () => {
		const { copy, report } = await readCopy(client);
		try {
			expect(report.tables.find((t) => t.name === "boxes")).toMatchObject({
				rows: 2,
				complete: true,
			});
			const inside = "SELECT id, label FROM boxes WHERE x0 <= 2.5 AND x1 >= 2.5 ORDER BY id";
			expect(copy.prepare(inside).all()).toEqual(api.database(uuid).prepare(inside).all());
			expect(copy.prepare(inside).all()).toHaveLength(2);
		} finally {
			copy.close();
		}
	});

	it("recreates an fts5vocab table from its FTS5 table instead of copying it", async () => {
		const { copy, report } = await readCopy(client);
		try {
			expect(report.tables.map((t) => t.name)).not.toContain("notes_terms");
			expect(copy.prepare("SELECT term FROM notes_terms ORDER BY term").pluck().all()).toEqual([
				"alpha",
				"beta",
			]);
		} finally {
			copy.close();
		}
	});

	it("says that a contentless FTS5 table cannot be copied, rather than pretending", async () => {
		const { copy, report } = await readCopy(client);
		try {
			expect(report.notCopied.map((t) => t.name)).toEqual(["blind"]);
			expect(report.tables.map((t) => t.name)).not.toContain("blind");
			// The table exists in the copy (migrations may name it), with an empty index.
			expect(
				copy.prepare("SELECT count(*) FROM blind WHERE blind MATCH 'gamma'").pluck().get(),
			).toBe(0);
			const findings = formatNotCopied(report);
			expect(findings.map((f) => [f.code, f.severity])).toEqual([
				["REHEARSAL_NOT_COPIED", "warning"],
			]);
			expect(findings[0]?.message).toContain("contentless FTS5 table (content='')");
		} finally {
			copy.close();
		}
	});
});

describe("planCopy() virtual tables", () => {
	it.each([
		["  create  virtual \t table v USING fts5(a)", true],
		["CREATE VIRTUAL TABLE v USING rtree(id, x0, x1)", true],
		["CREATE TABLE v (note TEXT DEFAULT 'CREATE VIRTUAL TABLE')", false],
	])("tells %j is virtual: %s", (sql, virtual) => {
		const plan = planCopy([row("v", sql)]);
		expect(plan.virtual.map((t) => t.name)).toEqual(virtual ? ["v"] : []);
		expect(plan.tables.map((t) => t.name)).toEqual(virtual ? [] : ["v"]);
	});

	it("skips every shadow table SQLite creates (FTS5 and R*Tree), and nothing else named like one", () => {
		const suffixes = ["data", "idx", "content", "docsize", "config", "node", "parent", "rowid"];
		const plan = planCopy([
			row("v", "CREATE VIRTUAL TABLE v USING fts5(a)"),
			...suffixes.map((s) => row(`v_${s}`, `CREATE TABLE 'v_${s}'(id)`)),
			{ type: "index", name: "v_extra", tbl_name: "v_data", sql: null },
			{ type: "index", name: "w_data", tbl_name: "w", sql: "CREATE INDEX w_data ON w (id)" },
			row("w", "CREATE TABLE w (id)"),
			row("v_other", "CREATE TABLE v_other (id)"),
		]);
		expect([...plan.shadows].sort()).toEqual(suffixes.map((s) => `v_${s}`).sort());
		expect(plan.tables.map((t) => t.name)).toEqual(["w", "v_other"]);
	});

	it("counts only tables as shadows, not an index named like one", () => {
		const plan = planCopy([
			row("v", "CREATE VIRTUAL TABLE v USING fts5(a)"),
			{ type: "index", name: "v_data", tbl_name: "w", sql: "CREATE INDEX v_data ON w (id)" },
		]);
		expect([...plan.shadows]).toEqual([]);
	});

	it.each([
		["fts5(body, content='')", "contentless"],
		['fts5(content = "", body)', "contentless"],
		["fts5(body,content=[])", "contentless"],
		["fts5(body, content = '' )", "contentless"],
		["fts5(body, content=``)", "contentless"],
		["fts5(body, content='docs')", "refilled"],
		["fts4(body, content='')", "refilled"],
		["fts5vocab(docs, 'row')", "derived"],
		["  FTS5VOCAB (docs, 'row')", "derived"],
	])("USING %s: %s", (using, kind) => {
		const sql = `CREATE VIRTUAL TABLE v USING  ${using}`;
		const plan = planCopy([row("v", sql)]);
		expect(plan.virtual.map((t) => t.name)).toEqual(kind === "refilled" ? ["v"] : []);
		expect(plan.recreateOnly.map((r) => [r.row.name, r.reason !== undefined])).toEqual(
			kind === "refilled" ? [] : [["v", kind === "contentless"]],
		);
		if (kind === "contentless") expect(plan.recreateOnly[0]?.reason).toContain("content=''");
	});
});

describe("readCopy() requests, budgets and counters", () => {
	async function source(sql: string): Promise<SqliteExecutor> {
		const db = new SqliteExecutor();
		await db.query(sql, { write: true });
		return db;
	}

	it("pages with the default budget: one schema read, then 1000 rows per SELECT", async () => {
		const db = await source(
			"CREATE TABLE n (v INTEGER);\nWITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2500) INSERT INTO n SELECT i FROM s;",
		);
		const progress: string[] = [];
		const { copy, report } = await readCopy(db, undefined, (m) => progress.push(m));
		try {
			expect(report).toMatchObject({ rows: 2500, requests: 4, complete: true });
			expect(report.tables).toEqual([{ name: "n", rows: 2500, complete: true }]);
			expect(progress).toEqual(["rehearsal: copied 2500 row(s) of n"]);
			expect(copy.prepare("SELECT count(*) FROM n").pluck().get()).toBe(2500);
		} finally {
			copy.close();
		}
	});

	it("stops at its byte budget and marks the copy incomplete", async () => {
		const db = await source(
			"CREATE TABLE a (v TEXT);\nCREATE TABLE b (v TEXT);\nINSERT INTO a VALUES ('x'), ('y');\nINSERT INTO b VALUES ('z');",
		);
		// Exactly the first page's size: the budget is spent once it is reached.
		const bytes = Buffer.byteLength(JSON.stringify([{ __rowid: 1, v: "x" }]));
		const { copy, report } = await readCopy(db, { rows: 100, bytes, pageSize: 1 });
		try {
			expect(report.complete).toBe(false);
			expect(report.tables).toEqual([
				{ name: "a", rows: 1, complete: false },
				{ name: "b", rows: 0, complete: false },
			]);
			expect(report.requests).toBe(2);
			expect(report.bytes).toBe(bytes);
		} finally {
			copy.close();
		}
	});

	it("copies a WITHOUT ROWID table however it is spaced", async () => {
		const db = await source(
			"CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT  ROWID;\nINSERT INTO kv VALUES ('a', '1');",
		);
		const { copy, report } = await readCopy(db);
		try {
			expect(report.tables).toEqual([{ name: "kv", rows: 1, complete: true }]);
		} finally {
			copy.close();
		}
	});

	it("copies the counter of an AUTOINCREMENT table whose rows are all gone, beside plain tables", async () => {
		const db = await source(
			"CREATE TABLE plain (v TEXT);\nCREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);\nINSERT INTO items (v) VALUES ('a'), ('b'), ('c'), ('d');\nDELETE FROM items;",
		);
		const { copy, report } = await readCopy(db);
		try {
			expect(report.sequences).toBe(1);
			// schema, plain, items, sqlite_sequence
			expect(report.requests).toBe(4);
			copy.exec("INSERT INTO items (v) VALUES ('e')");
			expect(copy.prepare("SELECT id FROM items").pluck().get()).toBe(5);
		} finally {
			copy.close();
		}
	});
});

describe("rehearseOnCopy() predictions and message", () => {
	it("splits the measured time between the migrations, and names SQLite's code", async () => {
		const { result, elapsed } = await rehearse("staging", {
			"0001_a.sql": "CREATE TABLE a (x);\n",
			"0002_b.sql": "CREATE TABLE b (x);\n",
			"0003_bad.sql": "INSERT INTO users (id) VALUES (7);\n",
		});
		expect(result.predictions.map((p) => p.name)).toEqual(["0001_a.sql", "0002_b.sql"]);
		const total = result.predictions.reduce((sum, p) => sum + p.predictedMs, 0);
		expect(total).toBeGreaterThanOrEqual(0);
		expect(total).toBeLessThanOrEqual(Math.ceil(elapsed) + 2);
		expect(result.findings[0]?.message).toMatch(
			/^on a copy of the staging data, 0003_bad\.sql fails: .*UNIQUE.* \(SQLITE_CONSTRAINT_PRIMARYKEY\)\. It works on an empty database/,
		);
	});
});
