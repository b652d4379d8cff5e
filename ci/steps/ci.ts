import type { ProjectConfig } from "../config/schema.ts";
import { CiError } from "../errors.ts";
import { EXIT_USAGE, exitCodeFor } from "../report/codes.ts";
import type { StepResult } from "../report/model.ts";
import type { Step, StepContext } from "./_step.ts";
import { buildStep } from "./build.ts";
import { lintStep } from "./lint.ts";
import { migrationTestStep } from "./migration-test.ts";
import { testStep } from "./test.ts";

export interface CiArgs {
	project: ProjectConfig;
	parity: boolean;
	build: boolean;
	/** Where unchanged results are reused from; undefined redoes everything. */
	cacheDir: string;
	/** False (--no-cache) redoes every step; fresh results are still kept for the next run. */
	reuse: boolean;
}

/** Runs one step and turns an unexpected throw into a failed result, so one step never hides the others. */
export async function runStepSafely<A>(
	step: Step<A>,
	ctx: StepContext,
	args: A,
): Promise<StepResult> {
	const started = performance.now();
	try {
		return await step.run(ctx, args);
	} catch (error) {
		// Bad usage or configuration concerns the whole run (exit 2), not one step.
		if (error instanceof CiError && exitCodeFor(error.code) === EXIT_USAGE) throw error;
		return {
			name: step.name,
			ok: false,
			durationMs: Math.round(performance.now() - started),
			summary: `error: ${(error as Error).message.split("\n")[0]}`,
			findings: [{ code: "STEP_ERROR", severity: "error", message: (error as Error).message }],
		};
	}
}

/** lint (D1 lint, biome, tsc), tests, build and the migration test are independent: run them concurrently. */
export async function runCi(
	ctx: (step: string) => StepContext,
	{ project, parity, build, cacheDir, reuse }: CiArgs,
): Promise<StepResult[]> {
	// allSettled, not all: a configuration error in one step must not return (and exit) while
	// the others still run their processes in the background.
	const settled = await Promise.allSettled([
		runStepSafely(lintStep, ctx("lint"), { project, cacheDir: reuse ? cacheDir : undefined }),
		runStepSafely(testStep, ctx("test"), { project, cacheDir, reuse }),
		...(build ? [runStepSafely(buildStep, ctx("build"), { project, force: !reuse })] : []),
		runStepSafely(migrationTestStep, ctx("migration-test"), {
			project,
			parity,
			includeLint: false,
			cacheDir,
			reuse,
		}),
	]);
	const failed = settled.find((r) => r.status === "rejected");
	if (failed) throw failed.reason;
	return settled.map((r) => (r as PromiseFulfilledResult<StepResult>).value);
}
