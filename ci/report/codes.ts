// The registry of every code workers-pipeline reports. Registering a code is one line here plus
// its row in docs/ (test/docs/docs.test.ts checks both directions).

/** How a finding counts: "error" fails the check, "warning" does not, "either" depends on the case. */
export type CodeSeverity = "error" | "warning" | "either";

export interface FindingCodeInfo {
	severity: CodeSeverity;
	meaning: string;
}

const f = (severity: CodeSeverity, meaning: string): FindingCodeInfo => ({ severity, meaning });

/** Finding codes: what a check found, in reports, `--json` `findings[].code` and acknowledgements. */
export const FINDING_CODES = {
	// catalog
	CATALOG_BAD_NAME: f("error", "a migration's name breaks the project's naming rule"),
	CATALOG_DUPLICATE_NUMBER: f("error", "two migrations share a number"),
	CATALOG_NUMBER_GAP: f("warning", "the numbering skips a number"),
	CATALOG_DEPENDS_MISSING: f("error", "-- DEPENDS: names a file that is not a migration"),
	CATALOG_DEPENDS_ORDER: f("error", "-- DEPENDS: names this migration or a later one"),
	CATALOG_EMPTY_FILE: f("warning", "a migration file has no statements"),
	CATALOG_EMPTY: f("warning", "no file matches the binding's migrations pattern"),
	CATALOG_INVALID_UTF8: f("error", "a migration file is not UTF-8"),
	CATALOG_UNREADABLE: f("error", "a migration file cannot be read"),
	CONFIG_ENV_UNNAMED: f("warning", "an environment without its own name deploys a separate Worker"),
	CONFIG_UNUSED_ACKNOWLEDGEMENT: f("warning", "an acknowledgement matches no finding any more"),
	// D1 lint
	D1_TRANSACTION: f("error", "an explicit transaction statement, which D1 refuses"),
	D1_PRAGMA: f("error", "a PRAGMA outside D1's allow-list"),
	D1_FOREIGN_KEYS_OFF: f("error", "PRAGMA foreign_keys = OFF, a no-op on D1"),
	D1_RESERVED_NAME: f("error", "a name with D1's reserved _cf_ prefix"),
	D1_ATTACH: f("error", "ATTACH/DETACH; D1 has a single database"),
	D1_TEMP_OBJECT: f("error", "a TEMP table, view or trigger"),
	D1_VIRTUAL_TABLE: f("error", "a virtual table module D1 does not offer"),
	D1_STATEMENT_TOO_LARGE: f("error", "a statement over D1's 100 KB limit"),
	D1_DESTRUCTIVE: f("warning", "a statement that loses data (DROP, DELETE/UPDATE without WHERE)"),
	D1_MISSING_SEMICOLON: f("error", "the last statement has no `;`"),
	D1_LOCAL_BOM_TRIGGER: f(
		"warning",
		"a BOM file starting with CREATE TRIGGER, which wrangler --local splits",
	),
	D1_LOCAL_TRANSACTION_TEXT: f(
		"warning",
		"BEGIN TRANSACTION in a comment or value, which wrangler --local rewrites or refuses",
	),
	D1_FUNCTION: f("error", "a SQLite function outside D1's allow-list"),
	D1_LIMIT: f("error", "over a SQLite limit D1 sets (columns, compound terms, depth)"),
	D1_REQUEST_TOO_LARGE: f("warning", "a migration over the 100 KB D1 prepares as one input"),
	D1_ADD_NOT_NULL: f("warning", "ADD COLUMN NOT NULL without a default fails on populated tables"),
	SQL_UNTERMINATED: f("error", "an unterminated string, identifier, blob or comment"),
	LINT_SUPPRESSION_REASON: f("error", "a workers-pipeline-disable comment without a reason"),
	LINT_SUPPRESSION_UNKNOWN: f("error", "a workers-pipeline-disable comment naming no rule"),
	// replay, snapshot, parity
	REPLAY_FAILED: f("error", "a migration fails on a fresh database"),
	REPLAY_DATA_FAILED: f("error", "a migration fails once earlier tables hold rows"),
	REPLAY_DATA_UNIQUE: f(
		"warning",
		"a migration fails once rows share values in non-unique columns",
	),
	REPLAY_DATA_EMPTY: f("warning", "the data-carrying replay could put no row in some tables"),
	REPLAY_DQS_STRING: f("warning", "a double-quoted name was taken as a string"),
	REPLAY_DROP_CASCADE: f("either", "a DROP TABLE would fire ON DELETE actions of child tables"),
	SNAPSHOT_MISSING: f("error", "no committed schema snapshot"),
	SNAPSHOT_DRIFT: f("error", "the migrations produce another schema than the snapshot"),
	PARITY_MISMATCH: f("error", "wrangler's local apply reached another verdict or schema"),
	// quality steps: e2e, serve, format, architecture, mutation, timeouts
	STEP_TIMEOUT: f("error", "a step ran past its timeout and was stopped"),
	E2E_NOT_CONFIGURED: f("warning", "no playwright.config: e2e skipped"),
	E2E_PAGES_PROJECT: f("warning", "a Pages project: e2e (wrangler dev) skipped"),
	E2E_PLAYWRIGHT_MISSING: f("error", "a Playwright config without @playwright/test installed"),
	E2E_NO_BROWSER: f("error", "no Chromium for Playwright"),
	E2E_MIGRATE_FAILED: f("error", "the local D1 could not be migrated for e2e/serve"),
	E2E_SEED_FAILED: f("error", "the seed file failed on the local D1"),
	E2E_APP_NOT_READY: f("error", "the local app never answered 200"),
	E2E_TEST_FAILED: f("error", "an end-to-end test failed"),
	E2E_NO_TESTS: f("error", "Playwright found no tests"),
	E2E_FAILED: f("error", "Playwright stopped before reporting"),
	SERVE_EXITED: f("error", "the app served by serve stopped on its own"),
	ARCHITECTURE_VIOLATION: f("error", "the architecture check (dependency-cruiser) failed"),
	MUTATION_NOT_CONFIGURED: f("warning", "no stryker.config: mutation skipped"),
	MUTATION_FAILED: f("error", "Stryker stopped before reporting"),
	MUTATION_SCORE_LOW: f("error", "the mutation score is under mutation.threshold"),
	MUTANT_SURVIVED: f("warning", "a mutant every test accepted"),
	// remote migrate
	LEDGER_FILE_MISSING: f("error", "an applied migration's file is gone"),
	LEDGER_CHECKSUM_MISMATCH: f("error", "an applied migration was edited"),
	PLAN_OUT_OF_ORDER: f("either", "a pending migration is numbered below the newest applied one"),
	PREFLIGHT_SCHEMA_DRIFT: f("error", "the remote schema differs from what the applied files make"),
	LOCK_HELD: f("error", "another run holds the migration lock"),
	LOCK_TAKEN_OVER: f("warning", "an expired lock of a dead run was taken over"),
	LOCK_RELEASE_FAILED: f("warning", "the lock could not be released; it expires by itself"),
	REHEARSAL_PARTIAL: f("warning", "the rehearsal copy stopped at its row/byte budget"),
	REHEARSAL_NOT_COPIED: f("warning", "a virtual table the rehearsal copy holds without its rows"),
	REHEARSAL_SLOW: f("warning", "a pending migration took over 20 s on the rehearsal copy"),
	ROW_COUNT_GUARD: f("error", "a migration would delete rows of tables it does not name"),
	REHEARSAL_FAILED: f("error", "a pending migration fails on a copy of the remote data"),
	APPLY_FAILED: f("error", "D1 refused a migration; nothing of it was applied"),
	APPLY_OUTCOME_UNKNOWN: f("error", "no clear answer and the ledger could not settle it"),
	VALIDATE_SCHEMA_MISMATCH: f("error", "after applying, the remote schema differs from the replay"),
	RESTORE_AVAILABLE: f("warning", "how to restore the Time Travel bookmark"),
	LEDGER_ROW_MISSING: f("error", "the audit table records a migration wrangler's ledger lacks"),
	LEDGER_TABLE_SHAPE: f("error", "wrangler's ledger table is not the table wrangler creates"),
	PREFLIGHT_SCHEMA_UNCHECKED: f(
		"error",
		"an applied retired file cannot be read, so no schema check",
	),
	VALIDATE_SCHEMA_UNCHECKED: f("error", "an applied retired file cannot be read, so no validation"),
	LOCK_LOST: f("error", "this run's lease expired and another run took the lock"),
	RESTORE_UNSAFE: f("warning", "a restore would undo another run's writes; not advised"),
	RESTORE_REFUSED: f("error", "--auto-restore refused: a restore would lose others' writes"),
	INTERRUPTED: f("error", "Ctrl-C / SIGTERM stopped the run cleanly"),
	RESTORE_UNCONFIRMED: f("error", "the restore ran but the ledger head is not the old one"),
	MIGRATE_ERROR: f("error", "an unexpected error after the lock was taken"),
	BASELINE_SCHEMA_MISSING: f("error", "baseline refused: the database lacks what the files create"),
	// lint, test, build, ci
	BIOME: f("error", "biome check failed"),
	TYPECHECK: f("error", "tsc failed without a located TSxxxx error"),
	LINT_FAILED: f("error", "the project's own lint (its script or lint.command) failed"),
	FORMAT_CHECK_FAILED: f("error", "the project's own format check failed"),
	TYPEGEN_FAILED: f("error", "type generation before the typecheck failed"),
	TYPEGEN_CHANGED_TREE: f(
		"warning",
		"type generation wrote a tracked file unlike the commit (put back after the typecheck)",
	),
	TESTS_FAILED: f("error", "the test command exited non-zero or timed out"),
	INSTALL_FAILED: f("error", "the frozen install with the project's package manager failed"),
	BUILD_TOOL_MISSING: f("error", "the project lacks its build tool (opennextjs-cloudflare)"),
	BUILD_FAILED: f("error", "the build command failed"),
	BUNDLE_FAILED: f("error", "wrangler could not bundle the build (deploy --dry-run)"),
	BUNDLE_TOO_LARGE: f("error", "the Worker upload is over the gzip budget"),
	BUNDLE_NEAR_BUDGET: f("warning", "the Worker upload is over 80% of the gzip budget"),
	STEP_ERROR: f("error", "a step of `ci` threw unexpectedly; the others still ran"),
	// deploy, rollback
	BUILD_MISSING: f("error", "no build of this commit to deploy"),
	BUILD_ENV_MISMATCH: f("error", "a Vite-plugin build for another environment; build with --env"),
	DEPLOY_FAILED: f("error", "wrangler deploy failed"),
	HEALTH_NO_ROUTE: f("error", "the app answers no health route; add workers-pipeline/health"),
	LIVE_VERSION_UNKNOWN: f("error", "the live version could not be read; nothing was deployed"),
	DEPLOY_INTERRUPTED: f("error", "Ctrl-C / SIGTERM during deploy; the recorded version is back"),
	DEPLOY_SPLIT_LIVE: f("error", "a split (gradual) deployment is live; refused before migrate"),
	PREVIEW_DELETE_FAILED: f("error", "preview --cleanup could not delete the Worker Preview"),
	HEALTH_NO_URL: f("error", "no URL to check the new version's health at"),
	HEALTH_FAILED: f("error", "the new version did not become healthy in time"),
	ROLLED_BACK: f("error", "the deploy failed and the recorded version is live again"),
	ROLLBACK_FAILED: f("error", "the rollback could not be confirmed"),
	ROLLBACK_IMPOSSIBLE: f("error", "there is no earlier version to roll back to"),
	ROLLBACK_NOOP: f("error", "rollback left the live version unchanged"),
} as const satisfies Record<string, FindingCodeInfo>;

export type RegisteredFindingCode = keyof typeof FINDING_CODES;
/** tsc's own diagnostics (`TS2322`), reported with file:line as tsc gives them. */
export type TypeScriptCode = `TS${number}`;
export type FindingCode = RegisteredFindingCode | TypeScriptCode;

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, as shells report a Ctrl-C. */
export const EXIT_INTERRUPTED = 130;
export type ExitCode =
	| typeof EXIT_OK
	| typeof EXIT_FAILED
	| typeof EXIT_USAGE
	| typeof EXIT_INTERRUPTED;

export interface ErrorCodeInfo {
	exit: ExitCode;
	meaning: string;
}

const e = (exit: ExitCode, meaning: string): ErrorCodeInfo => ({ exit, meaning });

/** Error codes: why a command stopped before it could report findings (`--json` `error.code`). */
export const ERROR_CODES = {
	E_USAGE: e(EXIT_USAGE, "bad command-line usage"),
	E_CONFIG_INVALID: e(EXIT_USAGE, "the wrangler or pipeline config is invalid"),
	E_CONFIG_MISSING: e(EXIT_USAGE, "a config file or a required credential is missing"),
	E_MIGRATIONS_DIR: e(EXIT_USAGE, "the migrations directory does not exist"),
	E_D1_AUTH: e(EXIT_USAGE, "the D1 API refused the credentials (HTTP 401/403)"),
	E_D1_NOT_FOUND: e(EXIT_USAGE, "the D1 API does not know the database (HTTP 404)"),
	E_D1_API: e(EXIT_FAILED, "the D1 API failed (5xx, 429, a refused request)"),
	E_NETWORK: e(EXIT_FAILED, "no answer from the Cloudflare API at the URL named"),
	E_WRANGLER: e(EXIT_FAILED, "a wrangler command failed"),
	E_LOCK_HELD: e(EXIT_FAILED, "another run holds the migration lock; nothing was written"),
	E_INTERRUPTED: e(EXIT_INTERRUPTED, "interrupted (Ctrl-C, SIGTERM)"),
	E_INTERNAL: e(EXIT_FAILED, "a bug in workers-pipeline"),
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one place that decides a failed command's exit code. */
export const exitCodeFor = (code: ErrorCode): ExitCode => ERROR_CODES[code].exit;

export const isFindingCode = (code: string): code is FindingCode =>
	Object.hasOwn(FINDING_CODES, code) || /^TS\d+$/.test(code);

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);
