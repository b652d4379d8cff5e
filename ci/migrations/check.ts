import path from "node:path";
import type { D1Database, ProjectConfig } from "../config/schema.ts";
import { DEFAULT_PIPELINE_CONFIG } from "../constants.ts";
import type { Finding } from "../report/model.ts";
import { applyAcknowledgements, type Catalog, parseCatalog, readCatalog } from "./catalog.ts";
import { lintMigration } from "./lint.ts";

export interface CheckedCatalog {
	catalog: Catalog;
	/** Catalog and lint findings, acknowledgements applied. */
	findings: Finding[];
}

/** Reads the catalog of one D1 binding and runs every static check on it (names, order, DEPENDS, D1 lint). */
export function readCheckedCatalog(project: ProjectConfig, database: D1Database): CheckedCatalog {
	const catalog = parseCatalog(readCatalog({ root: project.root, database }));
	const findings = [...catalog.findings];
	if (catalog.migrations.length === 0) {
		findings.push({
			code: "CATALOG_EMPTY",
			severity: "warning",
			file: database.migrationsDir,
			message: `no migration files match ${database.migrationsPattern}; add NNNN_name.sql files, or fix migrations_dir / migrations_pattern of binding "${database.binding}".`,
		});
	}
	for (const migration of catalog.migrations) {
		if (!migration.readable) continue;
		findings.push(...lintMigration({ name: migration.path, content: migration.sql }));
	}
	const configFile = path.relative(project.root, project.settingsPath ?? DEFAULT_PIPELINE_CONFIG);
	return {
		catalog,
		findings: applyAcknowledgements(findings, project.settings.migrations.acknowledge, {
			dir: database.migrationsDir,
			configFile,
		}),
	};
}

/** The old name, kept for migrate.ts and remote-admin.ts until they move to readCheckedCatalog. */
export const checkMigrations = readCheckedCatalog;
