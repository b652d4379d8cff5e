import { defineConfig } from "vitest/config";

// The unit suites Stryker runs against each mutant (stryker.config.mjs): the fast, in-process
// tests of ci/; the *.e2e.test.ts suites (real builds, wrangler against the corpus) are too slow
// to run once per mutant.
export default defineConfig({
	test: {
		include: ["test/ci/**/*.test.ts", "test/deploy/**/*.test.ts"],
		exclude: ["**/*.e2e.test.ts", "**/node_modules/**"],
		testTimeout: 120_000,
		hookTimeout: 600_000,
		pool: "forks",
	},
});
