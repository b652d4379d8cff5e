import { existsSync } from "node:fs";
import path from "node:path";
import type { ProjectConfig } from "../config/schema.ts";
import type { StepResult } from "../report/model.ts";
import { runStepSafely } from "./_run-step.ts";
import type { StepContext } from "./_step.ts";
import { buildStep, buildVersion } from "./build.ts";
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
	// The tree as it is now: lint's type generation may rewrite a tracked file while the build runs.
	const buildCtx = ctx("build");
	const building = build
		? runStepSafely(buildStep, buildCtx, {
				project,
				force: !reuse,
				version: buildVersion(project.root, buildCtx.env),
			})
		: undefined;
	const lint = () =>
		runStepSafely(lintStep, ctx("lint"), {
			project,
			cacheDir: reuse ? cacheDir : undefined,
			format: false,
		});
	// A Worker whose `main` only its build writes (Astro's dist/_worker.js): `wrangler types`
	// writes its GlobalProps.mainModule only when that file exists, so lint's type generation
	// waits for the build, and gives what it gives on a laptop after a build.
	const lintAfterBuild = building !== undefined && mainIsBuilt(project);
	// allSettled, not all: a configuration error in one step must not return (and exit) while
	// the others still run their processes in the background.
	const settled = await Promise.allSettled([
		lintAfterBuild ? building.then(lint, lint) : lint(),
		runStepSafely(formatStep, ctx("format"), { project }),
		runStepSafely(architectureStep, ctx("architecture"), { project }),
		runStepSafely(testStep, ctx("test"), { project, cacheDir, reuse }),
		...(building ? [building] : []),
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

/** The wrangler config's `main` is missing before the build (the build writes it). */
function mainIsBuilt(project: ProjectConfig): boolean {
	const main = project.wrangler.main;
	return main !== undefined && !existsSync(path.resolve(path.dirname(project.wranglerPath), main));
}
