import { existsSync } from "node:fs";
import path from "node:path";
import { resolveEnvironment } from "../config/load.ts";
import type { D1Database, PipelineSettings, ProjectConfig } from "../config/schema.ts";
import { readChangedTrackedFiles, restoreTrackedFiles } from "../git.ts";
import {
	acknowledgeProjectFindings,
	acknowledgesReplay,
	readCheckedCatalog,
} from "../migrations/check.ts";
import { localBin, runTool } from "../process.ts";
import type { TypeScriptCode } from "../report/codes.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import {
	BIOME_CONFIG,
	type CheckPlan,
	configuredFormatCommand,
	planFormatCheck,
	readProjectFacts,
} from "./_checks.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import {
	detectFramework,
	explainScriptFailure,
	type Framework,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
	typegenScript,
} from "./_toolchain.ts";

export interface LintArgs {
	project: ProjectConfig;
	/** tsc keeps its incremental build info here; undefined checks from scratch. */
	cacheDir?: string;
	/** False in `ci`, where the format step runs the format check (so it runs once). */
	format?: boolean;
}

/** Every distinct migrations set the project's environments use (bindings are per environment). */
export function distinctDatabases(project: ProjectConfig): D1Database[] {
	const seen = new Map<string, D1Database>();
	for (const env of [undefined, ...project.environments]) {
		for (const db of resolveEnvironment(project, env).databases) {
			const key = `${db.migrationsPattern}\0${db.migrationsTable}`;
			if (!seen.has(key)) seen.set(key, db);
		}
	}
	return [...seen.values()];
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

type Argv = [string, ...string[]];

/** One tool lint runs: what it is, its command, and the generators that must run first. */
export interface LintTool {
	kind: "lint" | "format" | "typecheck";
	argv: Argv;
	/** How messages name it, when not `argv` (a format check run by its resolved binary). */
	display?: string;
	/** What to do when it fails, when there is more to say than its output. */
	fix?: string;
	/** Where the command came from, for the summary (`lint script`, `lint.command`, `tsc`). */
	source: string;
	/** Type generation first (next typegen, the script that runs `wrangler types`), so a fresh clone is not red. */
	before: Argv[];
}

export interface LintToolInputs {
	settings: PipelineSettings["lint"];
	scripts: Record<string, string>;
	pm: PackageManager;
	framework: Framework;
	/** Local binaries present in node_modules/.bin (biome, tsc, next). */
	bins: ReadonlySet<string>;
	hasTsconfig: boolean;
	/** biome.json(c) at the root: biome runs only where the project configured it. */
	hasBiomeConfig: boolean;
	/** The project's format check, as the format step plans it (planFormatCheck). */
	formatCheck: CheckPlan | undefined;
	envPath: string | undefined;
	/** For tsc's incremental build info. */
	cacheDir?: string;
	/** False in `ci`, where the format step runs the format check (so it runs once). */
	format?: boolean;
}

const TYPECHECK_SCRIPTS = ["typecheck", "type-check", "check-types", "types:check", "tsc"];

/** Which lint, format check and typecheck to run for this project, and why each other is skipped. Pure. */
export function planLintTools(inputs: LintToolInputs): { tools: LintTool[]; skipped: string[] } {
	const { settings, scripts, pm, bins, envPath } = inputs;
	const tools: LintTool[] = [];
	const skipped: string[] = [];
	const script = (name: string): LintTool["argv"] => scriptCommand(pm, name, envPath);

	if (settings.command) {
		tools.push({
			kind: "lint",
			argv: settings.command as Argv,
			source: "lint.command",
			before: [],
		});
	} else if (scripts.lint) {
		tools.push({ kind: "lint", argv: script("lint"), source: "lint script", before: [] });
	} else if (settings.biome && bins.has("biome") && inputs.hasBiomeConfig) {
		tools.push({
			kind: "lint",
			argv: ["biome", "check", "--colors=off", "."],
			source: "biome",
			before: [],
		});
	} else {
		skipped.push("lint skipped (no lint script, no lint.command, no biome with biome.json)");
	}

	const format = inputs.formatCheck;
	if (inputs.format === false) {
		skipped.push("format check in the format step");
	} else if (format && !(format.source === "biome" && tools[0]?.source === "biome")) {
		tools.push({
			kind: "format",
			argv: [format.file, ...format.args],
			display: format.display,
			fix: format.fix,
			source: format.source,
			before: [],
		});
	} else {
		skipped.push(
			tools[0]?.source === "biome"
				? "format check in biome check"
				: "format check skipped (no format:check script, no prettier or biome config)",
		);
	}

	if (!settings.typecheck) {
		skipped.push("typecheck off (lint.typecheck: false)");
		return { tools, skipped };
	}
	const before: Argv[] = [];
	if (inputs.framework === "next" && bins.has("next")) before.push(["next", "typegen"]);
	// The script that only writes the Env types (cf-typegen, SvelteKit's gen), never a build.
	const typegen = typegenScript(scripts, { onlyTypes: true });
	if (typegen) before.push(script(typegen));
	// SvelteKit's and Astro's templates call theirs `check` (svelte-kit sync && svelte-check, astro
	// check); a `check` that is something else (biome check) is not a typecheck.
	const typecheckScript =
		TYPECHECK_SCRIPTS.find((name) => scripts[name]) ??
		(/\b(svelte-check|astro check|vue-tsc|tsc)\b/.test(scripts.check ?? "") ? "check" : undefined);
	if (settings.typecheckCommand) {
		tools.push({
			kind: "typecheck",
			argv: settings.typecheckCommand as Argv,
			source: "lint.typecheckCommand",
			before,
		});
	} else if (typecheckScript) {
		tools.push({
			kind: "typecheck",
			argv: script(typecheckScript),
			source: `${typecheckScript} script`,
			before,
		});
	} else if (bins.has("tsc") && inputs.hasTsconfig) {
		const incremental = inputs.cacheDir
			? ["--incremental", "--tsBuildInfoFile", path.join(inputs.cacheDir, "tsconfig.tsbuildinfo")]
			: [];
		tools.push({
			kind: "typecheck",
			argv: ["tsc", "--noEmit", "-p", "tsconfig.json", "--pretty", "false", ...incremental],
			source: "tsc",
			before,
		});
	} else {
		skipped.push("typecheck skipped (no typecheck script, no tsc with tsconfig.json)");
	}
	return { tools, skipped };
}

/** tsc's `file(line,col): error TSnnnn: message` lines as findings; one TYPECHECK finding otherwise. */
export function parseTypecheckOutput(output: string): Finding[] {
	const findings: Finding[] = [];
	for (const line of output.split("\n")) {
		const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line.trim());
		if (m) {
			findings.push({
				code: m[4] as TypeScriptCode,
				severity: "error",
				file: m[1],
				line: Number(m[2]),
				column: Number(m[3]),
				message: m[5] as string,
			});
		}
	}
	return findings.length
		? findings
		: [{ code: "TYPECHECK", severity: "error", message: tail(output) }];
}

const LINT_CODES = { lint: "LINT_FAILED", format: "FORMAT_CHECK_FAILED" } as const;

/**
 * Tracked files the type generation rewrote (Next 16's `next typegen` adds its type paths to
 * tsconfig.json): a tree changed so is dirty, and deploy refuses builds of a dirty tree.
 */
function findTypegenChanges(root: string, before: Set<string>): string[] {
	const after = readChangedTrackedFiles(root);
	return [...(after ?? [])].filter((file) => !before.has(file)).sort();
}

/**
 * Puts back the tracked files the type generation rewrote (they were as committed before it
 * ran), once the typecheck has used them: lint leaves the tree as it found it, so a build is
 * never stamped `-dirty` by it. `wrangler types`, for one, writes another file when the Worker's
 * `main` exists than when it does not (its GlobalProps.mainModule).
 */
function restoreTypegenChanges(
	root: string,
	changed: readonly string[],
	ran: readonly Argv[],
): Finding[] {
	if (!changed.length) return [];
	const restored = restoreTrackedFiles(root, changed);
	const files = changed.join(", ");
	const commands = ran.map((a) => a.join(" ")).join(", ");
	return [
		{
			code: "TYPEGEN_CHANGED_TREE",
			severity: "warning",
			message: restored
				? `${commands} wrote ${files} (tracked) differently from the commit: the typecheck used what it wrote, then the committed file was put back, so the tree stays clean. If the generated one is right (after a config or dependency change), run ${commands} and commit it.`
				: `${commands} rewrote ${files} (tracked) and it could not be put back: commit the change, or every build of this tree is stamped <sha>-dirty and deploy refuses it.`,
		},
	];
}

async function runLintTool(
	ctx: StepContext,
	{ root, pm }: { root: string; pm: PackageManager },
	tool: LintTool,
): Promise<{ part: string; findings: Finding[] }> {
	const shown = tool.display ?? tool.argv.join(" ");
	const label = `${tool.kind} (${shown})`;
	const changedBefore = tool.before.length ? readChangedTrackedFiles(root) : null;
	const warnings: Finding[] = [];
	for (const argv of tool.before) {
		ctx.progress(argv.join(" "));
		const [file, ...args] = argv;
		const result = await runTool({ file, args, cwd: root, env: ctx.env, signal: ctx.signal });
		if (result.failed) {
			if (changedBefore) restoreTrackedFiles(root, findTypegenChanges(root, changedBefore));
			return {
				part: `${tool.kind} failed in ${argv.join(" ")}`,
				findings: [
					{
						code: "TYPEGEN_FAILED",
						severity: "error",
						message: `${argv.join(" ")} (type generation before the typecheck) exited with ${result.exitCode ?? result.signal}:\n${tail(result.stdout + result.stderr)}`,
					},
				],
			};
		}
	}
	const typegenChanged = changedBefore ? findTypegenChanges(root, changedBefore) : [];
	ctx.progress(tool.argv.join(" "));
	const [file, ...args] = tool.argv;
	const result = await runTool({ file, args, cwd: root, env: ctx.env, signal: ctx.signal });
	warnings.push(...restoreTypegenChanges(root, typegenChanged, tool.before));
	const generated = tool.before.length
		? ` after ${tool.before.map((a) => a.join(" ")).join(", ")}`
		: "";
	if (!result.failed) return { part: `${label}${generated} ok`, findings: warnings };
	const output = result.stdout + result.stderr;
	if (tool.kind === "typecheck")
		return { part: `${label} failed`, findings: [...warnings, ...parseTypecheckOutput(output)] };
	const why = explainScriptFailure({ argv: tool.argv, output, pm });
	const fix = why
		? ` (${why})`
		: tool.fix
			? ` (${tool.fix})`
			: tool.source === "biome"
				? " (run `npx biome check --write .` to fix what it can)"
				: "";
	return {
		part: `${label} failed`,
		findings: [
			{
				code: tool.source === "biome" ? "BIOME" : LINT_CODES[tool.kind],
				severity: "error",
				message: `${shown} exited with ${result.exitCode ?? result.signal}${fix}:\n${tail(output)}`,
			},
		],
	};
}

/** What a lint report carries: how much D1 lint saw, and which tools ran. */
export type LintData = {
	migrations: number;
	sets: number;
	tools: { kind: LintTool["kind"]; source: string }[];
};

export const lintStep = defineStep<LintArgs, LintData>({
	name: "lint",
	async run(ctx, { project, cacheDir, format }) {
		const started = performance.now();
		const findings: Finding[] = [];
		const parts: string[] = [];
		const databases = distinctDatabases(project);
		let files = 0;
		for (const database of databases) {
			const checked = readCheckedCatalog(project, database);
			files += checked.catalog.migrations.length;
			findings.push(...checked.raw);
		}
		parts.push(`D1 lint: ${files} migration(s) in ${databases.length} set(s)`);

		const pkg = readPackageJson(project.root);
		const bins = new Set(["biome", "tsc", "next"].filter((name) => localBin(project.root, name)));
		const pm = readPackageManager(project.root);
		const facts = readProjectFacts(project.root, ctx.env.PATH);
		const plan = planLintTools({
			settings: project.settings.lint,
			scripts: pkg?.scripts ?? {},
			pm,
			framework: detectFramework(pkg),
			bins,
			hasTsconfig: existsSync(path.join(project.root, "tsconfig.json")),
			hasBiomeConfig: facts.files.some((f) => BIOME_CONFIG.test(f)),
			formatCheck:
				format === false
					? undefined
					: planFormatCheck(facts, configuredFormatCommand(project.settings)),
			envPath: ctx.env.PATH,
			cacheDir,
			format,
		});
		const results = await Promise.all(
			plan.tools.map((tool) => runLintTool(ctx, { root: project.root, pm }, tool)),
		);
		for (const result of results) {
			parts.push(result.part);
			findings.push(...result.findings);
		}
		parts.push(...plan.skipped);
		// Once over every set and tool, so an acknowledgement used by one set is not "unused" in another.
		const acknowledged = acknowledgeProjectFindings(project, findings, {
			dirs: databases.map((d) => d.migrationsDir),
			reportsUnused: (ack) => !acknowledgesReplay(ack),
		});
		const reported = [...acknowledged.findings, ...acknowledged.unused];
		return makeStepResult("lint", started, {
			ok: !hasErrors(reported),
			summary: parts.join("; "),
			findings: reported,
			data: {
				migrations: files,
				sets: databases.length,
				tools: plan.tools.map(({ kind, source }) => ({ kind, source })),
			},
		});
	},
});
