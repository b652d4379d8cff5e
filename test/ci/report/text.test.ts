import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { formatAcknowledgedSummary, formatDuration, renderText } from "../../../ci/report/text.ts";
import { failedReport, passedReport } from "./_sample.ts";

describe("formatDuration()", () => {
	it.each([
		[0, "0 ms"],
		[999.4, "999 ms"],
		[1000, "1.0 s"],
		[59_949, "59.9 s"],
		[60_000, "1 min 0 s"],
		[125_600, "2 min 6 s"],
	])("%d ms → %s", (ms, text) => {
		expect(formatDuration(ms)).toBe(text);
	});
});

describe("formatAcknowledgedSummary()", () => {
	it("counts the acknowledgements that still carry init's REVIEW: reason", () => {
		const ack = (acknowledged: string) =>
			({ code: "D1_DESTRUCTIVE", severity: "warning", message: "m", acknowledged }) as const;
		const line = formatAcknowledgedSummary([
			ack("REVIEW: existing history at adoption (workers-pipeline init, 2026-12-02); replace this"),
			ack("the rebuild copies every row; checked on a production copy"),
		]);
		expect(line).toMatch(/^ack {5}2 acknowledged finding\(s\) \(D1_DESTRUCTIVE ×2\)/);
		expect(line).toMatch(
			/ 1 still carry init's "REVIEW:" reason: replace each with why it is safe to keep\.$/,
		);
		expect(formatAcknowledgedSummary([ack("reviewed: safe")])).not.toMatch(/REVIEW/);
	});
});

describe("renderText()", () => {
	it("should list steps, migrations, findings (errors first, acknowledged last) and the verdict", () => {
		expect(renderText(failedReport(), { color: false })).toMatchInlineSnapshot(`
			"STEP            STATUS   TIME      SUMMARY
			migration-test  ✔ ok     1.2 s     2 migration(s) replayed | snapshot matches
			build           - skip   0 ms      --no-build
			lint            ✘ fail   980 ms    1 error(s), 1 warning(s)

			migration-test: migrations
			  replayed    0001_init.sql                                9f86d081884c  3 ms
			  replayed    0002_b.sql                                   60303ae22b99  acked

			error   D1_TRANSACTION migrations/0002_b.sql:1:1: D1 refuses BEGIN
			        remove it
			error   TS2322 src/a.ts:4:7: x | y
			warning D1_DESTRUCTIVE migrations/0002_b.sql:3: DROP TABLE loses data
			ack     1 acknowledged finding(s) (CATALOG_DUPLICATE_NUMBER ×1): accepted in migrations.acknowledge; --json lists each with its reason.

			✘ ci failed in 1 min 5 s (2 error(s), 1 warning(s), 1 acknowledged)
			"
		`);
	});

	it("should end a passing run with one ✔ line", () => {
		expect(renderText(passedReport(), { color: false })).toMatchInlineSnapshot(`
			"STEP  STATUS   TIME      SUMMARY
			lint  ✔ ok     420 ms    clean

			✔ lint passed in 420 ms (0 error(s), 0 warning(s))
			"
		`);
	});

	it("should colour only when asked", () => {
		const plain = renderText(failedReport(), { color: false });
		const coloured = renderText(failedReport(), { color: true });
		expect(plain).not.toContain("\x1b[");
		expect(coloured).toContain("\x1b[31m✘ fail\x1b[0m");
		expect(coloured).toContain("\x1b[33mwarning\x1b[0m");
		expect(stripVTControlCharacters(coloured)).toBe(plain);
	});

	it("should leave out the migration table of a step with more than 500 rows", () => {
		const report = passedReport();
		const rows = Array.from({ length: 501 }, (_, i) => ({ name: `${i}.sql`, status: "replayed" }));
		report.steps[0] = {
			...(report.steps[0] as (typeof report.steps)[0]),
			data: { migrations: rows },
		};
		expect(renderText(report, { color: false })).not.toContain("lint: migrations");
		report.steps[0] = {
			...(report.steps[0] as (typeof report.steps)[0]),
			data: { migrations: rows.slice(1) },
		};
		expect(renderText(report, { color: false })).toContain("lint: migrations");
	});
});
