// Migration naming rules, without zod: the catalog reads them on every start-up.

/** Layouts of the tools teams generate migrations with; each is a rule for a migration's name. */
export const NAMING_PRESETS = {
	strict: {
		pattern: "^\\d{4}_[a-z0-9_]+\\.sql$",
		description:
			"NNNN_snake_case.sql (four digits, underscore, lower-case letters, digits, underscores)",
	},
	// wrangler d1/migrations/create.ts: `${pad(next, 4)}_${message.replaceAll(" ", "_")}.sql`,
	// refusing only a path separator, so any other character (accents, quotes, brackets) may stand.
	wrangler: {
		pattern: "^\\d{4,}_[^/\\\\\\s]+\\.sql$",
		description:
			"NNNN_name.sql as `wrangler d1 migrations create` writes it (spaces made underscores)",
	},
	"drizzle-kit": {
		pattern: "^\\d{4}_[A-Za-z0-9_-]+\\.sql$",
		description: "drizzle-kit's flat NNNN_adjective_name.sql (with meta/_journal.json)",
	},
	"drizzle-kit-v1": {
		pattern: "^\\d{14}_[A-Za-z0-9_-]+/migration\\.sql$",
		description: "drizzle-kit v1's <14-digit timestamp>_<name>/migration.sql",
	},
	prisma: {
		pattern: "^\\d{14}_[A-Za-z0-9_-]+/migration\\.sql$",
		description: "Prisma's <14-digit timestamp>_<name>/migration.sql",
	},
	timestamp: {
		pattern: "^\\d{10,14}_[A-Za-z0-9_-]+\\.sql$",
		description: "<unix or YYYYMMDDHHMMSS timestamp>_<name>.sql",
	},
} as const satisfies Record<string, NamingRule>;

export type NamingPreset = keyof typeof NAMING_PRESETS;

export interface NamingRule {
	/** A regular expression over the migration's name relative to the migrations dir. */
	pattern: string;
	description: string;
}

/** A rule for every migrations set, or one per migrations dir (a project with several tools). */
export type NamingSetting = NamingPreset | NamingRule | Record<string, NamingPreset | NamingRule>;

const isRule = (naming: object): naming is NamingRule =>
	typeof (naming as NamingRule).pattern === "string" &&
	typeof (naming as NamingRule).description === "string";

/** A migrations dir as settings key it (relative to the project, no `./`, no trailing `/`). */
export const settingsDirKey = (dir: string): string => dir.replace(/^\.\/|\/$/g, "");

/**
 * The preset's rule, the project's own, or, keyed by migrations dir (relative to the project),
 * that dir's; a dir the map leaves out follows `strict`.
 */
export const resolveNamingRule = (naming: NamingSetting = "strict", dir?: string): NamingRule => {
	if (typeof naming === "string") return NAMING_PRESETS[naming];
	if (isRule(naming)) return naming;
	const own = dir === undefined ? undefined : naming[settingsDirKey(dir)];
	return resolveNamingRule(own ?? "strict");
};
