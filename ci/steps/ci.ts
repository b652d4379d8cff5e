import { existsSync } from "node:fs";
import path from "node:path";
import type { ProjectConfig } from "../config/schema.ts";
import type { StepResult } from "../report/model.ts";
import { runStepSafely } from "./_run-step.ts";
import type { StepContext } from "./_step.ts";
import { committedWranglerTypes, mainIsModuleId, readPackageJson } from "./_toolchain.ts";
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
	const version = buildVersion(project.root, buildCtx.env);
	const startBuild = () => runStepSafely(buildStep, buildCtx, { project, force: !reuse, version });
	const lint = () =>
		runStepSafely(lintStep, ctx("lint"), {
			project,
			cacheDir: reuse ? cacheDir : undefined,
			format: false,
		});
	// A Worker whose `main` only its build writes (Astro's dist/_worker.js, SvelteKit's
	// .svelte-kit/cloudflare/_worker.js): `wrangler types` writes GlobalProps.mainModule only when
	// that file exists (wrangler's generateGlobalProps), so `wrangler types` and `--check` give
	// another answer after the build. Lint runs where the committed types were generated: after
	// the build when they name the main module (or none are committed), else before it starts.
	const order = build && mainIsBuilt(project) ? lintOrder(project) : "together";
	const building = build && order !== "lint-first" ? startBuild() : undefined;
	const linting = order === "build-first" && building ? building.then(lint, lint) : lint();
	const built = order === "lint-first" ? linting.then(startBuild, startBuild) : building;
	// allSettled, not all: a configuration error in one step must not return (and exit) while
	// the others still run their processes in the background.
	const settled = await Promise.allSettled([
		linting,
		runStepSafely(formatStep, ctx("format"), { project }),
		runStepSafely(architectureStep, ctx("architecture"), { project }),
		runStepSafely(testStep, ctx("test"), { project, cacheDir, reuse }),
		...(built ? [built] : []),
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

type LintOrder = "together" | "build-first" | "lint-first";

/** Build first unless the committed `wrangler types` output was made without the built main module. */
function lintOrder(project: ProjectConfig): LintOrder {
	const [types] = committedWranglerTypes(project.root, readPackageJson(project.root)?.scripts);
	if (types === undefined) return "build-first";
	return /\bmainModule\s*:\s*typeof\s+import\(/.test(types.head) ? "build-first" : "lint-first";
}

/** The wrangler config's `main` is missing before the build (the build writes it). */
function mainIsBuilt(project: ProjectConfig): boolean {
	const main = project.wrangler.main;
	if (main === undefined || mainIsModuleId(project.root, main)) return false;
	return !existsSync(path.resolve(path.dirname(project.wranglerPath), main));
}
