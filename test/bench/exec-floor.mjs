// The floor for a whole migration-test process: a bare node script that execs every migration
// file with better-sqlite3 (foreign keys on, as D1), one transaction each. Usage: node exec-floor.mjs <dir>
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

const dir = process.argv[2];
const db = new Database(":memory:");
db.pragma("foreign_keys = ON");
for (const file of readdirSync(dir).sort()) {
	if (!file.endsWith(".sql")) continue;
	db.exec("BEGIN");
	db.exec(readFileSync(path.join(dir, file), "utf8"));
	db.exec("COMMIT");
}
db.close();
