import { describe, expect, it } from "vitest";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";
import { planCopy, readCopy, rehearseOnCopy } from "../../../ci/migrations/rehearse.ts";

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
		const db = await remote();
		const { copy } = await readCopy(db);
		const catalog = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [
				{ name: "0001_ok.sql", bytes: Buffer.from("ALTER TABLE users ADD COLUMN age INTEGER;\n") },
				{
					name: "0002_bad.sql",
					bytes: Buffer.from("ALTER TABLE users ADD COLUMN email TEXT NOT NULL;\n"),
				},
			],
		});
		const result = rehearseOnCopy(copy, catalog.migrations, {
			migrationsTable: "d1_migrations",
			environment: "production",
		});
		expect(result.predictions.map((p) => p.name)).toEqual(["0001_ok.sql"]);
		expect(result.findings.map((f) => [f.code, f.file])).toEqual([
			["REHEARSAL_FAILED", "migrations/0002_bad.sql"],
		]);
		copy.close();
	});
});
