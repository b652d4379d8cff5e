import { describe, expect, it } from "vitest";
import { countBySeverity, type Finding, hasErrors } from "../../../ci/report/model.ts";
import { allFindings, formatLocation, migrationRows } from "../../../ci/report/run-report.ts";
import { failedReport } from "./_sample.ts";

const finding = (over: Partial<Finding>): Finding => ({
	code: "D1_PRAGMA",
	severity: "error",
	message: "m",
	...over,
});

describe("countBySeverity() / hasErrors()", () => {
	it.each<[string, Finding[], { errors: number; warnings: number; acknowledged: number }, boolean]>(
		[
			["nothing", [], { errors: 0, warnings: 0, acknowledged: 0 }, false],
			[
				"a warning",
				[finding({ severity: "warning" })],
				{ errors: 0, warnings: 1, acknowledged: 0 },
				false,
			],
			["an error", [finding({})], { errors: 1, warnings: 0, acknowledged: 0 }, true],
			[
				"an acknowledged error (never counted, never failing)",
				[finding({ acknowledged: "reviewed" })],
				{ errors: 0, warnings: 0, acknowledged: 1 },
				false,
			],
			[
				"a mix",
				[
					finding({}),
					finding({ severity: "warning" }),
					finding({ severity: "warning", acknowledged: "r" }),
				],
				{ errors: 1, warnings: 1, acknowledged: 1 },
				true,
			],
		],
	)("%s", (_, findings, counts, failing) => {
		expect(countBySeverity(findings)).toEqual(counts);
		expect(hasErrors(findings)).toBe(failing);
	});
});

describe("formatLocation()", () => {
	it.each([
		[{}, ""],
		[{ line: 3 }, ""],
		[{ file: "a.sql" }, "a.sql"],
		[{ file: "a.sql", line: 3 }, "a.sql:3"],
		[{ file: "a.sql", line: 3, column: 7 }, "a.sql:3:7"],
		[{ file: "a.sql", column: 7 }, "a.sql"],
	])("%j → %j", (where, text) => {
		expect(formatLocation(finding(where))).toBe(text);
	});
});

describe("allFindings()", () => {
	it("names each finding's step, in step order", () => {
		expect(allFindings(failedReport()).map((f) => [f.step, f.code])).toEqual([
			["migration-test", "CATALOG_DUPLICATE_NUMBER"],
			["lint", "D1_DESTRUCTIVE"],
			["lint", "D1_TRANSACTION"],
			["lint", "TS2322"],
		]);
	});
});

describe("migrationRows()", () => {
	const step = (data?: object) => ({
		name: "s",
		ok: true,
		durationMs: 0,
		summary: "",
		findings: [],
		data,
	});
	it.each<[string, object | undefined, number]>([
		["no data", undefined, 0],
		["data without migrations", { cached: true }, 0],
		["migrations that are not a list", { migrations: "0001" }, 0],
		["a list", { migrations: [{ name: "0001_a.sql", status: "applied" }] }, 1],
	])("%s → %d row(s)", (_, data, count) => {
		expect(migrationRows(step(data))).toHaveLength(count);
	});
});
