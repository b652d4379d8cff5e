import type { Finding } from "../report/model.ts";
import type { Catalog, Migration } from "./catalog.ts";
import type { AuditEntry, LedgerState } from "./ledger.ts";

export type AppliedStatus =
	/** Recorded by us with a checksum that matches the file. */
	| "verified"
	/** Applied by wrangler alone: no checksum recorded yet (recorded by the next migrate). */
	| "unrecorded"
	/** The file changed after it was applied. */
	| "checksum-mismatch"
	/** In the ledger, but no such file (deleted or renamed). */
	| "missing-file"
	/** In the ledger and now a `.sql.retired` file: kept on purpose. */
	| "retired";

export interface AppliedMigration {
	name: string;
	status: AppliedStatus;
	checksum: string | undefined;
	recordedChecksum: string | undefined;
	appliedAt: string | null;
	audit: AuditEntry | undefined;
}

export interface PendingMigration {
	migration: Migration;
	/** Numbered below the newest applied migration. */
	outOfOrder: boolean;
}

/** What migrate would do, as a value: printed by `plan` and `--dry-run`, tested without I/O. */
export interface MigrationPlan {
	applied: AppliedMigration[];
	pending: PendingMigration[];
	/** Migrations applied by wrangler alone, whose checksum migrate will record. */
	toRecord: AppliedMigration[];
	head: string | undefined;
	/** Problems that stop a migrate: edited, deleted or out-of-order migrations. */
	findings: Finding[];
}

export interface PlanOptions {
	allowOutOfOrder?: boolean;
}

/** Pending means a catalog name with no ledger row; the ledger is keyed by name, never by time. */
export function planMigrations(
	catalog: Catalog,
	ledger: LedgerState,
	options: PlanOptions = {},
): MigrationPlan {
	const byName = new Map(catalog.migrations.map((m) => [m.name, m]));
	const retired = new Set(catalog.retired.map((r) => r.slice(0, -".retired".length)));
	const appliedNames = new Set(ledger.applied.map((r) => r.name));
	const findings: Finding[] = [];
	const applied: AppliedMigration[] = ledger.applied.map((row) => {
		const file = byName.get(row.name);
		const audit = ledger.audit.get(row.name);
		let status: AppliedStatus;
		if (!file) status = retired.has(row.name) ? "retired" : "missing-file";
		else if (!audit) status = "unrecorded";
		else status = audit.checksum === file.checksum ? "verified" : "checksum-mismatch";
		return {
			name: row.name,
			status,
			checksum: file?.checksum,
			recordedChecksum: audit?.checksum,
			appliedAt: row.appliedAt,
			audit,
		};
	});
	const dir = catalog.dir === "." ? "" : `${catalog.dir}/`;
	for (const a of applied) {
		if (a.status === "missing-file") {
			const twin = normalizationTwin(a.name, catalog);
			findings.push({
				code: "LEDGER_FILE_MISSING",
				severity: "error",
				file: `${dir}${a.name}`,
				message: twin
					? `${a.name} is applied on this database, and ${twin} differs from it only in Unicode normalisation (the ledger has ${formOf(a.name)}, the file name is ${formOf(twin)}; macOS file systems and some git settings turn one into the other). Rename the file back to the ledger's exact bytes (e.g. \`git mv\` with core.precomposeUnicode=true); never rename an applied migration.`
					: `${a.name} is applied on this database but the file is gone (deleted or renamed). Restore it under its original name; to stop shipping it, rename it to ${a.name}.retired.`,
			});
		} else if (a.status === "checksum-mismatch") {
			findings.push({
				code: "LEDGER_CHECKSUM_MISMATCH",
				severity: "error",
				file: `${dir}${a.name}`,
				message: `${a.name} was edited after it was applied (recorded sha256 ${a.recordedChecksum?.slice(0, 12)}…, file now ${a.checksum?.slice(0, 12)}…). Revert the edit (\`git log -p -- ${dir}${a.name}\`) and put the change in a new migration.`,
			});
		}
	}
	const newestApplied = applied.reduce<number | undefined>((max, a) => {
		const n = byName.get(a.name)?.number;
		return n !== undefined && (max === undefined || n > max) ? n : max;
	}, undefined);
	// Applied means applied: an audit row says this migration ran, so a missing wrangler row is a
	// damaged ledger, never a reason to run it again (its seed rows would double).
	for (const m of catalog.migrations) {
		if (appliedNames.has(m.name) || !ledger.audit.has(m.name)) continue;
		findings.push({
			code: "LEDGER_ROW_MISSING",
			severity: "error",
			file: m.path,
			message: `${m.name} is recorded as applied in workers_pipeline_migrations (${ledger.audit.get(m.name)?.recordedBy ?? "?"}, run ${ledger.audit.get(m.name)?.runId ?? "?"}) but its row in wrangler's ledger is missing; it will not be applied again. Put the row back (INSERT INTO the migrations table (name) VALUES ('${m.name}')) after checking the database has its changes.`,
		});
	}
	const pending: PendingMigration[] = catalog.migrations
		.filter((m) => !appliedNames.has(m.name) && !ledger.audit.has(m.name))
		.map((migration) => ({
			migration,
			outOfOrder:
				newestApplied !== undefined &&
				migration.number !== undefined &&
				migration.number < newestApplied,
		}));
	for (const p of pending) {
		if (!p.outOfOrder) continue;
		findings.push({
			code: "PLAN_OUT_OF_ORDER",
			severity: options.allowOutOfOrder ? "warning" : "error",
			file: p.migration.path,
			message: `${p.migration.name} is pending but numbered below the newest applied migration (${newestApplied}); it was probably merged from an older branch. Renumber it after the newest, or pass --allow-out-of-order if applying it late is safe.`,
		});
	}
	return {
		applied,
		pending,
		toRecord: applied.filter((a) => a.status === "unrecorded"),
		head: ledger.applied.at(-1)?.name,
		findings,
	};
}

/** A catalog name equal to `name` once both are NFC-normalised, but not byte for byte. */
function normalizationTwin(name: string, catalog: Catalog): string | undefined {
	const nfc = name.normalize("NFC");
	return catalog.migrations.find((m) => m.name !== name && m.name.normalize("NFC") === nfc)?.name;
}

const formOf = (name: string) =>
	name === name.normalize("NFC") ? "NFC" : name === name.normalize("NFD") ? "NFD" : "mixed form";

/**
 * The plan cut at migration number `to` (workers-sdk#4840): pending migrations numbered above it
 * stay pending, untouched. A number no file has is refused by the caller before this.
 */
export function limitPlan(plan: MigrationPlan, to: number | undefined): MigrationPlan {
	if (to === undefined) return plan;
	return {
		...plan,
		pending: plan.pending.filter(
			(p) => p.migration.number !== undefined && p.migration.number <= to,
		),
	};
}
