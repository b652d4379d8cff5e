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
