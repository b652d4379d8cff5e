import { describe, expect, it } from "vitest";
import { checkD1Statement, checkD1StatementOnce } from "../../../ci/migrations/d1-rules.ts";
import { splitStatements } from "../../../ci/migrations/sql.ts";

const statementsOf = (sql: string) => splitStatements(sql);

describe("checkD1StatementOnce()", () => {
	it.each([
		["a refused function", "SELECT sqlite_version();"],
		["an accepted statement", "CREATE TABLE t (id INTEGER PRIMARY KEY);"],
		["a refused transaction", "BEGIN;"],
	])("gives checkD1Statement's verdict for %s, the first time and again", (_label, sql) => {
		const [statement] = statementsOf(sql);
		if (statement === undefined) throw new Error("no statement");
		const expected = checkD1Statement(statement);
		expect(checkD1StatementOnce(statement)).toEqual(expected);
		expect(checkD1StatementOnce(statementsOf(sql)[0] as typeof statement)).toEqual(expected);
	});

	it("points at the token of the statement asked about, not of the same text elsewhere", () => {
		const text = "SELECT sqlite_version();";
		const first = statementsOf(text)[0];
		const later = statementsOf(`\n\n  ${text}`)[0];
		if (first === undefined || later === undefined) throw new Error("no statement");
		expect(checkD1StatementOnce(first)?.token).toMatchObject({ line: 1, column: 8 });
		expect(checkD1StatementOnce(later)?.token).toMatchObject({ line: 3, column: 10 });
	});
});
