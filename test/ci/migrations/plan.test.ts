import { describe, expect, it } from "vitest";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { type AuditEntry, parseLedger } from "../../../ci/migrations/ledger.ts";
import { planMigrations } from "../../../ci/migrations/plan.ts";

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
});
