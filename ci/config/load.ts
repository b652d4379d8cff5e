import { type Dirent, existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { ParseError } from "jsonc-parser";
import type { z } from "zod";
import {
	DEFAULT_MIGRATIONS_DIR,
	DEFAULT_MIGRATIONS_TABLE,
	DEFAULT_PIPELINE_CONFIG,
	DEFAULT_SNAPSHOT_SUFFIX,
	WRANGLER_CONFIG_CANDIDATES,
} from "../constants.ts";
import { UserError } from "../errors.ts";
import type { Finding } from "../report/model.ts";
import { settingsDirKey } from "./naming.ts";
import { normalizeRelative } from "./paths.ts";
import { makeDefaultSettings, parsePlainSettings, parsePlainWranglerConfig } from "./plain.ts";
import {
	configSchemas,
	type D1Database,
	type PipelineSettings,
	type ProjectConfig,
	type ResolvedEnvironment,
	type WranglerConfig,
	type WranglerD1Binding,
} from "./schema.ts";

export interface LoadProjectConfigOptions {
	cwd: string;
	/** Wrangler config file, relative to cwd; default: found as wrangler finds it (below). */
	config?: string;
}

/**
 * wrangler's search (workers-utils config/config-helpers.ts, findWranglerConfig): the nearest
 * wrangler.json up the tree from `from`, else the nearest wrangler.jsonc, else wrangler.toml.
 */
export function findWranglerConfig(from: string): string | undefined {
	for (const name of WRANGLER_CONFIG_CANDIDATES) {
		for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
			const candidate = path.join(dir, name);
			if (existsSync(candidate)) return candidate;
			if (path.dirname(dir) === dir) break;
		}
	}
	return undefined;
}

/** Wrangler configs up to three directories below `root` (not in node_modules or dot dirs), at most five. */
export function findWranglerConfigsBelow(root: string): string[] {
	const found: string[] = [];
	const visit = (rel: string, depth: number) => {
		let entries: Dirent[];
		try {
			entries = readdirSync(path.join(root, rel), { withFileTypes: true });
		} catch {
			return;
		}
		for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
			if (found.length >= 5) return;
			const child = rel ? `${rel}/${entry.name}` : entry.name;
			if (
				entry.isFile() &&
				depth > 0 &&
				(WRANGLER_CONFIG_CANDIDATES as readonly string[]).includes(entry.name)
			)
				found.push(child);
			else if (
				entry.isDirectory() &&
				depth < 3 &&
				entry.name !== "node_modules" &&
				!entry.name.startsWith(".")
			)
				visit(child, depth + 1);
		}
	};
	visit("", 0);
	return found;
}

/**
 * Reads and validates the wrangler config (wrangler.json, wrangler.jsonc or wrangler.toml) and
 * workers-pipeline.jsonc; every failure is a UserError (exit 2).
 */
export function loadProjectConfig({ cwd, config }: LoadProjectConfigOptions): ProjectConfig {
	const root = path.resolve(cwd);
	if (!existsSync(root)) {
		throw new UserError(`Project directory ${root} does not exist.`, "E_CONFIG_MISSING");
	}
	const wranglerPath = config ? path.resolve(root, config) : findWranglerConfig(root);
	if (!wranglerPath || !existsSync(wranglerPath)) {
		const looked = config
			? path.resolve(root, config)
			: `${WRANGLER_CONFIG_CANDIDATES.join(", ")} in ${root} or a parent directory`;
		// A monorepo's root: name the apps below it, so the user knows which --cwd to pass.
		const below = config ? [] : findWranglerConfigsBelow(root);
		const apps = below.length
			? ` Apps below it: ${below.join(", ")}; pass --cwd ${below[0]?.replace(/\/[^/]+$/, "")}.`
			: "";
		throw new UserError(
			`No wrangler config found (looked for ${looked}).${apps} Run from the project directory, or pass --cwd <dir> / --config <file>.`,
			"E_CONFIG_MISSING",
		);
	}
	const wrangler: WranglerConfig = parseConfigFile(wranglerPath, {
		plain: parsePlainWranglerConfig,
		schema: () => configSchemas().wranglerConfigSchema,
	});
	const settingsFile = path.join(root, DEFAULT_PIPELINE_CONFIG);
	const settingsPath = existsSync(settingsFile) ? settingsFile : undefined;
	const settings: PipelineSettings = settingsPath
		? parseConfigFile(settingsPath, {
				plain: parsePlainSettings,
				schema: () => configSchemas().pipelineSettingsSchema,
			})
		: makeDefaultSettings();
	for (const [index, binding] of (wrangler.d1_databases ?? []).entries()) {
		checkMigrationsPattern(wranglerPath, `$.d1_databases[${index}]`, binding);
	}
	for (const [envName, env] of Object.entries(wrangler.env ?? {})) {
		for (const [index, binding] of (env.d1_databases ?? []).entries()) {
			checkMigrationsPattern(wranglerPath, `$.env.${envName}.d1_databases[${index}]`, binding);
		}
	}
	return {
		root,
		wranglerPath,
		settingsPath,
		wrangler,
		settings,
		environments: Object.keys(wrangler.env ?? {}),
	};
}

type JsoncParse = typeof import("jsonc-parser").parse;
let jsoncParse: JsoncParse | undefined;
/**
 * jsonc-parser's own parse (its entry point re-exports this very function), without the
 * formatter and editor modules that entry loads on every start-up; the entry point if a later
 * version moves the file.
 */
function loadJsoncParse(): JsoncParse {
	if (jsoncParse) return jsoncParse;
	const require = createRequire(import.meta.url);
	let parse: unknown;
	try {
		parse = (require("jsonc-parser/lib/umd/impl/parser.js") as { parse?: unknown }).parse;
	} catch {
		// Moved in another version: the entry point below.
	}
	jsoncParse =
		typeof parse === "function"
			? (parse as JsoncParse)
			: (require("jsonc-parser") as typeof import("jsonc-parser")).parse;
	return jsoncParse;
}

/** The file's data: TOML for `.toml`, JSONC (comments, trailing commas) for `.json` and `.jsonc`, as wrangler reads them. */
function parseConfigText(file: string, text: string): unknown {
	if (file.endsWith(".toml")) {
		// Loaded only for TOML projects (its CommonJS build, so this stays synchronous).
		const toml = createRequire(import.meta.url)("smol-toml") as typeof import("smol-toml");
		try {
			return toml.parse(text);
		} catch (error) {
			if (!(error instanceof toml.TomlError)) throw error;
			const reason = error.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "");
			throw new UserError(
				`${file}:${error.line}:${error.column}: invalid TOML (${reason}). Fix the syntax (see https://toml.io).`,
				"E_CONFIG_INVALID",
				{ cause: error, location: { file, line: error.line, column: error.column } },
			);
		}
	}
	if (!file.endsWith(".json") && !file.endsWith(".jsonc")) {
		throw new UserError(
			`${file}: a wrangler config must be wrangler.json, wrangler.jsonc or wrangler.toml (by extension: .json, .jsonc or .toml).`,
			"E_CONFIG_INVALID",
		);
	}
	const errors: ParseError[] = [];
	const raw: unknown = loadJsoncParse()(text, errors, { allowTrailingComma: true });
	const first = errors[0];
	if (first) {
		const { line, column } = lineAndColumn(text, first.offset);
		const jsonc = createRequire(import.meta.url)("jsonc-parser") as typeof import("jsonc-parser");
		throw new UserError(
			`${file}:${line}:${column}: invalid JSONC (${jsonc.printParseErrorCode(first.error)}). Fix the syntax; comments and trailing commas are allowed.`,
			"E_CONFIG_INVALID",
			{ location: { file, line, column } },
		);
	}
	return raw;
}

/** How a config file is validated: plainly when `plain` accepts it, else by the zod schema. */
interface ConfigValidation<S extends z.ZodType> {
	plain?: (raw: unknown) => z.infer<S> | undefined;
	schema: () => S;
}

function parseConfigFile<S extends z.ZodType>(
	file: string,
	{ plain, schema }: ConfigValidation<S>,
): z.infer<S> {
	let text: string;
	try {
		text = readFileSync(file, "utf8");
	} catch (error) {
		throw new UserError(`Cannot read ${file}: ${(error as Error).message}`, "E_CONFIG_MISSING", {
			cause: error,
		});
	}
	const raw = parseConfigText(file, text);
	const quick = plain?.(raw);
	if (quick !== undefined) return quick;
	const result = schema().safeParse(raw);
	if (!result.success) {
		const positions = result.error.issues.map((issue) => issuePosition(file, text, issue));
		const lines = result.error.issues.map((issue, i) => formatIssue(issue, raw, positions[i]));
		const first = positions.find((p) => p !== undefined);
		throw new UserError(
			`${file}: invalid configuration\n${lines.map((l) => `  ${l}`).join("\n")}`,
			"E_CONFIG_INVALID",
			{ location: { file, ...first } },
		);
	}
	return result.data;
}

/**
 * Where in a JSON/JSONC file an issue is: the value at its path, an unknown key's own name, or,
 * for a missing key, the object that lacks it. TOML has no positions here (smol-toml keeps none).
 */
function issuePosition(
	file: string,
	text: string,
	issue: z.core.$ZodIssue,
): { line: number; column: number } | undefined {
	if (file.endsWith(".toml")) return undefined;
	const jsonc = createRequire(import.meta.url)("jsonc-parser") as typeof import("jsonc-parser");
	const root = jsonc.parseTree(text, [], { allowTrailingComma: true });
	if (root === undefined) return undefined;
	const segments = issue.path.map((s) => (typeof s === "number" ? s : String(s)));
	let node: import("jsonc-parser").Node | undefined;
	for (let n = segments.length; n >= 0 && node === undefined; n--)
		node = jsonc.findNodeAtLocation(root, segments.slice(0, n));
	if (node === undefined) return undefined;
	if (issue.code === "unrecognized_keys" && node.type === "object") {
		const key = node.children?.find((p) => p.children?.[0]?.value === issue.keys[0])?.children?.[0];
		if (key) node = key;
	}
	return lineAndColumn(text, node.offset);
}

/** `$.env.staging.d1_databases[0].binding: expected string, found number 12` */
export function formatIssue(
	issue: z.core.$ZodIssue,
	root: unknown,
	position?: { line: number; column: number },
): string {
	const where = position ? ` (line ${position.line}, column ${position.column})` : "";
	const at = `${formatJsonPath(issue.path)}${where}`;
	const found = describeValue(valueAt(root, issue.path));
	if (issue.code === "invalid_type") {
		return `${at}: expected ${issue.expected}, found ${found}`;
	}
	if (issue.code === "unrecognized_keys") {
		return `${at}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} (check the spelling; see docs/configuration.md)`;
	}
	return `${at}: expected ${issue.message.replace(/^Invalid input: expected /, "")}, found ${found}`;
}

export function formatJsonPath(segments: readonly PropertyKey[]): string {
	let out = "$";
	for (const segment of segments) {
		if (typeof segment === "number") out += `[${segment}]`;
		else if (typeof segment === "string" && /^[A-Za-z_$][\w$]*$/.test(segment))
			out += `.${segment}`;
		else out += `[${JSON.stringify(String(segment))}]`;
	}
	return out;
}

function valueAt(root: unknown, segments: readonly PropertyKey[]): unknown {
	let value = root;
	for (const segment of segments) {
		if (value === null || typeof value !== "object") return undefined;
		value = (value as Record<PropertyKey, unknown>)[segment];
	}
	return value;
}

function describeValue(value: unknown): string {
	if (value === undefined) return "nothing (missing)";
	if (value === null) return "null";
	if (Array.isArray(value)) return `an array of ${value.length}`;
	if (typeof value === "object") return "an object";
	const shown = JSON.stringify(value);
	return `${typeof value} ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

function lineAndColumn(text: string, offset: number) {
	const before = text.slice(0, offset).split("\n");
	return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function checkMigrationsPattern(file: string, at: string, binding: WranglerD1Binding): void {
	if (binding.migrations_pattern === undefined) return;
	if (binding.migrations_dir === undefined) {
		throw new UserError(
			`${file}: ${at}.migrations_pattern is set but migrations_dir is not; wrangler requires both (e.g. "migrations_dir": "migrations").`,
			"E_CONFIG_INVALID",
		);
	}
	const dir = normalizeRelative(binding.migrations_dir);
	const pattern = normalizeRelative(binding.migrations_pattern);
	if (dir !== "." && !pattern.startsWith(`${dir}/`)) {
		throw new UserError(
			`${file}: ${at}.migrations_pattern: expected a glob starting with "${dir}/", found ${JSON.stringify(binding.migrations_pattern)}`,
			"E_CONFIG_INVALID",
		);
	}
}

/**
 * One binding with defaults applied. wrangler resolves migrations_dir and migrations_pattern
 * against the config file's directory (d1/migrations: `projectPath: path.dirname(config.configPath)`);
 * they are re-expressed relative to the project root, where every reader joins them.
 */
function toDatabase(project: ProjectConfig, binding: WranglerD1Binding): D1Database {
	const configDir = path.dirname(project.wranglerPath);
	const fromRoot = (p: string) =>
		normalizeRelative(path.relative(project.root, path.resolve(configDir, p)) || ".");
	const ownDir = normalizeRelative(binding.migrations_dir ?? DEFAULT_MIGRATIONS_DIR);
	const ownPattern = normalizeRelative(
		binding.migrations_pattern ?? (ownDir === "." ? "*.sql" : `${ownDir}/*.sql`),
	);
	return {
		binding: binding.binding,
		databaseName: binding.database_name,
		databaseId: binding.database_id,
		migrationsDir: fromRoot(ownDir),
		migrationsTable: binding.migrations_table ?? DEFAULT_MIGRATIONS_TABLE,
		migrationsPattern: fromRoot(ownPattern),
	};
}

/** The environment as wrangler sees it: `env.<name>` bindings only, never the top level's. */
export function resolveEnvironment(
	project: ProjectConfig,
	envName: string | undefined,
): ResolvedEnvironment {
	const { wrangler } = project;
	if (envName === undefined || envName === "") {
		return {
			name: undefined,
			workerName: wrangler.name,
			databases: (wrangler.d1_databases ?? []).map((b) => toDatabase(project, b)),
		};
	}
	const env = wrangler.env?.[envName];
	if (!env) {
		const known = project.environments.length
			? `Known environments: ${project.environments.join(", ")}.`
			: "It defines no environments (add an `env` block).";
		throw new UserError(
			`Unknown environment "${envName}" in ${project.wranglerPath}. ${known}`,
			"E_CONFIG_INVALID",
		);
	}
	return {
		name: envName,
		workerName: env.name ?? `${wrangler.name}-${envName}`,
		databases: (env.d1_databases ?? []).map((b) => toDatabase(project, b)),
	};
}

/** Picks the D1 binding to work on: the named one, or the only one. */
export function selectDatabase(
	project: ProjectConfig,
	env: ResolvedEnvironment,
	binding: string | undefined,
): D1Database {
	const where = env.name ? `env.${env.name}.d1_databases` : "d1_databases";
	if (env.databases.length === 0) {
		// No --env is the top-level Worker (as in wrangler); say which environments do have D1.
		const withD1 = env.name
			? []
			: project.environments.filter((name) => project.wrangler.env?.[name]?.d1_databases?.length);
		const hint = env.name
			? ` D1 bindings are not inherited from the top level: declare them under env.${env.name}.`
			: withD1.length
				? ` Without --env this is the top-level Worker (as in wrangler); D1 is declared for ${withD1.map((n) => `env.${n}`).join(", ")}: pass --env ${withD1.length === 1 ? withD1[0] : "<name>"}.`
				: "";
		throw new UserError(
			`${project.wranglerPath}: ${where} has no D1 binding.${hint}`,
			"E_CONFIG_INVALID",
		);
	}
	if (binding !== undefined) {
		const found = env.databases.find((db) => db.binding === binding);
		if (!found) {
			throw new UserError(
				`${project.wranglerPath}: ${where} has no binding "${binding}" (has: ${env.databases.map((d) => d.binding).join(", ")}).`,
				"E_CONFIG_INVALID",
			);
		}
		return found;
	}
	const [only, ...rest] = env.databases;
	if (only && rest.length === 0) return only;
	throw new UserError(
		`${project.wranglerPath}: ${where} has ${env.databases.length} D1 bindings (${env.databases.map((d) => d.binding).join(", ")}); choose one with --binding.`,
		"E_USAGE",
	);
}

/**
 * Every distinct migration set of the project: one per migrations pattern and ledger table
 * across the top level and its environments (staging and production usually share one).
 */
export function listMigrationSets(
	project: ProjectConfig,
): { env: string | undefined; database: D1Database }[] {
	const seen = new Set<string>();
	const sets: { env: string | undefined; database: D1Database }[] = [];
	for (const env of [undefined, ...project.environments]) {
		for (const database of resolveEnvironment(project, env).databases) {
			const key = `${database.migrationsPattern}\0${database.migrationsTable}`;
			if (seen.has(key)) continue;
			seen.add(key);
			sets.push({ env, database });
		}
	}
	return sets;
}

/**
 * Where the committed schema snapshot for a binding lives, relative to the project: beside the
 * migrations directory (`migrations.schema.sql`), or, when that directory holds the wrangler
 * config itself (`migrations_dir: "."`), `.schema.sql` next to the config: a sibling would be
 * outside the app, and a dot-file is never a migration (wrangler globs with `dot: false`). Or what
 * `migrations.snapshot` names: one path, or one per migrations dir; never one file for two sets.
 */
export function snapshotPathFor(project: ProjectConfig, database: D1Database): string {
	const configured = project.settings.migrations.snapshot;
	if (configured === undefined) return defaultSnapshotPath(project, database);
	const pathOf = (d: D1Database) =>
		typeof configured === "string"
			? configured
			: (Object.entries(configured).find(
					([dir]) => settingsDirKey(dir) === settingsDirKey(d.migrationsDir),
				)?.[1] ?? defaultSnapshotPath(project, d));
	const own = pathOf(database);
	// Two sets writing one file would each see the other's schema as drift, run after run.
	// (Sets of one migrations pattern, ledgers apart, replay the same files: one schema.)
	const sets = listMigrationSets(project);
	const sharing = sets.filter(
		(s, i) =>
			pathOf(s.database) === own &&
			sets.findIndex((o) => o.database.migrationsPattern === s.database.migrationsPattern) === i,
	);
	if (sharing.length > 1) {
		const dirs = [...new Set(sets.map((s) => settingsDirKey(s.database.migrationsDir)))];
		throw new UserError(
			`${project.settingsPath ?? DEFAULT_PIPELINE_CONFIG}: migrations.snapshot gives one file ("${own}") to ${sharing.length} migration sets (${sharing.map((s) => `${s.database.binding}: ${settingsDirKey(s.database.migrationsDir)}`).join(", ")}); each set needs its own. Give one path per migrations directory, e.g. "snapshot": { ${dirs.map((d) => `"${d}": "${d}.schema.sql"`).join(", ")} }, or remove the setting to use these defaults.`,
			"E_CONFIG_INVALID",
		);
	}
	return own;
}

function defaultSnapshotPath(project: ProjectConfig, database: D1Database): string {
	const configDir = path.dirname(project.wranglerPath);
	const dir = path.resolve(project.root, database.migrationsDir);
	const fromDir = path.relative(dir, configDir);
	const outside =
		fromDir === ".." || fromDir.startsWith(`..${path.sep}`) || path.isAbsolute(fromDir);
	const file = outside
		? `${dir}${DEFAULT_SNAPSHOT_SUFFIX}`
		: path.join(configDir, DEFAULT_SNAPSHOT_SUFFIX);
	return normalizeRelative(path.relative(project.root, file));
}

/**
 * The account to work on: the environment's `account_id`, else the top level's (wrangler lets
 * environments inherit it), else CLOUDFLARE_ACCOUNT_ID. Both set and different is refused before
 * any request: wrangler would deploy to the config's account while the API calls went to the other.
 */
export function resolveAccountId(
	project: ProjectConfig,
	envName: string | undefined,
	fromEnv: string | undefined,
): string | undefined {
	const own: unknown = envName ? project.wrangler.env?.[envName]?.account_id : undefined;
	const at = own !== undefined ? `$.env.${envName}.account_id` : "$.account_id";
	const raw: unknown = own ?? project.wrangler.account_id;
	const configured = typeof raw === "string" && raw !== "" ? raw : undefined;
	if (raw !== undefined && configured === undefined) {
		throw new UserError(
			`${project.wranglerPath}: invalid configuration\n  ${at}: expected a non-empty string, found ${describeValue(raw)}`,
			"E_CONFIG_INVALID",
		);
	}
	const env = fromEnv || undefined;
	if (configured && env && configured !== env) {
		throw new UserError(
			`CLOUDFLARE_ACCOUNT_ID (${env}) is not the account in ${project.wranglerPath} (${at}: ${configured}). wrangler uses the config's; unset CLOUDFLARE_ACCOUNT_ID or make them agree. Nothing was sent.`,
			"E_CONFIG_INVALID",
		);
	}
	return configured ?? env;
}

/**
 * A warning wrangler does not give: an environment without its own `name` deploys as a separate
 * Worker `<name>-<env>` (a new one on its first deploy), not the top-level Worker.
 */
export function lintEnvironment(project: ProjectConfig, envName: string | undefined): Finding[] {
	if (!envName || project.wrangler.env?.[envName]?.name !== undefined) return [];
	// A Pages project's environments (preview, production) are of one project, never new Workers.
	if (isPagesProject(project)) return [];
	const top = project.wrangler.name;
	return [
		{
			code: "CONFIG_ENV_UNNAMED",
			severity: "warning",
			file: path.basename(project.wranglerPath),
			message: `env.${envName} has no "name": wrangler deploys it as a separate Worker "${top}-${envName}" (a new Worker on its first deploy), not "${top}". Set env.${envName}.name to the Worker it should update, or to "${top}-${envName}" to keep it separate on purpose.`,
		},
	];
}

/** A Cloudflare Pages project: its config has `pages_build_output_dir` (wrangler's isPagesConfig). */
export const isPagesProject = (project: ProjectConfig): boolean =>
	(project.wrangler as { pages_build_output_dir?: unknown }).pages_build_output_dir !== undefined;

/**
 * Refuses a command that ships or runs a Worker in a Pages project, before anything is sent or
 * started: wrangler refuses its Workers commands there too ("a Workers-specific command in a Pages
 * project": wrangler's deploy/index.ts maybeRunAutoConfig, dev's getEntry). Its D1 is any D1.
 */
export function refusePagesProject(project: ProjectConfig, command: string): void {
	if (!isPagesProject(project)) return;
	throw new UserError(
		`${project.wranglerPath} is a Cloudflare Pages project (pages_build_output_dir): \`workers-pipeline ${command}\` ships and runs Workers (wrangler deploy, versions, dev), which wrangler refuses in a Pages project. Deploy it with \`wrangler pages deploy\` (and serve it with \`wrangler pages dev\`), or move it to Workers with static assets (https://developers.cloudflare.com/workers/static-assets/migration-guides/migrate-from-pages/) to deploy with health checks and rollback. lint, migration-test, plan and migrate work on its D1 as they are. Nothing was sent or started.`,
		"E_CONFIG_INVALID",
	);
}
