import { describe, expect, it } from "vitest";
import type { Migration } from "../../../ci/migrations/catalog.ts";
import { lintMigration } from "../../../ci/migrations/lint.ts";
import { replayMigrations } from "../../../ci/migrations/replay.ts";
import { D1DatabaseState } from "../../support/d1-database.ts";
import { D1_CASES } from "./d1-cases.ts";

const migration = (sql: string): Migration =>
	({ name: "0001_case.sql", path: "migrations/0001_case.sql", sql, readable: true }) as Migration;

describe("D1's rules through lint, the replay and the loopback D1", () => {
	it.each(D1_CASES)("lint: $name ($d1)", ({ sql, d1, lint }) => {
		const errors = lintMigration({ name: "0001_case.sql", content: sql })
			.filter((f) => f.severity === "error")
			.map((f) => f.code);
		if (d1 === "accepts" || lint === null) expect(errors).toEqual([]);
		else expect(errors).toContain(lint);
	});

	it.each(D1_CASES)("replay: $name ($d1)", ({ sql, d1 }) => {
		const result = replayMigrations([migration(sql)]);
		expect(result.ok, JSON.stringify(result.failure)).toBe(d1 === "accepts");
	});

	it.each(D1_CASES)("loopback D1: $name ($d1)", ({ sql, d1 }) => {
		const state = new D1DatabaseState({ uuid: "case", name: "case" });
		try {
			const run = () => state.execute([{ sql }]);
			if (d1 === "accepts") run();
			else expect(run).toThrow();
		} finally {
			state.close();
		}
	});
});

describe("a request over 100 KB (workerd prepareSql(MULTI) prepares the remaining text; workers-sdk#6347)", () => {
	const insert = (n: number) =>
		`INSERT INTO t (a) VALUES ${Array.from({ length: n }, (_, i) => `('${String(i).padStart(8, "0")}')`).join(", ")};`;
	// Three statements of ~40 KB: each under the statement limit, together over it.
	const big = `CREATE TABLE t (a);\n${insert(3000)}\n${insert(3000)}\n${insert(3000)}\n`;
	const small = `CREATE TABLE t (a);\n${insert(3000)}\n${insert(3000)}\n`;

	it.each([
		[big, true],
		[small, false],
	])("loopback D1 and lint agree on %#", (sql, refused) => {
		const state = new D1DatabaseState({ uuid: "size", name: "size" });
		try {
			const run = () => state.execute([{ sql }]);
			if (refused) expect(run).toThrow("statement too long: SQLITE_TOOBIG");
			else run();
		} finally {
			state.close();
		}
		const codes = lintMigration({ name: "0001_big.sql", content: sql }).map((f) => f.code);
		expect(codes.includes("D1_REQUEST_TOO_LARGE")).toBe(refused);
		expect(codes).not.toContain("D1_STATEMENT_TOO_LARGE");
	});
});
