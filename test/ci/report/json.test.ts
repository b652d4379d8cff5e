import { describe, expect, it } from "vitest";
import { renderJson } from "../../../ci/report/json.ts";
import { failedReport, passedReport } from "./_sample.ts";

describe("renderJson()", () => {
	it("should name the step of each migration row: one step per migration set", () => {
		const report = failedReport();
		const set = report.steps[0] as (typeof report.steps)[number];
		report.steps = [set, { ...set, name: "migration-test AUTH" }];
		const document = JSON.parse(renderJson(report)) as {
			migrations: { step: string; name: string }[];
		};
		expect(document.migrations.map((r) => `${r.step}: ${r.name}`)).toEqual([
			"migration-test: 0001_init.sql",
			"migration-test: 0002_b.sql",
			"migration-test AUTH: 0001_init.sql",
			"migration-test AUTH: 0002_b.sql",
		]);
	});

	it("should print one document with stable keys: findings with nulls, migrations of every step, timings", () => {
		expect(renderJson(failedReport())).toMatchInlineSnapshot(`
			"{
			  "ok": false,
			  "command": "ci",
			  "findings": [
			    {
			      "step": "migration-test",
			      "code": "CATALOG_DUPLICATE_NUMBER",
			      "severity": "error",
			      "file": "migrations/0002_b.sql",
			      "line": null,
			      "column": null,
			      "message": "two migrations are numbered 0002",
			      "acknowledged": "applied in production before adoption"
			    },
			    {
			      "step": "lint",
			      "code": "D1_DESTRUCTIVE",
			      "severity": "warning",
			      "file": "migrations/0002_b.sql",
			      "line": 3,
			      "column": null,
			      "message": "DROP TABLE loses data"
			    },
			    {
			      "step": "lint",
			      "code": "D1_TRANSACTION",
			      "severity": "error",
			      "file": "migrations/0002_b.sql",
			      "line": 1,
			      "column": 1,
			      "message": "D1 refuses BEGIN\\nremove it"
			    },
			    {
			      "step": "lint",
			      "code": "TS2322",
			      "severity": "error",
			      "file": "src/a.ts",
			      "line": 4,
			      "column": 7,
			      "message": "x | y"
			    }
			  ],
			  "migrations": [
			    {
			      "step": "migration-test",
			      "name": "0001_init.sql",
			      "status": "replayed",
			      "checksum": "9f86d081884c7d65",
			      "durationMs": 3
			    },
			    {
			      "step": "migration-test",
			      "name": "0002_b.sql",
			      "status": "replayed",
			      "checksum": "60303ae22b998861",
			      "note": "acked"
			    }
			  ],
			  "steps": [
			    {
			      "name": "migration-test",
			      "ok": true,
			      "skipped": false,
			      "durationMs": 1234,
			      "summary": "2 migration(s) replayed | snapshot matches",
			      "data": {
			        "migrations": [
			          {
			            "name": "0001_init.sql",
			            "status": "replayed",
			            "checksum": "9f86d081884c7d65",
			            "durationMs": 3
			          },
			          {
			            "name": "0002_b.sql",
			            "status": "replayed",
			            "checksum": "60303ae22b998861",
			            "note": "acked"
			          }
			        ]
			      }
			    },
			    {
			      "name": "build",
			      "ok": true,
			      "skipped": true,
			      "durationMs": 0,
			      "summary": "--no-build",
			      "data": {}
			    },
			    {
			      "name": "lint",
			      "ok": false,
			      "skipped": false,
			      "durationMs": 980,
			      "summary": "1 error(s), 1 warning(s)",
			      "data": {}
			    }
			  ],
			  "timings": {
			    "totalMs": 65400,
			    "steps": {
			      "migration-test": 1234,
			      "build": 0,
			      "lint": 980
			    }
			  }
			}
			"
		`);
	});

	it("should give data {} and skipped false when a step has neither", () => {
		const document = JSON.parse(renderJson(passedReport()));
		expect(document.steps).toEqual([
			{ name: "lint", ok: true, skipped: false, durationMs: 420, summary: "clean", data: {} },
		]);
		expect(document.findings).toEqual([]);
		expect(document.migrations).toEqual([]);
	});

	it("should be one line-terminated JSON document", () => {
		const text = renderJson(failedReport());
		expect(text.endsWith("}\n")).toBe(true);
		expect(() => JSON.parse(text)).not.toThrow();
	});
});
