import { countBySeverity, type Finding } from "./model.ts";
import { allFindings, formatLocation, migrationRows, type RunReport } from "./run-report.ts";

export interface TextOptions {
	color: boolean;
}

const paint = (on: boolean, code: number, text: string) =>
	on ? `\x1b[${code}m${text}\x1b[0m` : text;

export const formatDuration = (ms: number): string =>
	ms < 1000
		? `${Math.round(ms)} ms`
		: ms < 60_000
			? `${(ms / 1000).toFixed(1)} s`
			: `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

const pad = (text: string, width: number) => text + " ".repeat(Math.max(0, width - text.length));

/** `ack     12 acknowledged finding(s) (D1_DESTRUCTIVE ×9, CATALOG_BAD_NAME ×3): ...`, or undefined. */
export function formatAcknowledgedSummary(findings: readonly Finding[]): string | undefined {
	const counts = new Map<string, number>();
	for (const f of findings) if (f.acknowledged) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
	if (counts.size === 0) return undefined;
	const total = [...counts.values()].reduce((a, b) => a + b, 0);
	const list = [...counts.entries()]
		.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
		.map(([code, n]) => `${code} ×${n}`)
		.join(", ");
	// init writes "REVIEW: …" reasons for the team to replace with why each is safe.
	const unreviewed = findings.filter((f) => f.acknowledged?.startsWith("REVIEW:")).length;
	const review = unreviewed
		? ` ${unreviewed} still carry init's "REVIEW:" reason: replace each with why it is safe to keep.`
		: "";
	return `ack     ${total} acknowledged finding(s) (${list}): accepted in migrations.acknowledge; --json lists each with its reason.${review}`;
}

/** Human output: a status table, then every finding with where and what to do, then one verdict line. */
export function renderText(report: RunReport, { color }: TextOptions): string {
	const lines: string[] = [];
	const nameWidth = Math.max(4, ...report.steps.map((s) => s.name.length));
	lines.push(`${pad("STEP", nameWidth)}  STATUS   TIME      SUMMARY`);
	for (const step of report.steps) {
		const status = step.skipped
			? paint(color, 90, "- skip")
			: step.ok
				? paint(color, 32, "✔ ok  ")
				: paint(color, 31, "✘ fail");
		lines.push(
			`${pad(step.name, nameWidth)}  ${status}   ${pad(formatDuration(step.durationMs), 8)}  ${step.summary}`,
		);
	}
	for (const step of report.steps) {
		const rows = migrationRows(step);
		if (rows.length === 0 || rows.length > 500) continue;
		lines.push("", `${step.name}: migrations`);
		for (const row of rows) {
			const extra = [
				row.durationMs !== undefined ? formatDuration(row.durationMs) : "",
				row.note ?? "",
			]
				.filter(Boolean)
				.join("  ");
			lines.push(
				`  ${pad(row.status, 11)} ${pad(row.name, 44)} ${row.checksum ? row.checksum.slice(0, 12) : "-".padEnd(12)}${extra ? `  ${extra}` : ""}`,
			);
		}
	}
	for (const step of report.steps) {
		// Free-form lines a step wants shown (init: the files it wrote and what to do next).
		const data = step.data as { lines?: unknown } | undefined;
		const extra = Array.isArray(data?.lines) ? (data.lines as string[]) : [];
		if (extra.length) lines.push("", `${step.name}:`, ...extra);
	}
	const findings = allFindings(report);
	// Acknowledged findings are known and accepted: one line per run, each one in --json.
	const open = findings.filter((f) => !f.acknowledged);
	const acknowledgedLine = formatAcknowledgedSummary(findings);
	if (open.length || acknowledgedLine) lines.push("");
	const ordered = [...open].sort((a, b) =>
		a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1,
	);
	for (const f of ordered) {
		const severity =
			f.severity === "error" ? paint(color, 31, "error  ") : paint(color, 33, "warning");
		const where = formatLocation(f);
		const [first, ...rest] = f.message.split("\n");
		lines.push(`${severity} ${f.code}${where ? ` ${where}` : ""}: ${first}`);
		for (const line of rest) lines.push(`        ${line}`);
	}
	if (acknowledgedLine) lines.push(paint(color, 90, acknowledgedLine));
	const counts = countBySeverity(findings);
	const tally = `${counts.errors} error(s), ${counts.warnings} warning(s)${counts.acknowledged ? `, ${counts.acknowledged} acknowledged` : ""}`;
	lines.push("");
	lines.push(
		report.ok
			? paint(
					color,
					32,
					`✔ ${report.command} passed in ${formatDuration(report.durationMs)} (${tally})`,
				)
			: paint(
					color,
					31,
					`✘ ${report.command} failed in ${formatDuration(report.durationMs)} (${tally})`,
				),
	);
	return `${lines.join("\n")}\n`;
}
