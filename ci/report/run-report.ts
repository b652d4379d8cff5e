import type { Finding, StepResult } from "./model.ts";

/** What one CLI command produced: the input of every renderer. */
export interface RunReport {
	command: string;
	ok: boolean;
	durationMs: number;
	steps: StepResult[];
}

export interface ReportFinding extends Finding {
	step: string;
}

export const allFindings = (report: RunReport): ReportFinding[] =>
	report.steps.flatMap((s) => s.findings.map((f) => ({ step: s.name, ...f })));

export const formatLocation = (f: Finding): string =>
	f.file ? `${f.file}${f.line ? `:${f.line}${f.column ? `:${f.column}` : ""}` : ""}` : "";
