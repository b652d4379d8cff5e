import { describe, expect, it } from "vitest";
import {
	claimLockParts,
	composeRequest,
	guardSql,
	recordSql,
} from "../../../ci/migrations/ledger.ts";

const result = (tag: string) => ({ results: [{ tag }], success: true });

describe("composeRequest()", () => {
	it("reads each part's results by name, whatever the parts before it hold", () => {
		const request = composeRequest([
			["a", "SELECT 1;\nSELECT 2;"],
			["empty", ""],
			["b", "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;"],
			["c", "SELECT 3;"],
		]);
		expect(request.counts).toEqual({ a: 2, empty: 0, b: 1, c: 1 });
		const results = ["a1", "a2", "b1", "c1"].map(result);
		expect(request.part(results, "a").map((r) => r.results[0]?.tag)).toEqual(["a1", "a2"]);
		expect(request.part(results, "empty")).toEqual([]);
		expect(request.part(results, "b").map((r) => r.results[0]?.tag)).toEqual(["b1"]);
		expect(request.part(results, "c").map((r) => r.results[0]?.tag)).toEqual(["c1"]);
	});

	it.each([3, 5])("refuses an answer of %i results for 4 statements", (n) => {
		const request = composeRequest([["a", "SELECT 1; SELECT 2; SELECT 3; SELECT 4;"]]);
		expect(() =>
			request.part(
				Array.from({ length: n }, () => result("x")),
				"a",
			),
		).toThrow(/cannot be matched/);
	});
});

describe("claimLockParts()", () => {
	it("reads the stale holder before removing it, and the holder after the claim", () => {
		const parts = claimLockParts("run-1", "me", 60);
		expect(parts.stale).toMatch(/^SELECT .* WHERE id = 1 AND expires_at < /);
		expect(parts.claim).toMatch(/^DELETE .*\nINSERT OR IGNORE .*'run-1', 'me'/s);
		expect(parts.holder).toMatch(/^SELECT run_id, owner, .* WHERE id = 1;$/);
	});
});

describe("guardSql()", () => {
	it("fails the request when the ledger already names the migration", () => {
		expect(guardSql("d1_migrations", "0001_it's.sql")).toBe(
			`INSERT INTO workers_pipeline_guard (already_applied) SELECT name FROM "d1_migrations" WHERE name = '0001_it''s.sql';`,
		);
	});
});

describe("recordSql()", () => {
	const entry = {
		name: "0001_a.sql",
		checksum: "abc",
		gitSha: null,
		appliedBy: "me",
		durationMs: 12.4,
		bookmark: "b",
		runId: "r",
		recordedBy: "migrate" as const,
	};
	it.each([
		[true, 2],
		[false, 1],
	])("wrangler: %s writes %i statement(s)", (wrangler, count) => {
		const sql = recordSql("d1_migrations", entry, { wrangler });
		expect(sql.split(";\n").length).toBe(count);
		expect(sql).toContain("'abc', NULL, 'me', 12, 'b', 'r', 'migrate'");
	});
});
