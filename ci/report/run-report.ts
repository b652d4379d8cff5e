import type { Finding, StepResult } from "./model.ts";

/** What one CLI command produced: the input of every renderer. */
export interface RunReport {
	command: string;
	ok: boolean;
	durationMs: number;
	/** Any step's result: each step types its own `data`. */
	steps: StepResult<object>[];
}

export interface ReportFinding extends Finding {
	step: string;
}

export const allFindings = (report: RunReport): ReportFinding[] =>
	report.steps.flatMap((s) => s.findings.map((f) => ({ step: s.name, ...f })));

/** A migration row as migrate, plan and migration-test put them in `data.migrations`. */
export interface MigrationRow {
	name: string;
	status: string;
	checksum?: string | null;
	durationMs?: number;
	note?: string;
}

/** The `data.migrations` rows of a step, when it has any. */
export const migrationRows = (step: StepResult<object>): MigrationRow[] => {
	const rows = (step.data as { migrations?: unknown } | undefined)?.migrations;
	return Array.isArray(rows) ? (rows as MigrationRow[]) : [];
};

export const formatLocation = (f: Finding): string =>
	f.file ? `${f.file}${f.line ? `:${f.line}${f.column ? `:${f.column}` : ""}` : ""}` : "";
