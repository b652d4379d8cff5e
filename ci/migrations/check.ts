import { type Dirent, existsSync, readdirSync } from "node:fs";
import path from "node:path";
import {
	type Acknowledgement,
	type D1Database,
	type ProjectConfig,
	resolveNamingRule,
} from "../config/schema.ts";
import { DEFAULT_PIPELINE_CONFIG } from "../constants.ts";
import type { Finding } from "../report/model.ts";
import {
	acknowledgeFindings,
	type Catalog,
	codeMatches,
	parseCatalog,
	readCatalog,
} from "./catalog.ts";
import { lintMigration } from "./lint.ts";

export interface CheckedCatalog {
	catalog: Catalog;
	/** Catalog and lint findings, acknowledgements applied (unused ones of static codes appended). */
	findings: Finding[];
	/** The same findings before acknowledgements, for a caller that adds its own (replay) findings. */
	raw: Finding[];
}

/** Codes only a replay (migration-test, migrate) can produce; lint alone cannot judge their acknowledgements. */
export const REPLAY_FINDING_CODES = [
	"REPLAY_FAILED",
	"REPLAY_DATA_FAILED",
	"REPLAY_DATA_UNIQUE",
	"REPLAY_DATA_EMPTY",
	"REPLAY_DQS_STRING",
	"REPLAY_DROP_CASCADE",
	"SNAPSHOT_DRIFT",
	"SNAPSHOT_MISSING",
	"PARITY_MISMATCH",
] as const;

/** True when the acknowledgement's code (or glob) covers a replay finding code. */
export const acknowledgesReplay = (ack: Acknowledgement): boolean =>
	REPLAY_FINDING_CODES.some((code) => codeMatches(ack.code, code));

export interface AcknowledgeProjectOptions {
	/** The migrations dirs the findings come from (file globs may be relative to them). */
	dirs: readonly string[];
	/** Which acknowledgements an unmatched one is reported for; default all. */
	reportsUnused?: (ack: Acknowledgement) => boolean;
}

/** The project's `migrations.acknowledge` over any findings: marked findings, then unused acknowledgements. */
export function acknowledgeProjectFindings(
	project: ProjectConfig,
	findings: readonly Finding[],
	{ dirs, reportsUnused }: AcknowledgeProjectOptions,
): { findings: Finding[]; unused: Finding[] } {
	const configFile = project.settingsPath
		? path.relative(project.root, project.settingsPath).replaceAll(path.sep, "/")
		: DEFAULT_PIPELINE_CONFIG;
	return acknowledgeFindings(findings, project.settings.migrations.acknowledge, {
		dirs,
		configFile,
		reportsUnused,
	});
}

/** Subdirectories of the migrations dir holding a migration.sql (at most three named), if any. */
function findNestedMigrations(root: string, database: D1Database): string | undefined {
	const dir = path.join(root, database.migrationsDir);
	let entries: Dirent[];
	try {
		entries = readdirSync(dir, { withFileTypes: true });
	} catch {
		return undefined;
	}
	const nested = entries
		.filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, "migration.sql")))
		.map((e) => `${database.migrationsDir}/${e.name}`)
		.sort();
	if (nested.length === 0) return undefined;
	return nested.length > 3
		? `${nested.slice(0, 3).join(", ")} and ${nested.length - 3} more`
		: nested.join(", ");
}

/** Reads the catalog of one D1 binding and runs every static check on it (names, order, DEPENDS, D1 lint). */
export function readCheckedCatalog(project: ProjectConfig, database: D1Database): CheckedCatalog {
	const catalog = parseCatalog(readCatalog({ root: project.root, database }), {
		naming: resolveNamingRule(project.settings.migrations.naming, database.migrationsDir),
	});
	const raw = [...catalog.findings];
	if (catalog.migrations.length === 0) {
		const nested = findNestedMigrations(project.root, database);
		raw.push({
			code: "CATALOG_EMPTY",
			severity: "warning",
			file: database.migrationsDir,
			message: nested
				? `no migration files match ${database.migrationsPattern}, but ${nested} hold${nested.includes(",") ? "" : "s"} migration.sql files (drizzle-kit v1's or Prisma's layout): set "migrations_pattern": "${database.migrationsDir}/*/migration.sql" on binding "${database.binding}" (wrangler applies none of them without it).`
				: `no migration files match ${database.migrationsPattern}; add NNNN_name.sql files, or fix migrations_dir / migrations_pattern of binding "${database.binding}".`,
		});
	}
	for (const migration of catalog.migrations) {
		if (!migration.readable) continue;
		raw.push(
			...lintMigration({ name: migration.path, content: migration.sql, bom: migration.bom }),
		);
	}
	const acknowledged = acknowledgeProjectFindings(project, raw, {
		dirs: [database.migrationsDir],
		reportsUnused: (ack) => !acknowledgesReplay(ack),
	});
	return { catalog, raw, findings: [...acknowledged.findings, ...acknowledged.unused] };
}
