import { mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { loadProjectConfig, resolveEnvironment } from "./ci/config/load.ts";
import { parseCatalog, readCatalog } from "./ci/migrations/catalog.ts";
import { replayMigrations } from "./ci/migrations/replay.ts";
import * as fill from "./ci/migrations/fill.ts";
import { generateMigrations } from "./test/bench/generate.ts";
const project = mkdtempSync(path.join(tmpdir(), "wp-t-"));
generateMigrations(path.join(project, "migrations"), 200);
writeFileSync(path.join(project, "wrangler.jsonc"), JSON.stringify({ name: "b", d1_databases: [{ binding: "DB", database_id: "b" }] }));
const database = resolveEnvironment(loadProjectConfig({ cwd: project }), undefined).databases[0]!;
const dir = path.join(project, "migrations");
const fns = {
	plain: () => replayMigrations(parseCatalog(readCatalog({ root: project, database })).migrations),
	data: () => replayMigrations(parseCatalog(readCatalog({ root: project, database })).migrations, { fillRows: 3 }),
	floor: () => { const db = new Database(":memory:"); db.pragma("foreign_keys = ON"); db.exec("BEGIN"); for (const f of readdirSync(dir).sort()) db.exec(readFileSync(path.join(dir, f), "utf8")); db.exec("COMMIT"); db.close(); },
};
const s: Record<string, number[]> = { plain: [], data: [], floor: [] };
for (let i = 0; i < 21; i++) for (const [k, f] of Object.entries(fns)) { const t = performance.now(); f(); s[k]!.push(performance.now() - t); }
for (const [k, v] of Object.entries(s)) { v.sort((a, b) => a - b); console.log(k, v[10]!.toFixed(1)); }
rmSync(project, { recursive: true });
console.log("fill total ms over all data runs / 21:", ((globalThis as { fillMs?: number }).fillMs ?? 0) / 21);
