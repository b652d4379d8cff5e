// `npm run bench [-- <name>...]`: side-by-side timings in one run. Targets are printed beside the
// figures, never asserted in tests. Names: startup, migration-test, migrate, ci (default: all).
import { benchCi } from "./ci.ts";
import { benchMigrate } from "./migrate.ts";
import { benchMigrationTest } from "./migration-test.ts";
import { benchStartup } from "./startup.ts";

const BENCHES: Record<string, () => Promise<void>> = {
	startup: benchStartup,
	"migration-test": benchMigrationTest,
	migrate: benchMigrate,
	ci: benchCi,
};

const chosen = process.argv.slice(2).filter((a) => a !== "--");
for (const name of chosen) {
	if (!(name in BENCHES)) {
		console.error(`unknown benchmark "${name}"; choose from ${Object.keys(BENCHES).join(", ")}`);
		process.exit(2);
	}
}
for (const name of chosen.length ? chosen : Object.keys(BENCHES)) {
	console.log(`\n== ${name}`);
	await (BENCHES[name] as () => Promise<void>)();
}
