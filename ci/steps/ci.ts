import type { ProjectConfig } from "../config/schema.ts";
import type { StepResult } from "../report/model.ts";
import { runStepSafely } from "./_run-step.ts";
import type { StepContext } from "./_step.ts";
import { buildStep } from "./build.ts";
import { architectureStep, formatStep } from "./format.ts";
import { lintStep } from "./lint.ts";
import { migrationTestStep, planMigrationTests } from "./migration-test.ts";

export {
	cacheStatus,
	DEFAULT_STEP_TIMEOUTS_SECONDS,
	makeTimedOutResult,
	runStepSafely,
	stepTimeoutSeconds,
} from "./_run-step.ts";
export { planMigrationTests };

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

/** lint (D1 lint, biome, tsc), format, architecture, tests, build and the migration test are independent: run them concurrently. */
export async function runCi(
	ctx: (step: string) => StepContext,
	{ project, parity, build, cacheDir, reuse }: CiArgs,
): Promise<StepResult[]> {
	// allSettled, not all: a configuration error in one step must not return (and exit) while
	// the others still run their processes in the background.
	const settled = await Promise.allSettled([
		runStepSafely(lintStep, ctx("lint"), {
			project,
			cacheDir: reuse ? cacheDir : undefined,
			format: false,
		}),
		runStepSafely(formatStep, ctx("format"), { project }),
		runStepSafely(architectureStep, ctx("architecture"), { project }),
		runStepSafely(testStep, ctx("test"), { project, cacheDir, reuse }),
		...(build ? [runStepSafely(buildStep, ctx("build"), { project, force: !reuse })] : []),
		...planMigrationTests(project).map(({ name, env, binding }) =>
			runStepSafely(migrationTestStep, ctx("migration-test"), {
				project,
				parity,
				includeLint: false,
				cacheDir,
				reuse,
				env,
				binding,
			}).then((result) => ({ ...result, name })),
		),
	]);
	const failed = settled.find((r) => r.status === "rejected");
	if (failed) throw failed.reason;
	return settled.map((r) => (r as PromiseFulfilledResult<StepResult>).value);
}
