import { countBySeverity } from "./model.ts";
import { allFindings, formatLocation, type RunReport } from "./run-report.ts";
import { formatDuration } from "./text.ts";

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, "<br>");

/** Markdown for files and `$GITHUB_STEP_SUMMARY`. */
export function renderMarkdown(report: RunReport): string {
	const findings = allFindings(report);
	const counts = countBySeverity(findings);
	const out = [
		`## workers-pipeline ${report.command}: ${report.ok ? "✅ passed" : "❌ failed"}`,
		"",
		`${formatDuration(report.durationMs)} · ${counts.errors} error(s) · ${counts.warnings} warning(s)${counts.acknowledged ? ` · ${counts.acknowledged} acknowledged` : ""}`,
		"",
		"| step | status | time | summary |",
		"| --- | --- | --- | --- |",
		...report.steps.map(
			(s) =>
				`| ${s.name} | ${s.skipped ? "skipped" : s.ok ? "ok" : "**failed**"} | ${formatDuration(s.durationMs)} | ${cell(s.summary)} |`,
		),
	];
	if (findings.length) {
		out.push("", "| severity | code | where | message |", "| --- | --- | --- | --- |");
		for (const f of findings) {
			out.push(
				`| ${f.acknowledged ? "acknowledged" : f.severity} | \`${f.code}\` | ${cell(formatLocation(f))} | ${cell(f.message)} |`,
			);
		}
	}
	return `${out.join("\n")}\n`;
}
