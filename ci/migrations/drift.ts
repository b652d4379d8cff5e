import { readFileSync } from "node:fs";
import path from "node:path";
import type { Finding } from "../report/model.ts";
import type { MigrationOutcome, MigrationRow } from "./apply.ts";
import {
	type Catalog,
	checksumOf,
	executableMigrationText,
	leadingNumber,
	type Migration,
} from "./catalog.ts";
import type { MigrationPlan } from "./plan.ts";
import { replayMigrations } from "./replay.ts";
import { diffSchema, formatSchemaDifferences, type Schema } from "./schema.ts";

/**
 * The expected schema with exactly these migrations applied, in the ledger's order; undefined
 * when one of them has no file to replay (deleted, or retired).
 */
export function replaySchemaThrough(
	catalog: Catalog,
	names: readonly string[],
	table: string,
	retired: ReadonlyMap<string, Migration> = new Map(),
): Schema | undefined {
	const byName = new Map([...retired, ...catalog.migrations.map((m) => [m.name, m] as const)]);
	const migrations = names.map((n) => byName.get(n));
	if (migrations.some((m) => m === undefined)) return undefined;
	const result = replayMigrations(migrations as Migration[], { migrationsTable: table });
	return result.ok ? result.schema : undefined;
}

/** The report rows of a plan before anything runs. */
export function planRows(plan: MigrationPlan): MigrationRow[] {
	return [
		...plan.applied.map((a) => ({
			name: a.name,
			checksum: a.checksum,
			status: (a.status === "verified" || a.status === "unrecorded" || a.status === "retired"
				? a.status
				: "failed") as MigrationOutcome,
			...(a.status === "checksum-mismatch" || a.status === "missing-file"
				? { note: a.status }
				: {}),
		})),
		...plan.pending.map((p) => ({
			name: p.migration.name,
			checksum: p.migration.checksum,
			status: "pending" as MigrationOutcome,
		})),
	];
}

/**
 * A finding when the schema cannot be checked at all: an applied migration is retired and its
 * retired file unreadable, so no replay reproduces the database. A retired file must never
 * switch the check off silently.
 */
export function uncheckableSchema(
	catalog: Catalog,
	names: readonly string[],
	when: "preflight" | "validate",
	retiredFiles: ReadonlyMap<string, Migration> = new Map(),
): Finding[] {
	const known = new Set([...catalog.migrations.map((m) => m.name), ...retiredFiles.keys()]);
	const missing = names.filter((n) => !known.has(n));
	const retired = new Set(catalog.retired.map((r) => r.slice(0, -".retired".length)));
	const retiredNames = missing.filter((n) => retired.has(n));
	if (retiredNames.length === 0) return [];
	return [
		{
			code: when === "preflight" ? "PREFLIGHT_SCHEMA_UNCHECKED" : "VALIDATE_SCHEMA_UNCHECKED",
			severity: "error",
			message: `the remote schema cannot be checked: ${retiredNames.join(", ")} ${retiredNames.length > 1 ? "are" : "is"} applied but retired (.sql.retired), so no replay of the files reproduces this database. Keep applied migrations as files (retire only ones that were never applied anywhere), or record a schema snapshot that includes them.`,
		},
	];
}

/** The remote schema must equal the replay through the applied migrations before anything is written. */
export function checkDrift(
	catalog: Catalog,
	plan: MigrationPlan,
	remote: Schema,
	{ table, retired = new Map() }: { table: string; retired?: ReadonlyMap<string, Migration> },
): Finding[] {
	const names = plan.applied.map((a) => a.name);
	const expected = replaySchemaThrough(catalog, names, table, retired);
	if (!expected) return uncheckableSchema(catalog, names, "preflight", retired);
	const differences = diffSchema(expected, remote);
	if (differences.length === 0) return [];
	const unrecorded = plan.toRecord.map((a) => a.name);
	return [
		{
			code: "PREFLIGHT_SCHEMA_DRIFT",
			severity: "error",
			message: `the remote schema differs from what the applied migrations produce (- migrations, + remote):\n${formatSchemaDifferences(differences)}\n${
				unrecorded.length
					? `Migrations applied by wrangler without a checksum (${unrecorded.join(", ")}) may have been edited since; `
					: ""
			}someone may have changed the database by hand. Make the files match the database, or fix the database, before migrating.`,
		},
	];
}

/** After applying: the remote schema must equal the replay at the same head. */
export function checkValidation(
	catalog: Catalog,
	appliedNames: readonly string[],
	remote: Schema,
	{ table, retired = new Map() }: { table: string; retired?: ReadonlyMap<string, Migration> },
): Finding[] {
	const expected = replaySchemaThrough(catalog, appliedNames, table, retired);
	if (!expected) return uncheckableSchema(catalog, appliedNames, "validate", retired);
	const differences = diffSchema(expected, remote);
	if (differences.length === 0) return [];
	return [
		{
			code: "VALIDATE_SCHEMA_MISMATCH",
			severity: "error",
			message: `after applying, the remote schema differs from the replay at the same head (- expected, + remote):\n${formatSchemaDifferences(differences)}`,
		},
	];
}

/** Reads the `.sql.retired` files, so applied-then-retired migrations still replay in checks. */
export function readRetiredMigrations(root: string, catalog: Catalog): Map<string, Migration> {
	const out = new Map<string, Migration>();
	for (const file of catalog.retired) {
		const name = file.slice(0, -".retired".length);
		const relative = catalog.dir === "." ? file : `${catalog.dir}/${file}`;
		try {
			const text = readFileSync(path.join(root, relative), "utf8");
			const sql = executableMigrationText(text);
			out.set(name, {
				name,
				path: relative,
				number: leadingNumber(name),
				checksum: checksumOf(text),
				sql,
				readable: true,
				depends: [],
			});
		} catch {
			// Unreadable: the checks then report the schema as uncheckable, never as fine.
		}
	}
	return out;
}
