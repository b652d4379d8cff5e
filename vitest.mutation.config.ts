import { defineConfig } from "vitest/config";

// The unit suites Stryker runs against each mutant (stryker.config.mjs): the fast, in-process
// tests of ci/. Too slow to run once per mutant: the *.e2e.test.ts suites (real builds, wrangler
// against the corpus) and the seeded random-fault soak of migrate (minutes under coverage).
export default defineConfig({
	test: {
		include: ["test/ci/**/*.test.ts", "test/deploy/**/*.test.ts"],
		exclude: ["**/*.e2e.test.ts", "**/node_modules/**", "test/ci/migrate/faults.test.ts"],
		testTimeout: 120_000,
		hookTimeout: 600_000,
		pool: "forks",
	},
});
