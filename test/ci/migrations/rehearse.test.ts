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
