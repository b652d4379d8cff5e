export const DEFAULT_WRANGLER_CONFIG = "wrangler.jsonc";
// wrangler's order (workers-utils config/config-helpers.ts, findWranglerConfig).
export const WRANGLER_CONFIG_CANDIDATES = [
	"wrangler.json",
	"wrangler.jsonc",
	"wrangler.toml",
] as const;
export const DEFAULT_PIPELINE_CONFIG = "workers-pipeline.jsonc";
export const DEFAULT_MIGRATIONS_DIR = "migrations";
export const DEFAULT_MIGRATIONS_TABLE = "d1_migrations";
/** The default snapshot is `<migrations_dir>` + this suffix, e.g. `migrations.schema.sql`. */
export const DEFAULT_SNAPSHOT_SUFFIX = ".schema.sql";
export const DEFAULT_REPORT_DIR = ".reports";
/** deploy points WRANGLER_OUTPUT_FILE_PATH at this file (ND-JSON) to read the version id and URL. */
export const WRANGLER_OUTPUT_FILE = "wrangler-output.ndjson";
export const MIGRATION_NAME_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
export const RETIRED_SUFFIX = ".sql.retired";
/** D1 rejects a single statement over 100 KB. */
export const D1_MAX_STATEMENT_BYTES = 100_000;
/** How long migrate waits for a lock held by another run. */
export const DEFAULT_LOCK_TIMEOUT_SECONDS = 60;
/** How long a migration lock lives without a heartbeat before another run may take it over. */
export const DEFAULT_LOCK_TTL_SECONDS = 300;
/** How long deploy waits for the new version to report healthy. */
export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 60;
/** Consecutive good health probes a version needs (a flapping endpoint never gets three in a row). */
export const DEFAULT_HEALTH_PROBES = 3;
/** The good probes must span at least this long. */
export const DEFAULT_HEALTH_WINDOW_SECONDS = 5;
/** Traffic steps of a gradual deploy, in percent. */
export const DEFAULT_GRADUAL_STEPS: readonly number[] = [10, 50, 100];
export type DeployStrategy = "gradual" | "immediate";
export const DEFAULT_DEPLOY_STRATEGY: DeployStrategy = "gradual";
/** The Worker var deploy (and the local serve) sets to the newest migration: the health contract's expected head. */
export const EXPECTED_HEAD_VAR = "WORKERS_PIPELINE_EXPECTED_HEAD";
/** The Worker var `preview` sets to a token of its own, which the health route echoes. */
export const DEPLOYMENT_VAR = "WORKERS_PIPELINE_DEPLOYMENT";
