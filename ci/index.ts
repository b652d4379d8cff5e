// The public surface of workers-pipeline: everything other code (the bin, tests of other
// projects, future packages) may import. Modules not re-exported here are internal.
export { GLOBAL_FLAGS, parseFlags } from "./cli/args.ts";
export { COMMANDS, findCommand } from "./cli/commands.ts";
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, runCli, runMain } from "./cli/main.ts";
export { D1Client, isAmbiguous, type SqlExecutor } from "./cloudflare/d1-client.ts";
export { runWrangler } from "./cloudflare/wrangler.ts";
export { loadProjectConfig, resolveEnvironment, selectDatabase } from "./config/load.ts";
export {
	NAMING_PRESETS,
	type PipelineSettings,
	type ProjectConfig,
} from "./config/schema.ts";
export { CiError, D1ApiError, NetworkError, UserError } from "./errors.ts";
export { describeOwner, readGitSha, readGitVersion } from "./git.ts";
export {
	acknowledgeFindings,
	checksumOf,
	detectNaming,
	parseCatalog,
	readCatalog,
} from "./migrations/catalog.ts";
export { LINT_RULES, lintMigration } from "./migrations/lint.ts";
export { type MigrationPlan, planMigrations } from "./migrations/plan.ts";
export { replayMigrations } from "./migrations/replay.ts";
export { diffSchema, makeSchema, renderSnapshot } from "./migrations/schema.ts";
export {
	ERROR_CODES,
	type ErrorCode,
	EXIT_INTERRUPTED,
	exitCodeFor,
	FINDING_CODES,
	type FindingCode,
} from "./report/codes.ts";
export type { Finding, StepResult } from "./report/model.ts";
export {
	detectPackageManager,
	installCommand,
	readPackageManager,
	scriptCommand,
} from "./steps/_toolchain.ts";
export { buildStep } from "./steps/build.ts";
export { runCi } from "./steps/ci.ts";
export {
	type DeployData,
	type DeployStrategy,
	deployStep,
	rollbackStep,
} from "./steps/deploy.ts";
export { e2eStep } from "./steps/e2e.ts";
export { architectureStep, formatStep } from "./steps/format.ts";
export { initStep } from "./steps/init.ts";
export { lintStep } from "./steps/lint.ts";
export { migrateStep } from "./steps/migrate.ts";
export { migrationTestStep } from "./steps/migration-test.ts";
export { mutationStep } from "./steps/mutation.ts";
export { type PreviewData, previewStep } from "./steps/preview.ts";
export { baselineStep, planStep, restoreStep } from "./steps/remote-admin.ts";
export { serveStep } from "./steps/serve.ts";
export { testStep } from "./steps/test.ts";
