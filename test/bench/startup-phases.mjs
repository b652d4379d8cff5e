// One cold migration-test process cut into phases, main-thread CPU time (user + system) of each in
// ms, as JSON on stdout: what the start-up bench prints beside the whole-process figures. It runs
// the same compiled modules the CLI runs (dist/, built by `npm run setup`), in the CLI's order.
// Usage: node startup-phases.mjs <project dir>
import * as nodeModule from "node:module";

nodeModule.enableCompileCache?.(); // as bin/workers-pipeline.js does
// The main thread's own time (Node >= 23.9): process-wide CPU also counts V8's background compile
// and GC threads, which run beside the main thread on the second core and cost no wall time.
const cpu = () => {
	const { user, system } = process.threadCpuUsage?.() ?? process.cpuUsage();
	return (user + system) / 1000;
};
const phases = { "node start-up": cpu() };
let last = phases["node start-up"];
const lap = (name) => {
	const now = cpu();
	phases[name] = now - last;
	last = now;
};
const dist = new URL("../../dist/ci/", import.meta.url);
const load = (file) => import(new URL(file, dist).href);

await load("cli/main.js");
lap("load the CLI");
const { loadProjectConfig } = await load("config/load.js");
const { DATA_ROWS, pickDatabase } = await load("steps/migration-test.js");
const { readCheckedCatalog } = await load("migrations/check.js");
const { replayWithDuplicates } = await load("migrations/replay.js");
lap("load the step (better-sqlite3 included)");
const project = loadProjectConfig({ cwd: process.argv[2] });
lap("read the wrangler config");
const database = pickDatabase(project, {});
const { catalog } = readCheckedCatalog(project, database);
lap("read, checksum and lint 200 files");
replayWithDuplicates(catalog.migrations, {
	migrationsTable: database.migrationsTable,
	fillRows: DATA_ROWS,
});
lap("replay with data (checks, fill, schema read)");
process.stdout.write(`${JSON.stringify(phases)}\n`);
