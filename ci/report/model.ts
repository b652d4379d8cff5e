import type { FindingCode } from "./codes.ts";

export type Severity = "error" | "warning";

/** One problem found by a check: a rule code, where, and what to do about it. */
export interface Finding {
	/** Registered in report/codes.ts. */
	code: FindingCode;
	severity: Severity;
	message: string;
	file?: string;
	line?: number;
	column?: number;
	/** Set when the project acknowledged this finding in config; it then no longer fails a check. */
	acknowledged?: string;
}

/** What every step returns; rendering happens once, in report/. `TData` is the step's own data. */
export interface StepResult<TData extends object = Record<string, unknown>> {
	name: string;
	ok: boolean;
	/** Set when the step did not run (e.g. nothing to do, or a dependency failed). */
	skipped?: boolean;
	durationMs: number;
	summary: string;
	findings: Finding[];
	data?: TData;
}

/** Acknowledged findings are reported but never counted. */
export const countBySeverity = (findings: readonly Finding[]) => ({
	errors: findings.filter((f) => f.severity === "error" && !f.acknowledged).length,
	warnings: findings.filter((f) => f.severity === "warning" && !f.acknowledged).length,
	acknowledged: findings.filter((f) => f.acknowledged).length,
});

export const hasErrors = (findings: readonly Finding[]): boolean =>
	findings.some((f) => f.severity === "error" && !f.acknowledged);
