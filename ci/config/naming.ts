// Migration naming rules, without zod: the catalog reads them on every start-up.

/** Layouts of the tools teams generate migrations with; each is a rule for a migration's name. */
export const NAMING_PRESETS = {
	strict: {
		pattern: "^\\d{4}_[a-z0-9_]+\\.sql$",
		description:
			"NNNN_snake_case.sql (four digits, underscore, lower-case letters, digits, underscores)",
	},
	wrangler: {
		pattern: "^\\d{4}_[A-Za-z0-9_.-]+\\.sql$",
		description: "NNNN_name.sql as `wrangler d1 migrations create` writes it",
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

/** The preset's rule, or the project's own. */
export const resolveNamingRule = (naming: NamingPreset | NamingRule = "strict"): NamingRule =>
	typeof naming === "string" ? NAMING_PRESETS[naming] : naming;
