import { describe, expect, it } from "vitest";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { type AuditEntry, parseLedger } from "../../../ci/migrations/ledger.ts";
import { limitPlan, planMigrations } from "../../../ci/migrations/plan.ts";

const catalog = (files: Record<string, string>, retired: string[] = []) =>
	parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired,
		files: Object.entries(files).map(([name, sql]) => ({ name, bytes: Buffer.from(sql) })),
	});
const FILES = {
	"0001_a.sql": "CREATE TABLE a (id INTEGER);\n",
	"0002_b.sql": "CREATE TABLE b (id INTEGER);\n",
	"0003_c.sql": "CREATE TABLE c (id INTEGER);\n",
};
const cat = catalog(FILES);
const sum = (name: string) => cat.migrations.find((m) => m.name === name)?.checksum ?? "";
const audit = (
	name: string,
	checksum = sum(name),
): Partial<AuditEntry> & Record<string, unknown> => ({
	name,
	checksum,
	recorded_by: "migrate",
	run_id: "r1",
});
const ledger = (applied: string[], audited: (Record<string, unknown> | string)[] = applied) =>
	parseLedger(
		applied.map((name, i) => ({ id: i + 1, name, applied_at: null })),
		audited.map((a) => (typeof a === "string" ? audit(a) : a)),
	);

describe("planMigrations()", () => {
	it.each([
		["a fresh database", [], [], ["0001_a.sql", "0002_b.sql", "0003_c.sql"], []],
		["two applied and verified", ["0001_a.sql", "0002_b.sql"], undefined, ["0003_c.sql"], []],
		["applied by wrangler alone", ["0001_a.sql"], [], ["0002_b.sql", "0003_c.sql"], []],
		[
			"an applied file edited",
			["0001_a.sql"],
			[audit("0001_a.sql", "deadbeef")],
			["0002_b.sql", "0003_c.sql"],
			["LEDGER_CHECKSUM_MISMATCH"],
		],
		[
			"an applied file deleted",
			["0001_a.sql", "0000_gone.sql"],
			undefined,
			["0002_b.sql", "0003_c.sql"],
			["LEDGER_FILE_MISSING"],
		],
		[
			"a pending migration below the newest applied",
			["0001_a.sql", "0003_c.sql"],
			undefined,
			["0002_b.sql"],
			["PLAN_OUT_OF_ORDER"],
		],
		[
			"an audit row whose wrangler ledger row is gone",
			["0001_a.sql"],
			["0001_a.sql", "0002_b.sql"],
			["0003_c.sql"],
			["LEDGER_ROW_MISSING"],
		],
	] as const)("%s", (_label, applied, audited, pending, codes) => {
		const plan = planMigrations(
			cat,
			ledger([...applied], audited === undefined ? [...applied] : [...audited]),
		);
		expect(plan.pending.map((p) => p.migration.name)).toEqual(pending);
		expect(plan.findings.map((f) => f.code)).toEqual(codes);
	});

	it("records what wrangler applied alone", () => {
		const plan = planMigrations(cat, ledger(["0001_a.sql", "0002_b.sql"], ["0001_a.sql"]));
		expect(plan.toRecord.map((a) => a.name)).toEqual(["0002_b.sql"]);
		expect(plan.head).toBe("0002_b.sql");
	});

	it("treats an applied, retired file as retired, not missing", () => {
		const retiredCatalog = catalog({ "0002_b.sql": FILES["0002_b.sql"] }, ["0001_a.sql.retired"]);
		const plan = planMigrations(retiredCatalog, ledger(["0001_a.sql"], []));
		expect(plan.applied[0]?.status).toBe("retired");
		expect(plan.findings).toEqual([]);
	});

	it("names a Unicode-normalisation mismatch of a file name as such", () => {
		const nfd = "0001_cafe\u0301.sql";
		const nfc = nfd.normalize("NFC");
		const plan = planMigrations(catalog({ [nfd]: FILES["0001_a.sql"] }), ledger([nfc], []));
		const missing = plan.findings.find((f) => f.code === "LEDGER_FILE_MISSING");
		expect(missing?.message).toMatch(/differs from it only in Unicode normalisation/);
		expect(missing?.message).toMatch(/the ledger has NFC, the file name is NFD/);
	});

	it("names a ledger name that mixes both normalisation forms", () => {
		const mixed = "0001_cafe\u0301_\u00e9t\u00e9.sql";
		const nfc = mixed.normalize("NFC");
		const plan = planMigrations(catalog({ [nfc]: FILES["0001_a.sql"] }), ledger([mixed], []));
		const missing = plan.findings.find((f) => f.code === "LEDGER_FILE_MISSING");
		expect(missing?.message).toMatch(/the ledger has mixed form, the file name is NFC/);
	});
});

describe("planMigrations() details", () => {
	it("describes each applied migration: status, both checksums, applied time, audit row", () => {
		const rows = parseLedger(
			[
				{ id: 1, name: "0001_a.sql", applied_at: "2026-01-01 00:00:00" },
				{ id: 2, name: "0002_b.sql", applied_at: null },
				{ id: 3, name: "0000_gone.sql", applied_at: null },
			],
			[audit("0001_a.sql"), audit("0002_b.sql", "0123456789abcdef")],
		);
		const plan = planMigrations(cat, rows);
		expect(plan.applied).toEqual([
			{
				name: "0001_a.sql",
				status: "verified",
				checksum: sum("0001_a.sql"),
				recordedChecksum: sum("0001_a.sql"),
				appliedAt: "2026-01-01 00:00:00",
				audit: expect.objectContaining({ name: "0001_a.sql", runId: "r1" }),
			},
			{
				name: "0002_b.sql",
				status: "checksum-mismatch",
				checksum: sum("0002_b.sql"),
				recordedChecksum: "0123456789abcdef",
				appliedAt: null,
				audit: expect.objectContaining({ name: "0002_b.sql" }),
			},
			{
				name: "0000_gone.sql",
				status: "missing-file",
				checksum: undefined,
				recordedChecksum: undefined,
				appliedAt: null,
				audit: undefined,
			},
		]);
		expect(plan.toRecord).toEqual([]);
		expect(plan.head).toBe("0000_gone.sql");
		const [mismatch, missing] = [
			plan.findings.find((f) => f.code === "LEDGER_CHECKSUM_MISMATCH"),
			plan.findings.find((f) => f.code === "LEDGER_FILE_MISSING"),
		];
		expect(mismatch).toMatchObject({ severity: "error", file: "migrations/0002_b.sql" });
		expect(mismatch?.message).toContain(
			`recorded sha256 0123456789ab…, file now ${sum("0002_b.sql").slice(0, 12)}…`,
		);
		expect(mismatch?.message).toContain("git log -p -- migrations/0002_b.sql");
		expect(missing).toMatchObject({ severity: "error", file: "migrations/0000_gone.sql" });
		expect(missing?.message).toContain("rename it to 0000_gone.sql.retired");
	});

	it("names files without a prefix when the migrations live at the root", () => {
		const root = parseCatalog({
			dir: ".",
			pattern: "*.sql",
			retired: [],
			files: [{ name: "0001_a.sql", bytes: Buffer.from(FILES["0001_a.sql"]) }],
		});
		const plan = planMigrations(root, ledger(["0001_a.sql"], [audit("0001_a.sql", "x")]));
		expect(plan.findings.map((f) => f.file)).toEqual(["0001_a.sql"]);
	});

	it.each([
		[undefined, "error"],
		[false, "error"],
		[true, "warning"],
	] as const)("allowOutOfOrder: %s makes an out-of-order migration an %s", (allow, severity) => {
		const plan = planMigrations(cat, ledger(["0001_a.sql", "0003_c.sql"]), {
			allowOutOfOrder: allow,
		});
		expect(plan.pending).toEqual([
			expect.objectContaining({
				outOfOrder: true,
				migration: expect.objectContaining({ name: "0002_b.sql" }),
			}),
		]);
		expect(plan.findings).toEqual([
			expect.objectContaining({
				code: "PLAN_OUT_OF_ORDER",
				severity,
				file: "migrations/0002_b.sql",
				message: expect.stringContaining("newest applied migration (3)"),
			}),
		]);
	});

	it("keeps pending migrations above every applied one in order", () => {
		const plan = planMigrations(cat, ledger(["0001_a.sql"]));
		expect(plan.pending.map((p) => p.outOfOrder)).toEqual([false, false]);
	});

	it("judges order by the newest applied number, whatever the ledger order", () => {
		const plan = planMigrations(cat, ledger(["0003_c.sql", "0001_a.sql"]));
		expect(plan.pending.map((p) => [p.migration.name, p.outOfOrder])).toEqual([
			["0002_b.sql", true],
		]);
	});

	it("says ? for the run of a recorded migration whose wrangler row is missing, when none is known", () => {
		const plan = planMigrations(cat, ledger([], [{ ...audit("0002_b.sql"), run_id: null }]));
		expect(plan.findings.map((f) => f.message)).toEqual([
			expect.stringContaining(
				"is recorded as applied in workers_pipeline_migrations (migrate, run ?)",
			),
		]);
	});

	it("keeps a pending migration numbered like the newest applied one in order", () => {
		const twins = catalog({ ...FILES, "0003_d.sql": "CREATE TABLE d (id INTEGER);\n" });
		const plan = planMigrations(twins, ledger(["0001_a.sql", "0002_b.sql", "0003_c.sql"]));
		expect(plan.pending.map((p) => [p.migration.name, p.outOfOrder])).toEqual([
			["0003_d.sql", false],
		]);
		expect(plan.findings).toEqual([]);
	});

	it("says who recorded a migration whose wrangler row is missing", () => {
		const plan = planMigrations(cat, ledger([], ["0002_b.sql"]));
		expect(plan.findings).toEqual([
			expect.objectContaining({
				code: "LEDGER_ROW_MISSING",
				severity: "error",
				file: "migrations/0002_b.sql",
				message: expect.stringContaining("(migrate, run r1)"),
			}),
		]);
		expect(plan.pending.map((p) => p.migration.name)).toEqual(["0001_a.sql", "0003_c.sql"]);
		expect(plan.head).toBeUndefined();
	});
});

describe("limitPlan()", () => {
	const plan = planMigrations(cat, ledger([]));
	it.each([
		[undefined, ["0001_a.sql", "0002_b.sql", "0003_c.sql"]],
		[0, []],
		[1, ["0001_a.sql"]],
		[2, ["0001_a.sql", "0002_b.sql"]],
		[9, ["0001_a.sql", "0002_b.sql", "0003_c.sql"]],
	])("--to %s keeps %j", (to, names) => {
		const limited = limitPlan(plan, to);
		expect(limited.pending.map((p) => p.migration.name)).toEqual(names);
		expect(limited.applied).toBe(plan.applied);
		expect(limited.findings).toBe(plan.findings);
	});

	it("returns the plan itself without --to", () => {
		expect(limitPlan(plan, undefined)).toBe(plan);
	});
});
