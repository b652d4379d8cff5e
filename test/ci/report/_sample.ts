// One report of each shape the renderers must handle: a passing step with migration rows, a
// skipped step, a failed step with located, multi-line and acknowledged findings.
import type { RunReport } from "../../../ci/report/run-report.ts";

export const failedReport = (): RunReport => ({
	command: "ci",
	ok: false,
	durationMs: 65_400,
	steps: [
		{
			name: "migration-test",
			ok: true,
			durationMs: 1234,
			summary: "2 migration(s) replayed | snapshot matches",
			findings: [
				{
					code: "CATALOG_DUPLICATE_NUMBER",
					severity: "error",
					file: "migrations/0002_b.sql",
					message: "two migrations are numbered 0002",
					acknowledged: "applied in production before adoption",
				},
			],
			data: {
				migrations: [
					{
						name: "0001_init.sql",
						status: "replayed",
						checksum: "9f86d081884c7d65",
						durationMs: 3,
					},
					{ name: "0002_b.sql", status: "replayed", checksum: "60303ae22b998861", note: "acked" },
				],
			},
		},
		{ name: "build", ok: true, skipped: true, durationMs: 0, summary: "--no-build", findings: [] },
		{
			name: "lint",
			ok: false,
			durationMs: 980,
			summary: "1 error(s), 1 warning(s)",
			findings: [
				{
					code: "D1_DESTRUCTIVE",
					severity: "warning",
					file: "migrations/0002_b.sql",
					line: 3,
					message: "DROP TABLE loses data",
				},
				{
					code: "D1_TRANSACTION",
					severity: "error",
					file: "migrations/0002_b.sql",
					line: 1,
					column: 1,
					message: "D1 refuses BEGIN\nremove it",
				},
				{
					code: "TS2322",
					severity: "error",
					file: "src/a.ts",
					line: 4,
					column: 7,
					message: "x | y",
				},
			],
		},
	],
});

export const passedReport = (): RunReport => ({
	command: "lint",
	ok: true,
	durationMs: 420,
	steps: [{ name: "lint", ok: true, durationMs: 420, summary: "clean", findings: [] }],
});
