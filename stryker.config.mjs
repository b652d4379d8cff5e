// Mutation testing of the pipeline core (issue 8): ci/migrations/ and the migrate and deploy
// steps. `npm run mutation` runs it through `workers-pipeline mutation`: only the mutants in files
// changed since main (`npm run mutation -- --all` for every one), Stryker's incremental file
// keeping the results of unchanged code. One test runner: the machines here have two cores.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
	testRunner: "vitest",
	// forks, as vitest.config.ts: some suites process.chdir(), which worker threads refuse.
	// related: false: vitest finds no related test for some of these files (e.g. ledger.ts, reached
	// through the migrate step); perTest coverage still runs only the tests covering each mutant.
	vitest: { configFile: "vitest.mutation.config.ts", related: false, pool: "forks" },
	mutate: ["ci/migrations/**/*.ts", "ci/steps/migrate.ts", "ci/steps/deploy.ts"],
	coverageAnalysis: "perTest",
	// Static mutants (module-level constants, regexes) need every test per mutant: too slow here.
	ignoreStatic: true,
	concurrency: 1,
	incremental: true,
	incrementalFile: "reports/stryker-incremental.json",
	ignorePatterns: [
		".open-next",
		".next",
		".wrangler",
		".reports",
		".tools",
		".dagger",
		".scratch",
		"dist",
		"coverage",
	],
	reporters: ["clear-text", "progress", "json", "html"],
	thresholds: { high: 80, low: 60, break: null },
	dryRunTimeoutMinutes: 30,
	// Over the normal run time of the covering tests; a mutant that loops costs this much.
	timeoutMS: 10_000,
	tempDirName: ".stryker-tmp",
	cleanTempDir: "always",
};
