import { readdirSync } from "node:fs";
import path from "node:path";
import type { ProjectConfig } from "../config/schema.ts";
import { localBin, runTool } from "../process.ts";
import type { StepResult } from "../report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { readPackageJson, readPackageManager, scriptCommand } from "./_toolchain.ts";
import { FORMAT_SCRIPTS } from "./lint.ts";
import { appEnv } from "./serve.ts";

/** A check command chosen for the project, and how to fix what it finds. */
export interface CheckPlan {
	file: string;
	args: string[];
	/** How the summary names it, e.g. `npm run format:check`. */
	display: string;
	fix: string;
}

export interface ProjectFacts {
	root: string;
	scripts: Record<string, string>;
	/** Names of the files at the project root. */
	files: string[];
	hasPrettierKey: boolean;
	bin: (name: string) => string | undefined;
	/** How the project runs one of its scripts (its package manager); default `npm run`. */
	runScript?: (name: string) => [string, ...string[]];
}

/** The I/O half: what the planners look at. */
export function readProjectFacts(root: string, envPath?: string): ProjectFacts {
	const pm = readPackageManager(root);
	// No package.json: no scripts.
	const pkg: { scripts?: Record<string, string>; prettier?: unknown } = readPackageJson(root) ?? {};
	return {
		root,
		scripts: pkg.scripts ?? {},
		files: readdirSync(root),
		hasPrettierKey: pkg.prettier !== undefined,
		bin: (name) => localBin(root, name),
		runScript: (name) => scriptCommand(pm, name, envPath),
	};
}

const PRETTIER_CONFIG =
	/^(\.prettierrc(\.(json|ya?ml|json5|toml|[cm]?js|ts))?|prettier\.config\.[cm]?[jt]s)$/;
const BIOME_CONFIG = /^biome\.jsonc?$/;
const DEPCRUISE_CONFIG = /^\.dependency-cruiser\.(c?js|mjs|json)$/;

const fromCommand = (command: readonly string[], root: string): CheckPlan => {
	const [file, ...args] = command as [string, ...string[]];
	return {
		file: file.includes("/") ? path.resolve(root, file) : file,
		args,
		display: command.join(" "),
		fix: "fix what it reports",
	};
};

/** Pure: the project's own format check (config, `format:check` script, prettier, biome), if any. */
export function planFormatCheck(
	facts: ProjectFacts,
	configured?: readonly string[],
): CheckPlan | undefined {
	if (configured) return fromCommand(configured, facts.root);
	// The same scripts lint's format check knows, run with the project's package manager.
	const script = FORMAT_SCRIPTS.find((name) => facts.scripts[name]);
	if (script) {
		const run =
			facts.runScript ?? ((name: string) => ["npm", "run", name] as [string, ...string[]]);
		const [file, ...args] = run(script);
		const fix = facts.scripts.format
			? `\`${run("format").join(" ")}\``
			: "your formatter's write mode";
		return { file, args, display: [file, ...args].join(" "), fix };
	}
	const prettier = facts.bin("prettier");
	if (prettier && (facts.hasPrettierKey || facts.files.some((f) => PRETTIER_CONFIG.test(f)))) {
		return {
			file: prettier,
			args: ["--check", "."],
			display: "prettier --check .",
			fix: "`npx prettier --write .`",
		};
	}
	const biome = facts.bin("biome");
	if (biome && facts.files.some((f) => BIOME_CONFIG.test(f))) {
		return {
			file: biome,
			args: ["format", "--colors=off", "."],
			display: "biome format .",
			fix: "`npx biome format --write .`",
		};
	}
	return undefined;
}

/** Pure: the architecture check (config, else dependency-cruiser with its rules file), if any. */
export function planArchitectureCheck(
	facts: ProjectFacts,
	settings: ProjectConfig["settings"]["architecture"],
): CheckPlan | undefined {
	if (settings.command) return fromCommand(settings.command, facts.root);
	const rules = facts.files.find((f) => DEPCRUISE_CONFIG.test(f));
	const depcruise = facts.bin("depcruise");
	if (!rules || !depcruise) return undefined;
	return {
		file: depcruise,
		args: ["--config", rules, "--output-type", "err", ...settings.paths],
		display: `depcruise --config ${rules} ${settings.paths.join(" ")}`,
		fix: `change the imports or the rules in ${rules}`,
	};
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

async function runCheck(
	ctx: StepContext,
	name: "format" | "architecture",
	project: ProjectConfig,
	plan: CheckPlan,
): Promise<StepResult> {
	const started = performance.now();
	ctx.progress(plan.display);
	const result = await runTool({
		file: plan.file,
		args: plan.args,
		cwd: project.root,
		env: appEnv(ctx, project.root),
		signal: ctx.signal,
	});
	const code = name === "format" ? "FORMAT_CHECK_FAILED" : "ARCHITECTURE_VIOLATION";
	return makeStepResult(name, started, {
		ok: !result.failed,
		summary: `${plan.display}: ${result.failed ? `failed (exit ${result.exitCode ?? result.signal})` : "ok"}`,
		findings: result.failed
			? [
					{
						code,
						severity: "error",
						message: `${plan.display} failed (${plan.fix}):\n${tail(result.stdout + result.stderr)}`,
					},
				]
			: [],
		data: { command: plan.display },
	});
}

export interface FormatArgs {
	project: ProjectConfig;
}

/** `format`: the project's own format check, one line of the summary. */
export const formatStep = defineStep<FormatArgs>({
	name: "format",
	async run(ctx, { project }) {
		const plan = planFormatCheck(
			readProjectFacts(project.root, ctx.env.PATH),
			project.settings.format.command,
		);
		if (!plan) {
			return makeStepResult("format", performance.now(), {
				ok: true,
				skipped: true,
				summary:
					"no format check configured (add a `format:check` script, a prettier config, a biome.json, or format.command)",
				findings: [],
			});
		}
		return runCheck(ctx, "format", project, plan);
	},
});

/** `architecture`: dependency rules (e.g. dependency-cruiser) when configured, its own summary line. */
export const architectureStep = defineStep<FormatArgs>({
	name: "architecture",
	async run(ctx, { project }) {
		const plan = planArchitectureCheck(
			readProjectFacts(project.root),
			project.settings.architecture,
		);
		if (!plan) {
			const hint = localBin(project.root, "depcruise")
				? "dependency-cruiser is installed but there is no .dependency-cruiser.js (run `npx depcruise --init`)"
				: "add dependency-cruiser rules (.dependency-cruiser.js) or architecture.command";
			return makeStepResult("architecture", performance.now(), {
				ok: true,
				skipped: true,
				summary: `not configured: ${hint}`,
				findings: [],
			});
		}
		return runCheck(ctx, "architecture", project, plan);
	},
});
