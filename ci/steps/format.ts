import type { ProjectConfig } from "../config/schema.ts";
import { localBin, runTool } from "../process.ts";
import type { StepResult } from "../report/model.ts";
import {
	type CheckPlan,
	configuredFormatCommand,
	planArchitectureCheck,
	planFormatCheck,
	readProjectFacts,
} from "./_checks.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { appEnv } from "./serve.ts";

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
			configuredFormatCommand(project.settings),
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
