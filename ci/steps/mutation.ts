import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { ProjectConfig } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { localBin, runTool } from "../process.ts";
import type { Finding, StepResult } from "../report/model.ts";
import { defineStep, makeStepResult } from "./_step.ts";
import { appEnv } from "./serve.ts";

/** Stryker's own lookup order (@stryker-mutator/core src/config/config-file-formats.ts). */
export const STRYKER_CONFIGS = ["", "."].flatMap((prefix) =>
	[".conf", ".config"].flatMap((suffix) =>
		["json", "js", "mjs", "cjs"].map((ext) => `${prefix}stryker${suffix}.${ext}`),
	),
);
/** Stryker's default `mutate` (its stryker-core.json schema). */
export const STRYKER_DEFAULT_MUTATE = [
	"{src,lib}/**/!(*.+(s|S)pec|*.+(t|T)est).+(cjs|mjs|js|ts|mts|cts|jsx|tsx|html|vue|svelte)",
	"!{src,lib}/**/__tests__/**/*.+(cjs|mjs|js|ts|mts|cts|jsx|tsx|html|vue|svelte)",
];
/** At most this many surviving mutants become findings; the HTML report has them all. */
export const MAX_SURVIVOR_FINDINGS = 50;

/** The parts of a Stryker config this step reads. */
export interface StrykerConfig {
	mutate?: string[];
	jsonReporter?: { fileName?: string };
	htmlReporter?: { fileName?: string };
	thresholds?: { break?: number | null };
}

export async function readStrykerConfig(file: string): Promise<StrykerConfig> {
	if (file.endsWith(".json")) return JSON.parse(readFileSync(file, "utf8")) as StrykerConfig;
	const loaded = (await import(pathToFileURL(file).href)) as { default?: StrykerConfig };
	return loaded.default ?? (loaded as StrykerConfig);
}

/** Pure: the changed files Stryker should mutate, by the config's `mutate` globs (a `!` excludes). */
export function selectMutateFiles(
	changed: readonly string[],
	patterns: readonly string[],
): string[] {
	// A `file.ts:1:2-3:4` range selects part of a file; the file is what changed.
	const globs = patterns.map((p) => p.replace(/:\d+(:\d+)?-\d+(:\d+)?$/, ""));
	const include = globs.filter((p) => !p.startsWith("!"));
	const exclude = globs.filter((p) => p.startsWith("!")).map((p) => p.slice(1));
	return changed.filter(
		(file) =>
			include.some((g) => path.matchesGlob(file, g)) &&
			!exclude.some((g) => path.matchesGlob(file, g)),
	);
}

export interface MutantRow {
	file: string;
	line: number;
	column: number;
	mutator: string;
	replacement?: string;
	status: "Survived" | "NoCoverage";
}

export interface MutationSummary {
	counts: Record<string, number>;
	/** (killed + timeout) / (killed + timeout + survived + no coverage), as Stryker computes it; null without valid mutants. */
	score: number | null;
	survivors: MutantRow[];
	files: number;
}

interface ReportMutant {
	mutatorName: string;
	replacement?: string;
	status: string;
	location: { start: { line: number; column: number } };
}

/** Pure: the score and the survivors from Stryker's JSON report (mutation-testing-report-schema). */
export function parseMutationReport(text: string): MutationSummary {
	const report = JSON.parse(text) as { files?: Record<string, { mutants?: ReportMutant[] }> };
	const counts: Record<string, number> = {};
	const survivors: MutantRow[] = [];
	const files = Object.entries(report.files ?? {});
	for (const [file, { mutants = [] }] of files) {
		for (const m of mutants) {
			counts[m.status] = (counts[m.status] ?? 0) + 1;
			if (m.status === "Survived" || m.status === "NoCoverage") {
				survivors.push({
					file,
					line: m.location.start.line,
					column: m.location.start.column,
					mutator: m.mutatorName,
					replacement: m.replacement,
					status: m.status,
				});
			}
		}
	}
	const detected = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
	const valid = detected + (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
	const score = valid === 0 ? null : Math.round((detected / valid) * 10_000) / 100;
	survivors.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
	return { counts, score, survivors, files: files.length };
}

/** Pure: a surviving mutant as a finding that says what to do. */
export function formatSurvivor(m: MutantRow): Finding {
	const change = m.replacement !== undefined ? ` (→ \`${m.replacement.split("\n")[0]}\`)` : "";
	return {
		code: "MUTANT_SURVIVED",
		severity: "warning",
		file: m.file,
		line: m.line,
		column: m.column,
		message: `${m.mutator}${change} ${m.status === "NoCoverage" ? "is not covered by any test" : "survived every test"}: add or sharpen a test that fails with this change.`,
	};
}

/** The ref "changed" is measured against: --since, mutation.base, the PR's base, origin/main, main. */
export function resolveBase(
	root: string,
	env: Readonly<Record<string, string | undefined>>,
	since: string | undefined,
	configured: string | undefined,
): { ref: string; sha: string } {
	const candidates = since
		? [since]
		: configured
			? [configured]
			: [env.GITHUB_BASE_REF && `origin/${env.GITHUB_BASE_REF}`, "origin/main", "main"].filter(
					(c): c is string => Boolean(c),
				);
	for (const ref of candidates) {
		try {
			const sha = execFileSync("git", ["merge-base", ref, "HEAD"], {
				cwd: root,
				stdio: ["ignore", "pipe", "ignore"],
			})
				.toString()
				.trim();
			return { ref, sha };
		} catch {
			// Not there (a shallow clone, another default branch): try the next.
		}
	}
	throw new UserError(
		`mutation: no base to compare with (tried ${candidates.join(", ")}); pass --since <ref>, set mutation.base, fetch the base branch (actions/checkout fetch-depth: 0), or run the whole set with --all.`,
		"E_USAGE",
	);
}

/** Files changed since the merge base: committed, staged, unstaged and untracked; deleted ones left out. */
export function readChangedFiles(root: string, mergeBase: string): string[] {
	const git = (args: string[]) =>
		execFileSync("git", args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
			.toString()
			.split("\n")
			.filter(Boolean);
	const changed = [
		...git(["diff", "--name-only", "--diff-filter=ACMR", mergeBase]),
		...git(["ls-files", "--others", "--exclude-standard"]),
	];
	return [...new Set(changed)].sort();
}

export interface JudgeOptions {
	threshold: number | null | undefined;
	/** Where the threshold came from, for the message. */
	thresholdSource: string;
	/** What was mutated, for the summary line. */
	scope: string;
	htmlReport: string;
}

/** Pure: the verdict, summary line and findings of a mutation run (advisory without a threshold). */
export function judgeMutation(summary: MutationSummary, options: JudgeOptions) {
	const { threshold } = options;
	const below = typeof threshold === "number" && (summary.score ?? 100) < threshold;
	const findings: Finding[] = summary.survivors.slice(0, MAX_SURVIVOR_FINDINGS).map(formatSurvivor);
	if (summary.survivors.length > MAX_SURVIVOR_FINDINGS) {
		findings.push({
			code: "MUTANT_SURVIVED",
			severity: "warning",
			message: `${summary.survivors.length - MAX_SURVIVOR_FINDINGS} more surviving mutant(s): see ${options.htmlReport}.`,
		});
	}
	if (below) {
		findings.unshift({
			code: "MUTATION_SCORE_LOW",
			severity: "error",
			message: `mutation score ${summary.score}% is under the threshold of ${threshold}% (${options.thresholdSource}): kill the surviving mutants listed below.`,
		});
	}
	const c = summary.counts;
	const scoreText = summary.score === null ? "no valid mutants" : `score ${summary.score}%`;
	const verdict =
		typeof threshold === "number" ? `; threshold ${threshold}%` : "; advisory (no threshold)";
	return {
		ok: !below,
		summary: `${scoreText} (${c.Killed ?? 0} killed, ${c.Timeout ?? 0} timeout, ${c.Survived ?? 0} survived, ${c.NoCoverage ?? 0} no coverage) over ${options.scope}${verdict}`,
		findings,
		data: {
			score: summary.score,
			counts: summary.counts,
			files: summary.files,
			threshold: threshold ?? null,
			survivors: summary.survivors.length,
		},
	};
}

export interface MutationArgs {
	project: ProjectConfig;
	/** Every mutant of the config, not only those in changed files (the weekly run). */
	all: boolean;
	since?: string;
	reportDir: string;
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

export const STRYKER_SETUP_HINT = [
	"no stryker.config.*: mutation testing skipped. To add it:",
	"  npm install -D @stryker-mutator/core @stryker-mutator/vitest-runner",
	'  stryker.config.json: { "testRunner": "vitest", "mutate": ["src/**/*.ts", "!src/**/*.test.ts"] }',
	"  then set mutation.threshold in workers-pipeline.jsonc to fail under a score, and mutation.criticalPaths for the pull-request workflow.",
].join("\n");

/** `mutation`: Stryker on the mutants in files changed since the base (all with --all), score and survivors. */
export const mutationStep = defineStep<MutationArgs>({
	name: "mutation",
	async run(ctx, { project, all, since, reportDir }) {
		const started = performance.now();
		const done = (fields: Omit<StepResult, "name" | "durationMs">) =>
			makeStepResult("mutation", started, fields);
		const configName = STRYKER_CONFIGS.find((f) => existsSync(path.join(project.root, f)));
		if (!configName) {
			return done({
				ok: true,
				skipped: true,
				summary: "skipped: no stryker.config.* (the warning says what to add)",
				findings: [
					{ code: "MUTATION_NOT_CONFIGURED", severity: "warning", message: STRYKER_SETUP_HINT },
				],
			});
		}
		const stryker = localBin(project.root, "stryker");
		if (!stryker) {
			return done({
				ok: false,
				summary: "@stryker-mutator/core is not installed",
				findings: [
					{
						code: "MUTATION_FAILED",
						severity: "error",
						file: configName,
						message: `${configName} exists but node_modules/.bin/stryker does not: \`npm install -D @stryker-mutator/core\` and the runner it names.`,
					},
				],
			});
		}
		const config = await readStrykerConfig(path.join(project.root, configName));
		let mutate: string[] | undefined;
		let scope = "every mutant of the config";
		if (!all) {
			const base = resolveBase(project.root, ctx.env, since, project.settings.mutation.base);
			mutate = selectMutateFiles(
				readChangedFiles(project.root, base.sha),
				config.mutate ?? STRYKER_DEFAULT_MUTATE,
			);
			const against = `${base.ref} (${base.sha.slice(0, 7)})`;
			scope = `${mutate.length} changed file(s) since ${against}`;
			if (mutate.length === 0) {
				return done({
					ok: true,
					skipped: true,
					summary: `no file under mutation changed since ${against} (--all runs every mutant)`,
					findings: [],
				});
			}
		}
		const jsonFile = path.resolve(
			project.root,
			config.jsonReporter?.fileName ?? "reports/mutation/mutation.json",
		);
		const htmlFile = path.resolve(
			project.root,
			config.htmlReporter?.fileName ?? "reports/mutation/mutation.html",
		);
		rmSync(jsonFile, { force: true });
		ctx.progress(`stryker run (${scope})`);
		const result = await runTool({
			file: stryker,
			args: [
				"run",
				configName,
				// Stryker's incremental file (its incrementalFile, default reports/stryker-incremental.json)
				// lets unchanged mutants keep their last result.
				"--incremental",
				"--reporters",
				"json,html,clear-text",
				"--allowConsoleColors",
				"false",
				...(mutate ? ["--mutate", mutate.join(",")] : []),
			],
			cwd: project.root,
			env: appEnv(ctx, project.root),
			signal: ctx.signal,
			// No tool timeout: a mutation run takes long, and the step's own timeout governs it.
			timeoutMs: 0,
			onOutput: (chunk) => {
				const line = chunk.trim().split("\n").at(-1);
				if (line) ctx.progress(line.slice(0, 160));
			},
		});
		if (
			!existsSync(jsonFile) ||
			statSync(jsonFile).mtimeMs < Date.now() - result.durationMs - 1000
		) {
			return done({
				ok: false,
				summary: `stryker failed (exit ${result.exitCode ?? result.signal}) before reporting`,
				findings: [
					{
						code: "MUTATION_FAILED",
						severity: "error",
						message: `stryker run exited ${result.exitCode ?? result.signal} without a report (does \`npx stryker run --dryRunOnly\` pass?):\n${tail(result.stdout + result.stderr)}`,
					},
				],
			});
		}
		const summary = parseMutationReport(readFileSync(jsonFile, "utf8"));
		const outDir = path.join(reportDir, "mutation");
		mkdirSync(outDir, { recursive: true });
		copyFileSync(jsonFile, path.join(outDir, "mutation.json"));
		if (existsSync(htmlFile)) copyFileSync(htmlFile, path.join(outDir, "mutation.html"));
		const configured = project.settings.mutation.threshold;
		const judged = judgeMutation(summary, {
			threshold: configured ?? config.thresholds?.break ?? undefined,
			thresholdSource:
				configured !== undefined ? "mutation.threshold" : `thresholds.break in ${configName}`,
			scope,
			htmlReport: path.relative(project.root, path.join(outDir, "mutation.html")),
		});
		return done({
			...judged,
			data: { ...judged.data, scope: mutate ?? "all", report: path.join(outDir, "mutation.html") },
		});
	},
});
