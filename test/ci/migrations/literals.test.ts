import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { quoteIdentifier, sqlInteger, sqlString } from "../../../ci/migrations/literals.ts";

// Real SQLite reads every literal back: what goes in is what the database sees.
const db = new Database(":memory:");
afterAll(() => db.close());
const select = (literal: string) => db.prepare(`SELECT ${literal} AS v`).get() as { v: unknown };

describe("sqlString()", () => {
	it.each(["", "plain", "it's", "''", "a\nb", "-- not a comment", "😀 ü", "x'); DROP TABLE t; --"])(
		"%j round-trips",
		(text) => {
			expect(select(sqlString(text)).v).toBe(text);
		},
	);

	it.each([null, undefined])("%s → NULL", (value) => {
		expect(sqlString(value)).toBe("NULL");
		expect(select(sqlString(value)).v).toBeNull();
	});
});

describe("sqlInteger()", () => {
	it.each<[number | null | undefined, number | null]>([
		[0, 0],
		[42, 42],
		[-7, -7],
		[2.6, 3],
		[Number.NaN, null],
		[Number.POSITIVE_INFINITY, null],
		[null, null],
		[undefined, null],
	])("%s → %s", (value, read) => {
		expect(select(sqlInteger(value)).v).toBe(read);
	});
});

describe("quoteIdentifier()", () => {
	it.each(["d1_migrations", "my table", 'we"ird', "select", "_cf_x"])(
		"%j names a real table",
		(name) => {
			db.exec(`CREATE TABLE ${quoteIdentifier(name)} (x)`);
			expect(db.prepare("SELECT name FROM sqlite_master WHERE name = ?").get(name)).toEqual({
				name,
			});
			db.exec(`DROP TABLE ${quoteIdentifier(name)}`);
		},
	);
});
