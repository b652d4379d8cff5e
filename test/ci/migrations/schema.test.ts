import { describe, expect, it } from "vitest";
import { ledgerTableSql, openD1LikeDatabase, readSchema } from "../../../ci/migrations/replay.ts";
import {
	diffLines,
	diffSchema,
	formatCreateStatement,
	formatSchemaDifferences,
	makeSchema,
	parseSnapshot,
	renderSnapshot,
	type Schema,
} from "../../../ci/migrations/schema.ts";

/** The schema a fresh D1-like database has after running `sql`. */
function schemaOf(sql: string, ledgerTables: readonly string[] = ["d1_migrations"]): Schema {
	const db = openD1LikeDatabase();
	try {
		db.exec(sql);
		return readSchema(db, ledgerTables);
	} finally {
		db.close();
	}
}

const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);";
const POSTS =
	"CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), title TEXT);";
const INDEX = "CREATE INDEX posts_user_idx ON posts (user_id);";
const VIEW = "CREATE VIEW titles AS SELECT title FROM posts;";
const TRIGGER =
	"CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN UPDATE posts SET title = trim(NEW.title) WHERE id = NEW.id; END;";

describe("readSchema()", () => {
	it("should not depend on the order objects were created in", () => {
		const a = schemaOf([USERS, POSTS, INDEX, VIEW, TRIGGER].join("\n"));
		const b = schemaOf([USERS, POSTS, TRIGGER, VIEW, INDEX].join("\n"));
		expect(a.objects.map((o) => `${o.type} ${o.name}`)).toEqual([
			"table posts",
			"table users",
			"index posts_user_idx",
			"view titles",
			"trigger posts_title",
		]);
		expect(diffSchema(a, b)).toEqual([]);
		expect(b).toEqual(a);
	});

	it("should ignore whitespace, comments and keyword case", () => {
		const a = schemaOf(`${USERS}\n${POSTS}\n${TRIGGER}`);
		const b = schemaOf(`
			create table users (
				id   INTEGER  primary key, -- the key
				email TEXT NOT NULL UNIQUE /* login */
			);
			CREATE TABLE posts(id INTEGER PRIMARY KEY,user_id INTEGER REFERENCES users(id),title TEXT);
			create trigger posts_title after insert on posts
			begin
				-- normalise titles
				update posts set title = trim(NEW.title) where id = NEW.id;
			end;
		`);
		expect(diffSchema(a, b)).toEqual([]);
	});

	it("should leave out ledger tables, _cf_ and sqlite_ objects", () => {
		const schema = schemaOf(
			[
				ledgerTableSql("d1_migrations"),
				ledgerTableSql("custom_ledger"),
				"CREATE INDEX custom_ledger_idx ON custom_ledger (applied_at);",
				"CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB);",
				"CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER UNIQUE);",
				"ANALYZE;",
			].join("\n"),
			["D1_Migrations", "custom_ledger"],
		);
		expect(schema.objects.map((o) => `${o.type} ${o.name}`)).toEqual(["table counters"]);
	});

	it("should keep a table that merely starts like a ledger or reserved name", () => {
		const schema = schemaOf(
			"CREATE TABLE d1_migrations_notes (x);\nCREATE TABLE cf_things (x);\nCREATE TABLE sqlite (x);",
		);
		expect(schema.objects.map((o) => o.name)).toEqual([
			"cf_things",
			"d1_migrations_notes",
			"sqlite",
		]);
	});
});

describe("formatCreateStatement()", () => {
	it("should print a table one column per line and a trigger one statement per line", () => {
		expect(formatCreateStatement(`${POSTS}`)).toMatchInlineSnapshot(`
			"CREATE TABLE posts (
				id INTEGER PRIMARY KEY,
				user_id INTEGER REFERENCES users (id),
				title TEXT
			)"
		`);
		expect(
			formatCreateStatement(
				"create trigger t after insert on posts begin insert into log values (case when new.id > 1 then 'a;b' else 'c' end); delete from log; end",
			),
		).toMatchInlineSnapshot(`
			"CREATE TRIGGER t AFTER INSERT ON posts BEGIN
				INSERT INTO log VALUES (CASE WHEN new.id > 1 THEN 'a;b' ELSE 'c' END);
				DELETE FROM log;
			END"
		`);
	});
});

describe("diffSchema()", () => {
	it("should report a changed column as `changed` with a readable -/+ diff", () => {
		const snapshot = schemaOf(`${USERS}\n${POSTS}\n${INDEX}`);
		const replayed = schemaOf(
			`${USERS}\n${POSTS.replace("title TEXT", "title TEXT NOT NULL DEFAULT ''")}\n${INDEX}`,
		);
		const differences = diffSchema(snapshot, replayed);
		expect(differences.map((d) => [d.kind, d.type, d.name])).toEqual([
			["changed", "table", "posts"],
		]);
		expect(formatSchemaDifferences(differences)).toMatchInlineSnapshot(`
			"table posts changed:
			      CREATE TABLE posts (
			      	id INTEGER PRIMARY KEY,
			      	user_id INTEGER REFERENCES users (id),
			    + 	title TEXT NOT NULL DEFAULT ''
			    - 	title TEXT
			      )"
		`);
	});

	it("should report added and removed objects with every line marked", () => {
		const differences = diffSchema(
			schemaOf(`${USERS}\n${VIEW.replace("posts", "users")}`),
			schemaOf(`${USERS}\n${INDEX.replace("posts (user_id)", "users (email)")}`),
		);
		expect(formatSchemaDifferences(differences)).toMatchInlineSnapshot(`
			"view titles removed:
			    - CREATE VIEW titles AS SELECT title FROM users
			index posts_user_idx added:
			    + CREATE INDEX posts_user_idx ON users (email)"
		`);
	});

	it("should match object names case-insensitively, as SQLite does", () => {
		const a = makeSchema([
			{ type: "table", name: "Users", tbl_name: "Users", sql: "CREATE TABLE Users (x)" },
		]);
		const b = makeSchema([
			{ type: "table", name: "users", tbl_name: "users", sql: "CREATE TABLE Users (x)" },
		]);
		expect(diffSchema(a, b)).toEqual([]);
	});
});

describe("diffLines()", () => {
	it.each([
		["a\nb\nc", "a\nb\nc", ["  a", "  b", "  c"]],
		["a\nb\nc", "a\nc", ["  a", "- b", "  c"]],
		["a\nc", "a\nb\nc", ["  a", "+ b", "  c"]],
		["a", "b", ["+ b", "- a"]],
		["", "x", ["+ x", "- "]],
	])("should diff %j against %j", (a, b, expected) => {
		expect(diffLines(a, b)).toEqual(expected);
	});
});

describe("renderSnapshot() / parseSnapshot()", () => {
	const full = () => schemaOf([USERS, POSTS, INDEX, VIEW, TRIGGER].join("\n"));

	it("should round-trip a schema through the snapshot text", () => {
		const schema = full();
		const text = renderSnapshot(schema, ["generated for a test", "second line"]);
		expect(text.startsWith("-- generated for a test\n-- second line\n\n")).toBe(true);
		expect(parseSnapshot(text)).toEqual(schema);
	});

	it("should round-trip with CRLF line endings (a Windows checkout)", () => {
		const schema = full();
		const text = renderSnapshot(schema, ["header"]).replace(/\n/g, "\r\n");
		expect(parseSnapshot(text)).toEqual(schema);
	});

	it("should round-trip an empty schema", () => {
		const text = renderSnapshot({ objects: [] }, ["nothing yet"]);
		expect(text).toBe("-- nothing yet\n\n");
		expect(parseSnapshot(text)).toEqual({ objects: [] });
	});

	it("should read a hand-formatted snapshot in any order as the same schema", () => {
		const text = `-- edited by hand\n${TRIGGER}\n\n${VIEW}\n${INDEX}\n${POSTS}\n${USERS}\n`;
		expect(diffSchema(parseSnapshot(text), full())).toEqual([]);
	});

	it("should identify IF NOT EXISTS, UNIQUE indexes and schema-qualified names", () => {
		const schema = parseSnapshot(
			"CREATE TABLE IF NOT EXISTS main.t (x);\nCREATE UNIQUE INDEX IF NOT EXISTS t_x ON t (x);\nSELECT 1;\n",
		);
		expect(schema.objects.map((o) => [o.type, o.name, o.table])).toEqual([
			["table", "t", "t"],
			["index", "t_x", "t"],
		]);
	});
});
