import { defineConfig } from "vitest/config";

// The suites Stryker runs against each mutant (stryker.config.mjs): the in-process unit tests of
// ci/ and the migrate restore suite on the loopback API. Too slow to run once per mutant (tens of
// seconds each on two cores): the *.e2e.test.ts suites (real builds, wrangler against the corpus),
// the CLI suite (spawns processes), the bad-inputs suite and the seeded random-fault soak.
export default defineConfig({
	test: {
		include: [
			"test/ci/migrations/**/*.test.ts",
			"test/ci/config/**/*.test.ts",
			// The SqlExecutor contract (ci/migrations/executor.ts against both backends): about a second.
			"test/ci/contract/**/*.test.ts",
			"test/ci/migrate/restore.test.ts",
			"test/deploy/build.test.ts",
		],
		exclude: ["**/*.e2e.test.ts", "**/node_modules/**"],
		testTimeout: 120_000,
		hookTimeout: 600_000,
		pool: "forks",
	},
});
