import { allFindings, migrationRows, type RunReport } from "./run-report.ts";

/** The `--json` document: stable keys, one object, nothing else on stdout. */
export function renderJson(report: RunReport): string {
	// Each row names its step, as findings do: with several D1 bindings, one step per migration set.
	const migrations = report.steps.flatMap((step) =>
		migrationRows(step).map((row) => ({ step: step.name, ...row })),
	);
	const document = {
		ok: report.ok,
		command: report.command,
		findings: allFindings(report).map((f) => ({
			step: f.step,
			code: f.code,
			severity: f.severity,
			file: f.file ?? null,
			line: f.line ?? null,
			column: f.column ?? null,
			message: f.message,
			...(f.acknowledged ? { acknowledged: f.acknowledged } : {}),
		})),
		migrations,
		steps: report.steps.map((s) => ({
			name: s.name,
			ok: s.ok,
			skipped: s.skipped ?? false,
			durationMs: s.durationMs,
			summary: s.summary,
			data: s.data ?? {},
		})),
		timings: {
			totalMs: Math.round(report.durationMs),
			steps: Object.fromEntries(report.steps.map((s) => [s.name, s.durationMs])),
		},
	};
	return `${JSON.stringify(document, null, 2)}\n`;
}
