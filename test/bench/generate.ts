import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { seededRandom } from "../support/faults.ts";

/**
 * Writes `count` migrations shaped like a growing app's history: new tables with foreign keys,
 * indexes, ALTER TABLE ADD COLUMN, triggers, views and seed rows.
 */
export function generateMigrations(dir: string, count = 200, seed = 42): string[] {
	mkdirSync(dir, { recursive: true });
	const random = seededRandom(seed);
	const tables: string[] = [];
	const names: string[] = [];
	const pick = () => tables[Math.floor(random() * tables.length)] as string;
	for (let i = 1; i <= count; i++) {
		let name: string;
		let sql: string;
		const kind = tables.length < 3 ? 0 : i % 6;
		if (kind === 0 || kind === 3) {
			const table = `entity_${i}`;
			const parent = tables.length ? pick() : undefined;
			name = `create_${table}`;
			sql = [
				`CREATE TABLE ${table} (`,
				"\tid INTEGER PRIMARY KEY,",
				parent ? `\t${parent}_id INTEGER REFERENCES ${parent} (id) ON DELETE CASCADE,` : "",
				"\tname TEXT NOT NULL,",
				"\tstatus TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),",
				"\tscore INTEGER NOT NULL DEFAULT 0,",
				"\tcreated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP",
				");",
				`CREATE INDEX ${table}_status_idx ON ${table} (status, created_at);`,
			]
				.filter(Boolean)
				.join("\n");
			tables.push(table);
		} else if (kind === 1) {
			const table = pick();
			name = `add_column_to_${table}_${i}`;
			sql = `ALTER TABLE ${table} ADD COLUMN note_${i} TEXT;\nCREATE INDEX ${table}_note_${i}_idx ON ${table} (note_${i});`;
		} else if (kind === 2) {
			const table = pick();
			const rows = Array.from(
				{ length: 40 },
				(_, r) => `('seed ${i}-${r}', ${Math.floor(random() * 1000)})`,
			);
			name = `seed_${table}_${i}`;
			sql = `INSERT INTO ${table} (name, score) VALUES\n\t${rows.join(",\n\t")};\nUPDATE ${table} SET status = 'archived' WHERE score < 100;`;
		} else if (kind === 4) {
			const table = pick();
			name = `audit_trigger_${table}_${i}`;
			sql = [
				`CREATE TABLE ${table}_audit_${i} (id INTEGER PRIMARY KEY, row_id INTEGER NOT NULL, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);`,
				`CREATE TRIGGER ${table}_audit_${i}_trg AFTER UPDATE ON ${table} FOR EACH ROW BEGIN`,
				`\tINSERT INTO ${table}_audit_${i} (row_id) VALUES (NEW.id);`,
				"END;",
			].join("\n");
		} else {
			const table = pick();
			name = `view_${table}_${i}`;
			sql = `CREATE VIEW ${table}_summary_${i} AS SELECT status, count(*) AS n, avg(score) AS mean FROM ${table} GROUP BY status;`;
		}
		const file = `${String(i).padStart(4, "0")}_${name}.sql`;
		writeFileSync(path.join(dir, file), `-- generated for the benchmark\n${sql}\n`);
		names.push(file);
	}
	return names;
}
