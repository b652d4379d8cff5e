import { createRequire } from "node:module";
import type { z } from "zod";
import { NAMING_PRESETS, type NamingPreset } from "./naming.ts";

export { NAMING_PRESETS, type NamingPreset, type NamingRule, resolveNamingRule } from "./naming.ts";

// The zod schemas are built on first use: importing zod and building them costs 30-60 ms of
// start-up, which a plain config (load.ts validates the common shapes itself) never pays.
type Zod = typeof import("zod").z;

function defineWranglerSchemas(z: Zod) {
	// Only the parts of wrangler's config this pipeline reads; everything else passes through untouched.
	const d1BindingSchema = z.looseObject({
		binding: z.string().min(1),
		database_name: z.string().min(1).optional(),
		database_id: z.string().min(1).optional(),
		preview_database_id: z.string().optional(),
		migrations_dir: z.string().min(1).optional(),
		// Any name: wrangler quotes it in every query (d1/migrations/helpers.ts escapeIdentifier).
		migrations_table: z.string().min(1, "a non-empty table name").optional(),
		migrations_pattern: z.string().min(1).optional(),
	});

	const environmentSchema = z.looseObject({
		name: z.string().min(1).optional(),
		d1_databases: z.array(d1BindingSchema).optional(),
		vars: z.record(z.string(), z.unknown()).optional(),
	});

	const wranglerConfigSchema = z.looseObject({
		name: z.string().min(1),
		main: z.string().optional(),
		d1_databases: z.array(d1BindingSchema).optional(),
		vars: z.record(z.string(), z.unknown()).optional(),
		env: z.record(z.string(), environmentSchema).optional(),
	});
	return { d1BindingSchema, wranglerConfigSchema };
}

function defineSettingsSchemas(z: Zod) {
	const acknowledgementSchema = z.strictObject({
		/** A finding code, or a glob of codes (`D1_*`). */
		code: z
			.string()
			.regex(/^[A-Z0-9_*?]+$/, "a finding code such as CATALOG_DUPLICATE_NUMBER, or a glob (D1_*)"),
		/** Globs relative to the migrations dir or the project; omitted: every file. */
		files: z.array(z.string().min(1)).min(1).optional(),
		reason: z.string().trim().min(10, "a reason of at least 10 characters"),
	});

	const presetSchema = z.enum(Object.keys(NAMING_PRESETS) as [NamingPreset, ...NamingPreset[]]);
	const ruleSchema = z.strictObject({
		pattern: z.string().refine((source) => {
			try {
				new RegExp(source);
				return true;
			} catch {
				return false;
			}
		}, "a valid regular expression"),
		description: z.string().min(1),
	});
	// One message for the union: zod's own says only "Invalid input".
	const namingExpected = `a preset (${Object.keys(NAMING_PRESETS)
		.map((p) => JSON.stringify(p))
		.join(
			", ",
		)}), a rule { "pattern": "<regex>", "description": "…" }, or one of those per migrations dir`;
	const namingSchema = z.union(
		[
			presetSchema,
			ruleSchema,
			// One rule per migrations dir (relative to the project): several bindings, several tools.
			z.record(z.string().min(1), z.union([presetSchema, ruleSchema])),
		],
		{ error: namingExpected },
	);

	/** A command as an argv array (no shell): ["pnpm", "run", "lint"]. */
	const command = z.array(z.string().min(1)).min(1);

	// The pipeline's own settings (workers-pipeline.jsonc); every key is optional.
	const pipelineSettingsSchema = z.strictObject({
		$schema: z.string().optional(),
		migrations: z
			.strictObject({
				/**
				 * Schema snapshot path, relative to the project; default `<migrations_dir>.schema.sql`.
				 * With several migration sets (D1 bindings), one path per migrations dir.
				 */
				snapshot: z
					.union([z.string().min(1), z.record(z.string().min(1), z.string().min(1))])
					.optional(),
				/** The rule every migration's name follows: a preset (default `strict`) or a regex. */
				naming: namingSchema.default("strict"),
				/** Existing violations a team keeps on purpose; each names a code, files and a reason. */
				acknowledge: z.array(acknowledgementSchema).default([]),
			})
			.default({ naming: "strict", acknowledge: [] }),
		lint: z
			.strictObject({
				/** Without a `lint` script or lint.command: biome check, when biome is installed. */
				biome: z.boolean().default(true),
				/** False: no typecheck (the `typecheck` script, else tsc --noEmit). */
				typecheck: z.boolean().default(true),
				/** The project's linter; default: its `lint` script. */
				command: command.optional(),
				/** A format check; default: a `format:check` script, else prettier --check when installed. */
				formatCommand: command.optional(),
				/** Default: a `typecheck` script, else tsc --noEmit -p tsconfig.json (after next typegen in a Next app). */
				typecheckCommand: command.optional(),
			})
			.default({ biome: true, typecheck: true }),
		build: z
			.strictObject({
				/** Fail the build when the Worker upload (gzip) is larger; Workers limits: 3 MiB free, 10 MiB paid. */
				budgetGzipKiB: z.number().positive().max(10_240).default(3072),
				/** The app's build for frameworks other than OpenNext (e.g. ["vite", "build"]); default: none, wrangler bundles `main`. */
				command: command.optional(),
				/** What the build writes, relative to the project (e.g. "dist"); kept out of the build's input hash. */
				output: z.string().min(1).optional(),
			})
			.default({ budgetGzipKiB: 3072 }),
		deploy: z
			.strictObject({
				healthPath: z.string().startsWith("/").default("/api/health"),
				/** Per environment: a full health URL, when the Worker is not served on workers.dev. */
				healthUrls: z.record(z.string(), z.url()).default({}),
			})
			.default({ healthPath: "/api/health", healthUrls: {} }),
		test: z
			.strictObject({
				command: z.array(z.string().min(1)).min(1).default(["npm", "test"]),
			})
			.default({ command: ["npm", "test"] }),
		...defineQualitySections(z),
	});

	return { acknowledgementSchema, namingSchema, pipelineSettingsSchema };
}

/** The quality steps' sections of workers-pipeline.jsonc (e2e, format, architecture, mutation, timeouts). */
function defineQualitySections(z: Zod) {
	return {
		e2e: z
			.strictObject({
				/** SQL run on the local D1 after the migrations; default: the first of seed.sql, db/seed.sql. */
				seed: z.string().min(1).optional(),
				/** The path that must answer 200 before the tests start; default: deploy.healthPath. */
				readyPath: z.string().startsWith("/").optional(),
				/** How long the local app may take to answer 200 (default 180). */
				readyTimeoutSeconds: z.number().positive().default(180),
				/** Chromium executable; default: $WORKERS_PIPELINE_CHROMIUM, then chromium on PATH. */
				browser: z.string().min(1).optional(),
			})
			.default({ readyTimeoutSeconds: 180 }),
		format: z
			.strictObject({
				/** The project's format check; default: `format:check` script, prettier --check, biome format. */
				command: z.array(z.string().min(1)).min(1).optional(),
			})
			.default({}),
		architecture: z
			.strictObject({
				/** An architecture check; default: dependency-cruiser when .dependency-cruiser.* exists. */
				command: z.array(z.string().min(1)).min(1).optional(),
				/** What dependency-cruiser checks (default: src). */
				paths: z.array(z.string().min(1)).min(1).default(["src"]),
			})
			.default({ paths: ["src"] }),
		mutation: z
			.strictObject({
				/** Fail under this mutation score (0-100); without it the score is advisory. */
				threshold: z.number().min(0).max(100).optional(),
				/** What "changed" is measured against; default: origin/$GITHUB_BASE_REF, origin/main, main. */
				base: z.string().min(1).optional(),
				/** Paths whose changes trigger mutation testing on a pull request (see mutation.yml). */
				criticalPaths: z.array(z.string().min(1)).default([]),
			})
			.default({ criticalPaths: [] }),
		/** Seconds each step may run before it is stopped (see docs/configuration.md for defaults). */
		timeouts: z
			.strictObject({
				lint: z.number().positive().optional(),
				test: z.number().positive().optional(),
				build: z.number().positive().optional(),
				"migration-test": z.number().positive().optional(),
				format: z.number().positive().optional(),
				architecture: z.number().positive().optional(),
				e2e: z.number().positive().optional(),
				mutation: z.number().positive().optional(),
			})
			.default({}),
	};
}

function defineSchemas(z: Zod) {
	return { ...defineWranglerSchemas(z), ...defineSettingsSchemas(z) };
}

type Schemas = ReturnType<typeof defineSchemas>;
let schemas: Schemas | undefined;

/** The zod schemas; zod's CommonJS build is required, so this stays synchronous. */
export const configSchemas = (): Schemas => {
	schemas ??= defineSchemas((createRequire(import.meta.url)("zod") as typeof import("zod")).z);
	return schemas;
};

// Stand-ins that build the real schema on first touch, so importers keep `schema.parse(x)`.
const lazySchema = <K extends keyof Schemas>(key: K): Schemas[K] =>
	new Proxy({} as Schemas[K], {
		get(_target, property) {
			const schema = configSchemas()[key];
			const value: unknown = Reflect.get(schema, property, schema);
			return typeof value === "function" ? value.bind(schema) : value;
		},
	});

export const wranglerConfigSchema = lazySchema("wranglerConfigSchema");
export const pipelineSettingsSchema = lazySchema("pipelineSettingsSchema");

export type WranglerConfig = z.infer<Schemas["wranglerConfigSchema"]>;
export type WranglerD1Binding = z.infer<Schemas["d1BindingSchema"]>;
export type PipelineSettings = z.infer<Schemas["pipelineSettingsSchema"]>;
export type PipelineSettingsInput = z.input<Schemas["pipelineSettingsSchema"]>;
export type Acknowledgement = z.infer<Schemas["acknowledgementSchema"]>;
export type Naming = z.infer<Schemas["namingSchema"]>;

/** One D1 binding as the pipeline uses it, defaults applied. */
export interface D1Database {
	binding: string;
	databaseName: string | undefined;
	databaseId: string | undefined;
	/** Relative to the project directory, POSIX separators. */
	migrationsDir: string;
	migrationsTable: string;
	/** Glob relative to the project directory, as wrangler's `migrations_pattern`. */
	migrationsPattern: string;
}

/** A wrangler environment resolved the way wrangler resolves it (D1 bindings are not inherited). */
export interface ResolvedEnvironment {
	/** `undefined` is the top-level (no `--env`) environment. */
	name: string | undefined;
	workerName: string;
	databases: D1Database[];
}

export interface ProjectConfig {
	root: string;
	wranglerPath: string;
	settingsPath: string | undefined;
	wrangler: WranglerConfig;
	settings: PipelineSettings;
	environments: string[];
}
