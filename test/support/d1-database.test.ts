import { describe, expect, it } from "vitest";
import { D1DatabaseState } from "./d1-database.ts";

const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");

function withState<T>(run: (state: D1DatabaseState) => T): T {
	const state = new D1DatabaseState({ uuid: "case", name: "case" });
	try {
		return run(state);
	} finally {
		state.close();
	}
}

// workerd's D1 answered "too many columns on sqlite_altertab_Wide: SQLITE_ERROR" here: SQLite
// alter.c sqlite3AlterBeginAddColumn() names the working copy after the stored table.
describe("D1DatabaseState ALTER TABLE ADD COLUMN past 100 columns", () => {
	it("names the table as stored, not as the ALTER spells it", () => {
		withState((state) => {
			state.execute([{ sql: `CREATE TABLE Wide (${columns(100)});` }]);
			expect(() => state.execute([{ sql: "ALTER TABLE wide ADD COLUMN extra;" }])).toThrow(
				"too many columns on sqlite_altertab_Wide: SQLITE_ERROR",
			);
		});
	});
});
